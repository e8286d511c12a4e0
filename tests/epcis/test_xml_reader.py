"""The XML reader: DSCSA content, located errors, limits and bounded memory."""

from __future__ import annotations

import io
import tracemalloc
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path

import pytest

from epcis.errors import DocumentTooLargeError, InvalidDocumentError
from epcis.model import (
    AggregationEvent,
    DocumentFormat,
    DocumentHead,
    Event,
    ObjectEvent,
)
from epcis.reading import ReadLimits, iter_document, read_document
from epcis.writing import write_document

FIXTURES = Path(__file__).parents[2] / "fixtures" / "epcis"
PHARMA = Path(
    "/work/shared/reference/data/openepcis-test-resources/1.2/EPCIS/XML/Capture/Documents/"
    "GS1_US_Pharma_Example_2_2_1_1.xml"
)
MDA = "urn:epcglobal:cbv:mda"


@pytest.mark.parametrize(
    ("path", "instance", "lot", "expiry"),
    [
        pytest.param(
            PHARMA,
            "1100220001",
            "A123",
            "2025-03-27",
            marks=pytest.mark.skipif(
                not PHARMA.exists(), reason="/work/shared reference corpora not present"
            ),
            id="gs1-us-pharma-example",
        ),
        # The project's own shipment, so the reading is checked without ../shared too.
        pytest.param(
            FIXTURES.parent / "scenarios" / "dscsa" / "1-manufacturer-to-wholesaler.xml",
            "MFG-2026-000101",
            "LOT2026A",
            "2028-03-31",
            id="project-shipment",
        ),
    ],
)
def test_pharma_shipment_keeps_sbdh_master_data_and_gs1ushc(
    path: Path, instance: str, lot: str, expiry: str
) -> None:
    doc = read_document(path.read_bytes())
    header = doc.head.header
    assert header is not None
    sbdh = header.standard_business_document_header
    assert sbdh is not None
    assert sbdh.sender[0].identifier == "urn:epc:id:sgln:030001.111111.0"
    assert sbdh.sender[0].authority == "GS1"
    assert sbdh.document_identification.instance_identifier == instance
    products, locations = header.master_data
    assert products.type == "urn:epcglobal:epcis:vtype:EPCClass"
    pack = products.vocabulary_element_list[0]
    assert pack.id == "urn:epc:idpat:sgtin:030001.0012345.*"
    assert pack.attribute(f"{MDA}#regulatedProductName") == "Epcistra"
    assert locations.vocabulary_element_list[2].attribute(f"{MDA}#city") == "New York"
    assert header.gs1ushc is not None
    assert header.gs1ushc.guideline_version == "GS1 US DSCSA R1.3"
    statement = header.gs1ushc.dscsa_transaction_statement
    assert statement is not None
    assert statement.affirm_transaction_statement is True
    assert statement.legal_notice is not None
    assert "581(27)" in statement.legal_notice
    commissioning = doc.events[0]
    assert isinstance(commissioning, ObjectEvent)
    assert (commissioning.biz_step, commissioning.disposition) == ("commissioning", "active")
    assert commissioning.ilmd is not None
    assert [(item.name, item.text) for item in commissioning.ilmd] == [
        ("lotNumber", lot),
        ("itemExpirationDate", expiry),
    ]
    shipping = doc.events[-1]
    assert shipping.biz_step == "shipping"
    assert shipping.source("owning_party") is not None
    assert [e.name for e in shipping.extensions] == ["dropShipment"]


def test_dscsa_fixture() -> None:
    doc = read_document((FIXTURES / "dscsa-shipment-1.2.xml").read_bytes())
    assert doc.head.format is DocumentFormat.XML_1_2
    assert doc.head.namespaces["gs1ushc"] == "http://epcis.gs1us.org/hc/ns"
    packing = doc.events[1]
    assert isinstance(packing, AggregationEvent)
    # A zone-less 1.2 time is local time at the eventTimeZoneOffset.
    assert packing.event_time == datetime(2025, 2, 1, 14, 30, tzinfo=UTC)
    assert packing.event_time.utcoffset() == timedelta(hours=-5)
    shipping = doc.events[2]
    assert shipping.event_id == "urn:uuid:7b0c7e56-3f7e-4d7a-9a55-2d5f5f0a1c42"
    assert next((t.type, t.value) for t in shipping.biz_transaction_list) == (
        "po",
        "urn:epcglobal:cbv:bt:0398765000004:PO-881",
    )
    assert shipping.destination("location") == "urn:epc:id:sgln:0398765.00003.0"


def _document(body: str, version: str = "1") -> bytes:
    return (
        f'<epcis:EPCISDocument xmlns:epcis="urn:epcglobal:epcis:xsd:{version}" '
        f'schemaVersion="{version}.0" creationDate="2024-01-01T00:00:00Z">\n'
        f"<EPCISBody><EventList>\n{body}\n</EventList></EPCISBody></epcis:EPCISDocument>"
    ).encode()


_EVENT = (
    "<ObjectEvent><eventTime>{time}</eventTime><eventTimeZoneOffset>+01:00</eventTimeZoneOffset>"
    "<epcList/><action>{action}</action></ObjectEvent>"
)


def test_content_errors_name_source_line_and_path() -> None:
    body = "\n".join(
        [_EVENT.format(time="2024-01-01T00:00:00Z", action="ADD")] * 2
        + ["<ObjectEvent>", "<eventTime>2024-01-01T00:00:00Z</eventTime>"]
        + ["<eventTimeZoneOffset>+01:00</eventTimeZoneOffset>", "<action>ADDED</action>"]
        + ["</ObjectEvent>"]
    )
    with pytest.raises(InvalidDocumentError) as caught:
        read_document(_document(body), source_name="in.xml")
    (problem,) = caught.value.problems
    assert problem.source == "in.xml"
    assert problem.line == 8
    assert problem.path == "/EPCISDocument/EPCISBody/EventList/ObjectEvent[3]/action"
    assert "invalid action 'ADDED'" in problem.reason


