"""SimpleEventQuery parsing (every spelling of every parameter) and the reference semantics."""

from __future__ import annotations

from datetime import UTC, date, datetime
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from epcis.model import EventBase, ObjectEvent
from epcis.query import (
    EpcFilter,
    EventQuery,
    QueryParameterError,
    QueryTooLargeError,
    identifier_key,
    ilmd_lot_and_expiry,
    matches,
    parse_query_params,
)
from epcis.reading import read_document
from epcis.vocabulary import BIZ_STEPS, DISPOSITIONS

# The project's own DSCSA shipment: 7 events (8 packs and 2 cases of lot LOT2026A commissioned
# and packed, a pallet commissioned, packed and shipped on PO-2026-0042 / DEL-2026-0101).
PHARMA = (
    Path(__file__).resolve().parents[2]
    / "fixtures/scenarios/dscsa/1-manufacturer-to-wholesaler.xml"
)


@pytest.fixture(scope="module")
def pharma_events() -> tuple[EventBase, ...]:
    return read_document(PHARMA.read_bytes()).events


def test_errors_carry_epcis_problem_types() -> None:
    assert QueryParameterError.status == 400
    assert QueryParameterError.problem_type == "epcisException:QueryParameterException"
    assert QueryTooLargeError.status == 413
    assert QueryTooLargeError.problem_type == "epcisException:QueryTooLargeException"


def test_no_parameters_is_the_empty_query() -> None:
    query = parse_query_params({"perPage": "10", "nextPageToken": "abc"})
    assert query == EventQuery()
    assert query.sort_field == "recordTime"
    assert not query.descending


@pytest.mark.parametrize(
    "spelling",
    [
        "shipping|receiving",
        "urn:epcglobal:cbv:bizstep:shipping|urn:epcglobal:cbv:bizstep:receiving",
        "https://ref.gs1.org/cbv/BizStep-shipping|https://ref.gs1.org/cbv/BizStep-receiving",
        "shipping | https://ref.gs1.org/cbv/BizStep-receiving",
    ],
)
def test_biz_step_spellings_are_equivalent(spelling: str) -> None:
    query = parse_query_params({"EQ_bizStep": spelling})
    assert query.biz_steps == frozenset({"shipping", "receiving"})


@settings(max_examples=30)
@given(st.lists(st.sampled_from(sorted(DISPOSITIONS)), min_size=1, max_size=4))
def test_disposition_urn_and_bare_words_parse_alike(words: list[str]) -> None:
    bare = parse_query_params({"EQ_disposition": "|".join(words)})
    urns = parse_query_params(
        {"EQ_disposition": "|".join(f"urn:epcglobal:cbv:disp:{word}" for word in words)}
    )
    web = parse_query_params(
        {"EQ_disposition": "|".join(f"https://ref.gs1.org/cbv/Disp-{word}" for word in words)}
    )
    assert bare == urns == web
    assert bare.dispositions == frozenset(words)


@settings(max_examples=30)
@given(st.sampled_from(sorted(BIZ_STEPS)))
def test_fingerprint_is_stable_and_tells_queries_apart(word: str) -> None:
    one = parse_query_params({"EQ_bizStep": word, "orderBy": "eventTime"})
    same = parse_query_params(
        {"orderBy": "eventTime", "EQ_bizStep": f"urn:epcglobal:cbv:bizstep:{word}"}
    )
    other = parse_query_params({"EQ_bizStep": word, "orderBy": "recordTime"})
    assert one.fingerprint() == same.fingerprint()
    assert one.fingerprint() != other.fingerprint()


def test_times_and_order() -> None:
    query = parse_query_params(
        {
            "GE_eventTime": "2024-01-01T00:00:00+02:00",
            "LT_eventTime": "2024-02-01T00:00:00Z",
            "GE_recordTime": "2024-01-01T00:00:00.5Z",
            "orderBy": "eventTime",
        }
    )
    assert query.ge_event_time == datetime(2023, 12, 31, 22, tzinfo=UTC)
    assert query.lt_event_time == datetime(2024, 2, 1, tzinfo=UTC)
    assert query.ge_record_time == datetime(2024, 1, 1, 0, 0, 0, 500000, tzinfo=UTC)
    assert query.sort_field == "eventTime"
    assert query.descending, "orderDirection defaults to DESC"
    ascending = parse_query_params({"orderBy": "recordTime", "orderDirection": "ASC"})
    assert not ascending.descending


