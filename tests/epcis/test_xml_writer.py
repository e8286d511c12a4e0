"""The XML writer: 1.2 and 2.0 layouts, and model -> XML -> model for generated events."""

from __future__ import annotations

import io
from datetime import UTC, datetime

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from lxml import etree

from epcis.model import (
    AssociationEvent,
    DocumentFormat,
    DocumentHead,
    ErrorDeclaration,
    Event,
    ObjectEvent,
    PersistentDisposition,
    QuantityElement,
    SourceDestination,
    TransformationEvent,
    XmlElement,
)
from epcis.reading import read_document
from epcis.writing import write_document
from tests.epcis.strategies import documents_heads, events

WHEN = datetime(2024, 5, 6, 7, 8, 9, 123000, tzinfo=UTC)


def _head(document_format: DocumentFormat) -> DocumentHead:
    return DocumentHead(format=document_format, schema_version="x", creation_date=WHEN)


def _write(document_format: DocumentFormat, *items: Event) -> etree._Element:
    buffer = io.BytesIO()
    write_document(_head(document_format), items, buffer, document_format)
    return etree.fromstring(buffer.getvalue())


_OBJECT = ObjectEvent(
    event_time=WHEN,
    event_time_zone_offset="+02:00",
    event_id="urn:uuid:00000000-0000-4000-8000-000000000001",
    error_declaration=ErrorDeclaration(declaration_time=WHEN, reason="incorrect_data"),
    epc_list=("urn:epc:id:sgtin:0614141.107346.2017",),
    action="ADD",
    biz_step="commissioning",
    disposition="active",
    quantity_list=(QuantityElement(epc_class="urn:epc:class:lgtin:4012345.012345.998877"),),
    source_list=(SourceDestination(value="urn:epc:id:sgln:0614141.00001.0", type="location"),),
    persistent_disposition=PersistentDisposition(set=("completeness_verified",)),
    certification_info=("https://cert.example.org/1",),
    ilmd=(XmlElement(namespace="urn:epcglobal:cbv:mda", name="lotNumber", text="L1"),),
)


def _paths(element: etree._Element) -> list[str]:
    tree = element.getroottree()
    return [tree.getpath(node) for node in element.iter() if isinstance(node.tag, str)]


def test_1_2_layout_uses_wrappers_and_urns() -> None:
    root = _write(DocumentFormat.XML_1_2, _OBJECT)
    assert root.tag == "{urn:epcglobal:epcis:xsd:1}EPCISDocument"
    assert root.get("schemaVersion") == "1.2"
    event = root.find("EPCISBody/EventList/ObjectEvent")
    assert event is not None
    assert [child.tag for child in event] == [
        "eventTime",
        "eventTimeZoneOffset",
        "baseExtension",
        "epcList",
        "action",
        "bizStep",
        "disposition",
        "extension",
    ]
    assert event.findtext("baseExtension/eventID") == _OBJECT.event_id
    assert event.findtext("baseExtension/errorDeclaration/reason") == (
        "urn:epcglobal:cbv:er:incorrect_data"
    )
    assert event.findtext("bizStep") == "urn:epcglobal:cbv:bizstep:commissioning"
    assert [child.tag for child in event.find("extension")] == [  # type: ignore[union-attr]
        "quantityList",
        "sourceList",
        "ilmd",
        "extension",
    ]
    inner = event.find("extension/extension")
    assert inner is not None
    assert [child.tag for child in inner] == ["persistentDisposition", "certificationInfo"]
    assert event.findtext("extension/sourceList/source") == "urn:epc:id:sgln:0614141.00001.0"
    assert event.find("extension/sourceList/source").get("type") == (  # type: ignore[union-attr]
        "urn:epcglobal:cbv:sdt:location"
    )
    assert event.findtext("eventTime") == "2024-05-06T07:08:09.123Z"


def test_2_0_layout_is_flat_with_web_uris() -> None:
    root = _write(DocumentFormat.XML_2_0, _OBJECT)
    assert root.tag == "{urn:epcglobal:epcis:xsd:2}EPCISDocument"
    event = root.find("EPCISBody/EventList/ObjectEvent")
    assert event is not None
    assert [child.tag for child in event] == [
        "eventTime",
        "eventTimeZoneOffset",
        "eventID",
        "errorDeclaration",
        "certificationInfo",
        "epcList",
        "action",
        "bizStep",
        "disposition",
        "quantityList",
        "sourceList",
        "persistentDisposition",
        "ilmd",
    ]
    assert event.findtext("bizStep") == "https://ref.gs1.org/cbv/BizStep-commissioning"


def test_1_2_places_transformation_and_association_events_in_extension_wrappers() -> None:
    transformation = TransformationEvent(
        event_time=WHEN, event_time_zone_offset="+00:00", transformation_id="urn:x:1"
    )
    association = AssociationEvent(
        event_time=WHEN,
        event_time_zone_offset="+00:00",
        parent_id="urn:epc:id:sgln:0614141.00001.0",
        action="ADD",
    )
    root = _write(DocumentFormat.XML_1_2, transformation, association)
    paths = _paths(root)
    assert "/epcis:EPCISDocument/EPCISBody/EventList/extension[1]/TransformationEvent" in paths
    assert (
        "/epcis:EPCISDocument/EPCISBody/EventList/extension[2]/extension/AssociationEvent" in paths
    )
    flat = _paths(_write(DocumentFormat.XML_2_0, transformation, association))
    assert "/epcis:EPCISDocument/EPCISBody/EventList/TransformationEvent" in flat


def test_sender_prefixes_are_reused() -> None:
    head = DocumentHead(
        format=DocumentFormat.XML_1_2,
        schema_version="1.2",
        creation_date=WHEN,
        namespaces={"lot": "urn:epcglobal:cbv:mda"},
    )
    buffer = io.BytesIO()
    write_document(head, [_OBJECT], buffer, DocumentFormat.XML_1_2)
    # Standalone-written events re-declare the prefix (lxml.xmlfile), but it is the sender's.
    assert b"<lot:lotNumber" in buffer.getvalue()
    assert b"ns0" not in buffer.getvalue()


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(data=st.data(), target=st.sampled_from([DocumentFormat.XML_1_2, DocumentFormat.XML_2_0]))
def test_generated_events_round_trip(data: st.DataObject, target: DocumentFormat) -> None:
    head = data.draw(documents_heads(target))
    generated = data.draw(st.lists(events(), max_size=4))
    buffer = io.BytesIO()
    write_document(head, generated, buffer, target)
    doc = read_document(buffer.getvalue())
    assert doc.head == head
    assert list(doc.events) == generated