def test_unparsable_time_is_a_content_error() -> None:
    with pytest.raises(InvalidDocumentError, match="not an xsd:dateTime"):
        read_document(_document(_EVENT.format(time="yesterday", action="ADD")))


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("2026-02-28T24:00:00Z", datetime(2026, 3, 1, tzinfo=UTC)),
        (
            "2024-12-31T24:00:00.000+05:00",
            datetime(2025, 1, 1, tzinfo=timezone(timedelta(hours=5))),
        ),
        ("2026-03-01T24:00:00", datetime(2026, 3, 2, tzinfo=timezone(timedelta(hours=1)))),
    ],
)
def test_end_of_day_time_is_the_next_midnight(text: str, expected: datetime) -> None:
    # xsd:dateTime allows 24:00:00 as the end of a day; a zone-less one takes the event offset.
    (event,) = read_document(_document(_EVENT.format(time=text, action="ADD"))).events
    assert event.event_time == expected


@pytest.mark.parametrize("text", ["2026-03-01T24:00:01Z", "2026-03-01T24:30:00Z"])
def test_other_times_past_24_are_still_refused(text: str) -> None:
    with pytest.raises(InvalidDocumentError, match="not an xsd:dateTime"):
        read_document(_document(_EVENT.format(time=text, action="ADD")))


def test_ilmd_is_refused_outside_object_and_transformation_events() -> None:
    body = (
        "<AggregationEvent><eventTime>2024-01-01T00:00:00Z</eventTime>"
        "<eventTimeZoneOffset>+00:00</eventTimeZoneOffset><childEPCs/><action>ADD</action>"
        "<extension><ilmd/></extension></AggregationEvent>"
    )
    with pytest.raises(InvalidDocumentError, match="ilmd is not allowed in AggregationEvent"):
        read_document(_document(body))


def test_head_comes_first_then_events_in_order() -> None:
    body = "\n".join(
        _EVENT.format(time=f"2024-01-0{day}T00:00:00Z", action="OBSERVE") for day in (3, 1, 2)
    )
    items = list(iter_document(io.BytesIO(_document(body, "2"))))
    assert isinstance(items[0], DocumentHead)
    assert items[0].format is DocumentFormat.XML_2_0
    assert [item.event_time.day for item in items[1:]] == [3, 1, 2]  # type: ignore[union-attr]


def test_event_limit() -> None:
    body = "\n".join([_EVENT.format(time="2024-01-01T00:00:00Z", action="ADD")] * 3)
    with pytest.raises(DocumentTooLargeError, match="more than 2 events"):
        read_document(_document(body), limits=ReadLimits(max_events=2))


def test_byte_limit_on_streams_and_bytes() -> None:
    data = _document("\n".join([_EVENT.format(time="2024-01-01T00:00:00Z", action="ADD")] * 50))
    with pytest.raises(DocumentTooLargeError):
        read_document(io.BytesIO(data), limits=ReadLimits(max_bytes=len(data) - 1))
    with pytest.raises(DocumentTooLargeError):
        read_document(data, limits=ReadLimits(max_bytes=len(data) - 1))
    assert len(read_document(data, limits=ReadLimits(max_bytes=len(data))).events) == 50


def test_depth_limit_on_extension_content() -> None:
    nested = "<x:a xmlns:x='urn:x'>" * 10 + "</x:a>" * 10
    body = _EVENT.format(time="2024-01-01T00:00:00Z", action="ADD").replace(
        "</ObjectEvent>", nested + "</ObjectEvent>"
    )
    with pytest.raises(InvalidDocumentError, match="nesting deeper than 5"):
        read_document(_document(body), limits=ReadLimits(max_depth=5))
    assert read_document(_document(body)).events[0].extensions[0].name == "a"


def _generated_events(count: int) -> Iterator[Event]:
    start = datetime(2024, 1, 1, tzinfo=UTC)
    for index in range(count):
        yield ObjectEvent(
            event_time=start + timedelta(seconds=index),
            event_time_zone_offset="-05:00",
            epc_list=tuple(f"urn:epc:id:sgtin:0614141.107346.{index * 10 + k}" for k in range(5)),
            action="ADD",
            biz_step="commissioning",
            disposition="active",
            read_point="urn:epc:id:sgln:0614141.00001.0",
        )


def _peak_while_reading(path: Path) -> tuple[int, int]:
    tracemalloc.start()
    count = 0
    with path.open("rb") as stream:
        for item in iter_document(stream):
            count += not isinstance(item, DocumentHead)
    _, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    return count, peak


def test_memory_does_not_grow_with_event_count(tmp_path: Path) -> None:
    peaks = {}
    for count in (2_000, 20_000):
        path = tmp_path / f"{count}.xml"
        head = DocumentHead(
            format=DocumentFormat.XML_1_2,
            schema_version="1.2",
            creation_date=datetime(2024, 1, 1, tzinfo=UTC),
        )
        with path.open("wb") as stream:
            write_document(head, _generated_events(count), stream, DocumentFormat.XML_1_2)
        read, peaks[count] = _peak_while_reading(path)
        assert read == count
    # Ten times the events, well under twice the memory: nothing accumulates per event.
    assert peaks[20_000] < 2 * peaks[2_000]
