"""The cross-format round trip: 1.2 XML -> model -> 2.0 JSON-LD -> model -> 1.2 XML -> model."""

from __future__ import annotations

import io
from collections.abc import Iterable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from epcis.model import DocumentFormat, DocumentHead, Event, ObjectEvent, XmlElement
from epcis.reading import iter_document
from epcis.writing import write_document
from tests.epcis.strategies_jsonld import events

DATA = Path("/work/shared/reference/data")
FIXTURE = Path(__file__).parents[2] / "fixtures" / "epcis" / "dscsa-shipment.jsonld"


def _corpus(pattern: str) -> list[Path]:
    return sorted(DATA.glob(pattern)) if DATA.is_dir() else []


# 1.2 XML files that are not EPCIS 1.2 documents our XML reader accepts, and why.
_OPENEPCIS_1_2 = "openepcis-test-resources/1.2/EPCIS/XML/Capture/Documents"
_NOT_1_2_DOCUMENTS = {
    "gs1-epcis/XSL/1.2/XML/AssociationEvent.xml": "misspells sensorMetadata as sensorMetaData",
    "openepcis-test-resources/1.2/EPCIS/XML/Capture/Documents/Document_with_namespace.xml": (
        "2.0 event namespace inside a 1.2 document"
    ),
    "openepcis-test-resources/1.2/EPCIS/XML/Capture/Documents/Single_event.xml": "a bare event",
    "openepcis-test-resources/1.2/EPCIS/XML/Capture/Documents/Single_event_with_namespace.xml": (
        "a bare event"
    ),
    f"{_OPENEPCIS_1_2}/All_eventTypes_in_single_document.xml": ("a GRAI with a wrong check digit"),
    "event-hash-vectors/tests/examples/epcisXmlQueryDocHavingEventWithIgnoreFields.xml": (
        "events outside EPCISBody"
    ),
}
_XML = [
    p
    for p in (
        *_corpus("gs1-epcis/XSL/1.2/XML/*.xml"),
        *_corpus("openepcis-test-resources/1.2/EPCIS/XML/Capture/Documents/*.xml"),
        *_corpus("event-hash-vectors/tests/examples/*.xml"),
    )
    if str(p.relative_to(DATA)) not in _NOT_1_2_DOCUMENTS
]


def _read(data: bytes) -> tuple[DocumentHead, list[Event]]:
    items = list(iter_document(data))
    head = items[0]
    assert isinstance(head, DocumentHead)
    return head, [e for e in items[1:] if not isinstance(e, DocumentHead)]


def _write(head: DocumentHead, events_out: Iterable[Event], fmt: DocumentFormat) -> bytes:
    out = io.BytesIO()
    write_document(head, events_out, out, fmt)
    return out.getvalue()


def _same(a: tuple[DocumentHead, list[Event]], b: tuple[DocumentHead, list[Event]]) -> None:
    # Format, schema version and the prefix spellings legitimately differ between formats.
    assert (b[0].header, b[0].extensions, b[0].creation_date) == (
        a[0].header,
        a[0].extensions,
        a[0].creation_date,
    )
    assert b[1] == a[1]


def _round_trip(first: tuple[DocumentHead, list[Event]]) -> None:
    json_bytes = _write(*first, DocumentFormat.JSONLD_2_0)
    assert json_bytes.startswith(b"{")
    second = _read(json_bytes)
    _same(first, second)
    xml_bytes = _write(*second, DocumentFormat.XML_1_2)
    assert b"urn:epcglobal:epcis:xsd:1" in xml_bytes
    _same(second, _read(xml_bytes))


@pytest.mark.skipif(not DATA.is_dir(), reason="/work/shared corpus not present")
@pytest.mark.parametrize("path", _XML, ids=[str(p.relative_to(DATA)) for p in _XML])
def test_xml_1_2_through_json_ld_and_back(path: Path) -> None:
    _round_trip(_read(path.read_bytes()))


@pytest.mark.skipif(not DATA.is_dir(), reason="/work/shared corpus not present")
def test_gs1_us_pharma_example_keeps_sbdh_master_data_and_gs1ushc() -> None:
    path = DATA / "openepcis-test-resources/1.2/EPCIS/XML/Capture/Documents"
    head, _ = _read((path / "GS1_US_Pharma_Example_2_2_1_1.xml").read_bytes())
    assert head.header is not None
    assert head.header.standard_business_document_header is not None
    assert head.header.master_data
    assert head.header.gs1ushc is not None
    json_head, _ = _read(_write(head, [], DocumentFormat.JSONLD_2_0))
    assert json_head.header == head.header


def test_fixture_json_ld_through_xml_1_2_and_back() -> None:
    head, events_in = _read(FIXTURE.read_bytes())
    again = _read(_write(head, events_in, DocumentFormat.XML_1_2))
    _same((head, events_in), again)
    _round_trip(again)


def test_unqualified_extension_survives() -> None:
    event = ObjectEvent(
        event_time=datetime(2024, 1, 1, tzinfo=UTC),
        event_time_zone_offset="+00:00",
        action="OBSERVE",
        extensions=(XmlElement(name="myField", text="vendor"),),
    )
    _round_trip((_head(), [event]))


@settings(max_examples=30, deadline=None)
@given(st.lists(events(), min_size=1, max_size=3))
def test_generated_events_cross_formats(generated: list[Any]) -> None:
    # 1.2 XML has no sensor data or persistent disposition; ILMD only on ADD.
    events_1_2 = [
        e.model_copy(update={"sensor_element_list": (), "persistent_disposition": None})
        for e in generated
    ]
    # Start from 1.2 XML as the corpus cases do (XML has no "" vs absent text distinction).
    first = _read(_write(_head(), events_1_2, DocumentFormat.XML_1_2))
    assert len(first[1]) == len(generated)
    _round_trip(first)


def _head() -> DocumentHead:
    return DocumentHead(
        format=DocumentFormat.JSONLD_2_0,
        schema_version="2.0",
        creation_date=datetime(2024, 1, 1, tzinfo=UTC),
    )
