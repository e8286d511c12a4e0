"""The responder's fast readers and writers agree with the general ones: ``parse_request``
(common shape, cached checks, no pydantic validation) with the general reader, hand-written
``VerificationResponse.to_json`` with pydantic's dump, ``format_timestamp`` with strftime."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta, timezone
from typing import Any

import pytest
from hypothesis import event, example, given, settings
from hypothesis import strategies as st

from epcis.identifiers import parse_yymmdd
from verification import messages
from verification.messages import (
    AdditionalInfo,
    FailureReason,
    MalformedRequestError,
    VerificationData,
    VerificationRequest,
    VerificationResponse,
    format_timestamp,
    parse_request,
)

TODAY = date(2026, 3, 1)
GTINS = ["00300010123455", "00300010123456", "0030001012345", " 0300010123455", "0030001012345x"]
GLNS = ["0399999999991", "0399999999992", "", "039999999999", "039999999999X"]
UUIDS = ["21EC2020-3AEA-4069-A2DD-08002B30309D", "21ec2020-3aea-4069-a2dd-08002b30309d", "x"]
TEXT = st.text("AB19-._ %/2Féx\t", max_size=22)


def _outcome(parse: Any, path: str, query: dict[str, str], headers: dict[str, str]) -> Any:
    try:
        request: VerificationRequest = parse(path, query, headers, today=TODAY)
    except MalformedRequestError as error:
        return ("error", error.where, str(error), error.problems)
    # A request without corrUUID gets a fresh one: compare its shape, not its value.
    generated = "corrUUID" not in query
    assert messages._UUID.match(request.corr_uuid)
    dumped = request.model_dump(exclude={"corr_uuid"} if generated else set())
    return ("request", dumped, request.model_fields_set, type(request.expiry))


def _mostly(valid: list[str], other: list[str]) -> st.SearchStrategy[str]:
    # Valid values dominate so that most examples take the fast path and the rest do not.
    return st.sampled_from(valid * 8 + other)


@st.composite
def requests(draw: st.DrawFn) -> tuple[str, dict[str, str], dict[str, str]]:
    shapes = ["01/{}/10/{}/21/{}", "/gtin/{}/lot/{}/ser/{}/", "gtin/{}/lot/{}"]
    keys = draw(_mostly(["gtin/{}/lot/{}/ser/{}"] * 2, shapes))
    lot = draw(_mostly(["L1", "B0001", "a.b-c_d"], ["a%2Fb", "", "x" * 21]))
    serial = draw(_mostly(["11", "ABCDEF1234"], ["x" * 21, "%41"]))
    if draw(st.integers(0, 3)) == 0:
        lot, serial = draw(st.sampled_from([(draw(TEXT), serial), (lot, draw(TEXT))]))
    path = keys.format(draw(_mostly(GTINS[:1], GTINS[1:])), lot, serial)
    query: dict[str, str] = {}
    optional = {
        "exp": _mostly(["270600", "270631"], ["271300", "2706", "", "991231", "270230"]),
        "17": st.sampled_from(["280115", "bad"]),
        "reqGLN": _mostly(GLNS[:1], GLNS[1:]),
        "corrUUID": _mostly(UUIDS[:2], UUIDS[2:]),
        "context": st.sampled_from(["dscsaSaleableReturn", "other"]),
        "linkType": st.sampled_from(["verificationService"]),
        "ctrlPossessAtt": st.sampled_from(["true", "FALSE", " true ", "yes"]),
        "email": st.just("a@b.example"),
        "telephone": st.just("+1 555"),
    }
    for name, values in optional.items():
        if draw(st.integers(0, 5)) > 0:
            query[name] = draw(values)
    headers = {"GS1US-Version": "1.3.0"} if draw(st.booleans()) else {}
    return path, query, headers


@settings(max_examples=400, deadline=None)
@given(requests())
@example(("gtin/00300010123455/lot/L1/ser/11", {"exp": "270600"}, {}))
def test_parse_request_equals_the_general_reader(
    request: tuple[str, dict[str, str], dict[str, str]],
) -> None:
    path, query, headers = request
    general = _outcome(messages._parse_request_general, path, query, headers)
    assert _outcome(parse_request, path, query, headers) == general
    fast = messages._parse_common(path, query, headers, TODAY) is not None
    event("fast path" if fast else "general path")
    assert not fast or general[0] == "request"


def test_the_common_shape_takes_the_fast_path() -> None:
    query = {"exp": "270600", "reqGLN": GLNS[0], "corrUUID": UUIDS[0]}
    fast = messages._parse_common("gtin/00300010123455/lot/L1/ser/11", query, None, TODAY)
    assert fast is not None
    assert fast == messages._parse_request_general(
        "gtin/00300010123455/lot/L1/ser/11", query, None, today=TODAY
    )
    assert (
        messages._parse_common("gtin/00300010123455/lot/L%201/ser/11", query, None, TODAY) is None
    )


times = st.datetimes(
    min_value=datetime(1, 1, 2),
    max_value=datetime(9999, 12, 30),
    timezones=st.sampled_from(
        [UTC, timezone(timedelta(hours=-5)), timezone(timedelta(hours=5, minutes=30))]
    ),
)


@settings(max_examples=300, deadline=None)
@given(times)
def test_format_timestamp_equals_strftime(moment: datetime) -> None:
    utc = moment.astimezone(UTC)
    reference = utc.strftime("%Y-%m-%dT%H:%M:%S.") + f"{utc.microsecond // 1000:03d}Z"
    if utc.year >= 1000:
        assert format_timestamp(moment) == reference
    assert format_timestamp(moment).endswith("Z")


@settings(max_examples=300, deadline=None)
@given(
    times,
    st.booleans(),
    st.none() | st.sampled_from(FailureReason),
    st.none() | st.sampled_from(AdditionalInfo),
    st.none() | st.sampled_from(UUIDS),
)
def test_to_json_equals_pydantic_dump(
    moment: datetime,
    verified: bool,
    reason: FailureReason | None,
    info: AdditionalInfo | None,
    corr: str | None,
) -> None:
    response = VerificationResponse(
        verification_timestamp=moment,
        responder_gln="0300011111116",
        data=VerificationData(
            verified=verified, verification_failure_reason=reason, additional_info=info
        ),
        corr_uuid=corr,
    )
    dumped = response.model_dump(by_alias=True, exclude_none=True, mode="json")
    assert response.to_json() == dumped
    assert list(response.to_json()) == list(dumped)
    assert list(response.to_json()["data"]) == list(dumped["data"])


def test_a_segment_that_is_not_utf8_is_a_malformed_request() -> None:
    # It used to escape as UnicodeDecodeError (a 500).
    with pytest.raises(MalformedRequestError) as raised:
        parse_request("gtin/00300010123455/lot/%91/ser/11", {"exp": "270600"})
    assert raised.value.where == "/path/lot"


def test_constructed_request_is_model_constructs() -> None:
    expiry = parse_yymmdd("270600", today=TODAY)
    values: dict[str, Any] = {
        "gtin": "00300010123455",
        "lot": "L1",
        "serial": "11",
        "expiry": expiry,
        "req_gln": None,
        "corr_uuid": UUIDS[1],
        "context": None,
        "link_type": "verificationService",
        "version": "1.3.0",
        "ctrl_possess_att": True,
        "contact_email": None,
        "contact_phone": None,
    }
    assert list(values) == list(VerificationRequest.model_fields)
    made = messages._constructed(dict(values))
    reference = VerificationRequest.model_construct(**values)
    assert made == reference
    assert made.__dict__ == reference.__dict__
    assert list(made.__dict__) == list(reference.__dict__)
    assert made.model_fields_set == reference.model_fields_set
    assert (made.__pydantic_extra__, made.__pydantic_private__) == (None, None)
    assert repr(made) == repr(reference)
    assert made.model_dump(by_alias=True) == reference.model_dump(by_alias=True)
    # What the shortcut leaves out of model_construct does not apply to this model.
    assert not VerificationRequest.__pydantic_post_init__
    assert not VerificationRequest.__pydantic_root_model__
    assert VerificationRequest.model_config.get("extra") != "allow"
