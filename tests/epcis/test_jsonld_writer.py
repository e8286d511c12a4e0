"""EPCIS 2.0 JSON-LD writing: exact inverse of reading, prefixes, streaming."""

from __future__ import annotations

import io
import json
from collections.abc import Iterator
from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path

from hypothesis import given, settings

from epcis.jsonld_reader import event_from_jsonld
from epcis.jsonld_writer import event_to_jsonld, write_jsonld
from epcis.model import (
    DocumentFormat,
    DocumentHead,
    Event,
    ObjectEvent,
    QuantityElement,
    XmlElement,
)
from tests.epcis.strategies_jsonld import events, read

FIXTURE = Path(__file__).parents[2] / "fixtures" / "epcis" / "dscsa-shipment.jsonld"
HC = "http://epcis.gs1us.org/hc/ns"


@settings(max_examples=150, deadline=None)
@given(events())
def test_event_to_jsonld_and_back_is_identity(event: Event) -> None:
    for namespaces in ({}, {"example": "http://ns.example.com/epcis/"}):
        obj = event_to_jsonld(event, namespaces)
        # What the store keeps must survive plain JSON text.
        assert event_from_jsonld(json.loads(json.dumps(obj)), namespaces) == event


@settings(max_examples=40, deadline=None)
@given(events())
def test_document_round_trip_of_generated_events(event: Event) -> None:
    out = io.BytesIO()
    write_jsonld(_head(), [event, event], out)
    _, read_back = read(out.getvalue())
    assert read_back == [event, event]


def test_fixture_round_trips_and_declares_gs1ushc_verbatim() -> None:
    head, events_in = read(FIXTURE.read_bytes())
    out = io.BytesIO()
    write_jsonld(head, events_in, out)
    doc = json.loads(out.getvalue())
    assert doc["@context"][0] == "https://ref.gs1.org/standards/epcis/2.0.0/epcis-context.jsonld"
    assert doc["@context"][1]["gs1ushc"] == {"@id": HC, "@prefix": True}
    assert "cbvmda" not in doc["@context"][1]  # a protected GS1 term: never redefined
    assert doc["epcisHeader"]["gs1ushc:guidelineVersion"] == "GS1 US DSCSA R1.3"
    assert doc["epcisBody"]["eventList"][0]["ilmd"]["cbvmda:lotNumber"] == "LOT42"
    assert doc["sender"] == "urn:epc:id:sgln:030001.111111.0"
    head2, events2 = read(out.getvalue())
    assert (head2.header, events2) == (head.header, events_in)


def test_undeclared_namespace_gets_an_event_level_context() -> None:
    event = _event(extensions=(XmlElement(namespace="urn:other:ns", name="x", text="1"),))
    obj = event_to_jsonld(event, {})
    assert obj["@context"] == {"ns1": {"@id": "urn:other:ns", "@prefix": True}}
    assert obj["ns1:x"] == "1"
    assert "@context" not in event_to_jsonld(event, {"o": "urn:other:ns"})


def test_values_are_json_native() -> None:
    event = _event(
        quantity_list=(
            QuantityElement(epc_class="urn:x", quantity=Decimal("2.50"), uom="KGM"),
            QuantityElement(epc_class="urn:y", quantity=Decimal(3)),
        ),
    )
    obj = event_to_jsonld(event, {})
    assert obj["eventTime"] == "2024-01-01T12:00:00.000Z"
    assert [q["quantity"] for q in obj["quantityList"]] == [2.5, 3]
    assert isinstance(obj["quantityList"][1]["quantity"], int)


def test_writer_streams_events_as_they_come() -> None:
    out = io.BytesIO()
    seen_before_second: list[bytes] = []

    def produce() -> Iterator[Event]:
        yield _event()
        seen_before_second.append(out.getvalue())
        yield _event()

    write_jsonld(_head(), produce(), out)
    assert b'"eventList":[{' in seen_before_second[0]
    assert len(read(out.getvalue())[1]) == 2


def _head() -> DocumentHead:
    return DocumentHead(
        format=DocumentFormat.JSONLD_2_0,
        schema_version="2.0",
        creation_date=datetime(2024, 1, 1, tzinfo=UTC),
        namespaces={"example": "http://ns.example.com/epcis/"},
    )


def _event(**fields: object) -> ObjectEvent:
    return ObjectEvent(
        event_time=datetime(2024, 1, 1, 12, tzinfo=UTC),
        event_time_zone_offset="+00:00",
        action="OBSERVE",
        **fields,
    )


def test_epc_format_option_and_reading_back() -> None:
    event = _event(epc_list=("urn:epc:id:sgtin:0614141.107346.2017",))
    as_dl = event_to_jsonld(event, {}, epc_format="digital-link")
    assert as_dl["epcList"] == ["https://id.gs1.org/01/10614141073464/21/2017"]
    assert event_to_jsonld(event, {}, epc_format="urn")["epcList"] == list(event.epc_list)
    assert event_from_jsonld(as_dl, {}) == event