def test_typed_families_in_1_2_and_2_0_spellings() -> None:
    query = parse_query_params(
        {
            "EQ_bizTransaction_urn:epcglobal:cbv:btt:po": "urn:epcglobal:cbv:bt:0614141000005:1",
            "EQ_source_owning_party": "urn:epc:id:pgln:0614141.00000",
            "EQ_destination_https://ref.gs1.org/cbv/SDT-location": "urn:epc:id:sgln:0614141.1.0",
        }
    )
    assert query.biz_transactions == (
        ("po", frozenset({identifier_key("urn:epcglobal:cbv:bt:0614141000005:1")})),
    )
    assert query.sources == (
        ("owning_party", frozenset({identifier_key("urn:epc:id:pgln:0614141.00000")})),
    )
    assert query.destinations[0][0] == "location"


@pytest.mark.parametrize(
    ("name", "value", "attribute", "expected"),
    [
        ("EQ_ILMD_urn:epcglobal:cbv:mda#lotNumber", "A123|B7", "lots", {"A123", "B7"}),
        ("EQ_ILMD_cbvmda:lotNumber", "A123", "lots", {"A123"}),
        ("EQ_ILMD_cbvmda:itemExpirationDate", "2025-03-27", "expiry_dates", {date(2025, 3, 27)}),
        (
            "EQ_ILMD_urn:epcglobal:cbv:mda#itemExpirationDate",
            "2025-03-27",
            "expiry_dates",
            {date(2025, 3, 27)},
        ),
    ],
)
def test_ilmd_lot_and_expiry(name: str, value: str, attribute: str, expected: set[object]) -> None:
    assert getattr(parse_query_params({name: value}), attribute) == frozenset(expected)


def test_epc_filters_and_patterns() -> None:
    query = parse_query_params(
        {
            "MATCH_epc": "urn:epc:id:sgtin:030001.0012345.11|urn:epc:idpat:sgtin:030001.1012345.*",
            "MATCH_epcClass": "urn:epc:idpat:sgtin:4012345.012345.*",
        }
    )
    assert query.match_epc is not None
    assert query.match_epc.accepts(identifier_key("urn:epc:id:sgtin:030001.0012345.11"))
    assert query.match_epc.accepts(identifier_key("urn:epc:id:sgtin:030001.1012345.999"))
    assert not query.match_epc.accepts(identifier_key("urn:epc:id:sgtin:030001.0012345.12"))
    assert query.match_epc_class is not None
    assert query.match_epc_class.accepts(identifier_key("urn:epc:class:lgtin:4012345.012345.L1"))
    assert query.match_epc_class.accepts(identifier_key("urn:epc:idpat:sgtin:4012345.012345.*"))
    assert not query.match_epc_class.accepts(
        identifier_key("urn:epc:class:lgtin:4012345.012346.L1")
    )


@pytest.mark.parametrize(
    ("params", "message"),
    [
        ({"EQ_color": "red"}, "unknown"),
        ({"EQ_ILMD_cbvmda:countryOfOrigin": "GB"}, "lotNumber"),
        ({"EQ_bizTransaction_": "x"}, "lacks a type"),
        ({"GE_eventTime": "yesterday"}, "ISO 8601"),
        ({"GE_eventTime": "2024-01-01T00:00:00"}, "time zone"),
        ({"EQ_action": "ADD|UPDATE"}, "ADD, OBSERVE or DELETE"),
        ({"EQ_bizStep": "shipping||receiving"}, "empty value"),
        ({"eventCountLimit": "5"}, "needs orderBy"),
        ({"eventCountLimit": "5", "maxEventCount": "9", "orderBy": "eventTime"}, "exclusive"),
        ({"maxEventCount": "-1"}, "positive integer"),
        ({"orderBy": "bizStep"}, "eventTime or recordTime"),
        ({"orderDirection": "UP"}, "ASC or DESC"),
        ({"EXISTS_errorDeclaration": "maybe"}, "boolean"),
        ({"MATCH_epc": "urn:epc:idpat:sgtin:030001.*.*"}, "pattern"),
        ({"MATCH_epc": "urn:epc:idpat:sscc:030001.*"}, "pattern"),
        ({"EQ_ILMD_cbvmda:itemExpirationDate": "March"}, "date"),
    ],
)
def test_bad_parameters_are_query_parameter_errors(params: dict[str, str], message: str) -> None:
    with pytest.raises(QueryParameterError, match=message):
        parse_query_params(params)


