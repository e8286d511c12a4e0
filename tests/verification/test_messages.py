"""Verification request parsing (both path forms, every 400 case) and the response JSON."""

from __future__ import annotations

from datetime import UTC, date, datetime

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from verification.messages import (
    AdditionalInfo,
    FailureReason,
    MalformedRequestError,
    VerificationData,
    VerificationRequest,
    VerificationResponse,
    parse_connectivity,
    parse_request,
    request_path,
)

GTIN = "00300010123455"
GLN = "0399999999991"
UUID = "21EC2020-3AEA-4069-A2DD-08002B30309D"
TODAY = date(2026, 3, 1)
QUERY = {
    "exp": "270600",
    "linkType": "verificationService",
    "context": "dscsaSaleableReturn",
    "reqGLN": GLN,
    "corrUUID": UUID,
}


def test_short_name_path_with_every_parameter() -> None:
    request = parse_request(
        f"gtin/{GTIN}/lot/L1/ser/11",
        {**QUERY, "ctrlPossessAtt": "true", "email": "a@b.example", "telephone": "+1 555"},
        {"GS1US-Version": "1.3.0"},
        today=TODAY,
    )
    assert (request.gtin, request.lot, request.serial) == (GTIN, "L1", "11")
    assert request.expiry_date == date(2027, 6, 30)  # day 00: last day of the month
    assert request.req_gln == GLN
    assert request.corr_uuid == UUID
    assert request.context == "dscsaSaleableReturn"
    assert request.version == "1.3.0"
    assert request.ctrl_possess_att is True
    assert (request.contact_email, request.contact_phone) == ("a@b.example", "+1 555")


def test_numeric_digital_link_path() -> None:
    request = parse_request(f"/01/{GTIN}/10/L1/21/11", {"17": "270615"}, today=TODAY)
    assert (request.gtin, request.lot, request.serial) == (GTIN, "L1", "11")
    assert request.expiry_date == date(2027, 6, 15)


def test_path_segments_are_percent_decoded_one_by_one() -> None:
    request = parse_request(f"gtin/{GTIN}/lot/A%2FB/ser/x%25y", QUERY, today=TODAY)
    assert (request.lot, request.serial) == ("A/B", "x%y")
    assert request_path(request) == f"gtin/{GTIN}/lot/A%2FB/ser/x%25y"


def test_missing_corr_uuid_is_generated() -> None:
    request = parse_request(f"gtin/{GTIN}/lot/L1/ser/11", {"exp": "270630"}, today=TODAY)
    assert len(request.corr_uuid) == 36


@pytest.mark.parametrize(
    ("path", "query", "pointer"),
    [
        (f"gtin/{GTIN[:-1]}6/lot/L1/ser/11", QUERY, "/path/gtin"),  # check digit
        ("gtin/0030001012345/lot/L1/ser/11", QUERY, "/path/gtin"),  # 13 digits
        (f"gtin/{GTIN}/lot/L1/ser/11", {**QUERY, "exp": "271301"}, "/query/exp"),
        (f"gtin/{GTIN}/lot/L1/ser/11", {**QUERY, "exp": "270231"}, "/query/exp"),
        (f"gtin/{GTIN}/lot/L1/ser/11", {"reqGLN": GLN}, "/query/exp"),
        (f"gtin/{GTIN}/lot/L1/ser/11", {**QUERY, "reqGLN": "0399999999992"}, "/query/reqGLN"),
        (f"gtin/{GTIN}/lot/L1/ser/11", {**QUERY, "corrUUID": "nope"}, "/query/corrUUID"),
        (
            f"gtin/{GTIN}/lot/L1/ser/11",
            {**QUERY, "ctrlPossessAtt": "maybe"},
            "/query/ctrlPossessAtt",
        ),
        (f"gtin/{GTIN}/lot/L1", QUERY, "/path"),
        (f"gtin/{GTIN}/batch/L1/ser/11", QUERY, "/path"),
        (f"gtin/{GTIN}/lot/{'L' * 21}/ser/11", QUERY, "/path/lot"),
        (f"gtin/{GTIN}/lot/L1/ser/", QUERY, "/path"),
    ],
)
def test_malformed_requests_point_at_the_part(
    path: str, query: dict[str, str], pointer: str
) -> None:
    with pytest.raises(MalformedRequestError) as raised:
        parse_request(path, query, today=TODAY)
    assert raised.value.status == 400
    assert raised.value.problems[0].path == pointer


def test_connectivity_needs_a_valid_gtin() -> None:
    assert parse_connectivity({"gtin": GTIN, "reqGLN": GLN}).gtin == GTIN
    with pytest.raises(MalformedRequestError):
        parse_connectivity({"reqGLN": GLN})


def test_response_json_shape() -> None:
    response = VerificationResponse(
        verification_timestamp=datetime(2019, 5, 17, 16, 48, 53, 428000, tzinfo=UTC),
        responder_gln="0300011111116",
        data=VerificationData(verified=True, additional_info=AdditionalInfo.RECALLED),
        corr_uuid=UUID,
    )
    assert response.to_json() == {
        "verificationTimestamp": "2019-05-17T16:48:53.428Z",
        "responderGLN": "0300011111116",
        "data": {"verified": True, "additionalInfo": "Recalled"},
        "corrUUID": UUID,
    }


def test_response_reading_is_lenient_on_old_spellings() -> None:
    response = VerificationResponse.model_validate(
        {
            "verificationTimestamp": "2019-05-17T16:48:53.428Z",
            "responderGLN": "0300011111116",
            "data": {
                "verified": False,
                "verificationFailureReason": "GTIN_not_found",
                "additionalInfo": "recalled",
            },
            "corrUUID": UUID,
        }
    )
    assert response.data.verification_failure_reason is FailureReason.NO_REASON_PROVIDED
    assert response.data.additional_info is AdditionalInfo.RECALLED


_CSET82 = st.text(
    alphabet=st.sampled_from("!\"%&'()*+,-./0123456789:;<=>?ABCDEFGHIJKLMNOPQRSTUVWXYZ_abcz"),
    min_size=1,
    max_size=20,
)


@settings(max_examples=60, deadline=None)
@given(lot=_CSET82, serial=_CSET82)
def test_request_path_round_trips(lot: str, serial: str) -> None:
    request = VerificationRequest(
        gtin=GTIN,
        lot=lot,
        serial=serial,
        expiry=parse_request(f"gtin/{GTIN}/lot/L/ser/S", {"exp": "270630"}, today=TODAY).expiry,
    )
    again = parse_request(request_path(request), request.query(), today=TODAY)
    assert (again.lot, again.serial, again.corr_uuid) == (lot, serial, request.corr_uuid)