def test_ilmd_fields_of_a_real_event(pharma_events: tuple[EventBase, ...]) -> None:
    assert ilmd_lot_and_expiry(pharma_events[0]) == ("LOT2026A", date(2028, 3, 31))
    assert ilmd_lot_and_expiry(pharma_events[2]) == (None, None)


@pytest.mark.parametrize(
    ("params", "selected"),
    [
        ({}, 7),
        ({"eventType": "AggregationEvent"}, 3),
        ({"EQ_bizStep": "urn:epcglobal:cbv:bizstep:commissioning"}, 3),
        ({"EQ_disposition": "in_transit", "EQ_action": "OBSERVE"}, 1),
        ({"MATCH_epc": "urn:epc:id:sgtin:030001.0012345.1001"}, 2),
        ({"MATCH_parentID": "urn:epc:id:sscc:030001.10000000101"}, 1),
        ({"MATCH_anyEPC": "urn:epc:id:sscc:030001.10000000101"}, 3),
        ({"EQ_readPoint": "urn:epc:id:sgln:030001.111121.0"}, 3),
        ({"EQ_bizTransaction_desadv": "urn:epcglobal:cbv:bt:0300011111215:DEL-2026-0101"}, 1),
        ({"EQ_bizTransaction_po": "urn:epcglobal:cbv:bt:0300011111215:DEL-2026-0101"}, 0),
        ({"EQ_source_owning_party": "urn:epc:id:sgln:030001.111111.0"}, 1),
        ({"EQ_ILMD_cbvmda:lotNumber": "LOT2026A"}, 2),
        ({"EQ_ILMD_cbvmda:itemExpirationDate": "2028-04-01"}, 0),
        ({"EQ_ILMD_cbvmda:itemExpirationDate": "2028-03-31"}, 2),
        ({"EXISTS_errorDeclaration": ""}, 0),
        ({"GE_eventTime": "2026-03-03T00:00:00Z"}, 3),
        ({"GE_recordTime": "2026-03-03T00:00:00Z"}, 0),
    ],
)
def test_matches_on_the_pharma_example(
    pharma_events: tuple[EventBase, ...], params: dict[str, str], selected: int
) -> None:
    query = parse_query_params(params)
    assert sum(matches(query, event) for event in pharma_events) == selected


def test_epc_filter_without_keys_accepts_nothing() -> None:
    event = ObjectEvent.model_validate(
        {
            "eventTime": "2024-01-01T00:00:00Z",
            "eventTimeZoneOffset": "+00:00",
            "action": "ADD",
            "epcList": ["urn:epc:id:sgtin:030001.0012345.11"],
        }
    )
    assert not matches(EventQuery(match_epc=EpcFilter()), event)
    assert matches(EventQuery(), event)


def test_urn_and_digital_link_spellings_select_alike() -> None:
    urn = parse_query_params(
        {
            "MATCH_epc": "urn:epc:id:sgtin:030001.0012345.11",
            "EQ_readPoint": "urn:epc:id:sgln:030001.111121.0",
        }
    )
    link = parse_query_params(
        {
            "MATCH_epc": "https://id.gs1.org/01/00300010123455/21/11",
            "EQ_readPoint": "https://id.gs1.org/414/0300011111215",
        }
    )
    assert urn == link
