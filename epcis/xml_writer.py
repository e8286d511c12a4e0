"""Streaming writer of EPCIS 1.2 and 2.0 XML documents from the model.

The header is written first, then each event as it comes from the iterable
(``lxml.etree.xmlfile``), so any number of events is written in bounded memory.

1.2 output follows the 1.2 XSD: CBV values as URNs, identifiers as EPC URNs where they can be,
``eventID``/``errorDeclaration`` in ``baseExtension``, 1.1 fields in ``extension``,
TransformationEvent inside ``EventList/extension``. Fields 1.2 has no slot for are written
where GS1's own 1.2 examples put them, so nothing is lost: AssociationEvent as
``EventList/extension/extension/AssociationEvent``, and ``sensorElementList``,
``persistentDisposition`` and ``certificationInfo`` inside the event's innermost
``extension`` (the 1.2 ``##local`` slot). 2.0 output puts every field directly in the event,
with CBV values as Web URIs. gs1ushc header elements follow the header ``extension`` in both
versions (the 2.0 XSD has no slot for them; dropping them would lose the DSCSA statement).
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime, timedelta
from decimal import Decimal
from typing import Any, BinaryIO, Literal

from lxml import etree

from epcis import vocabulary
from epcis.errors import InvalidIdentifierError
from epcis.identifiers import to_epc_urn
from epcis.model import (
    AggregationEvent,
    AssociationEvent,
    BizTransaction,
    EPCISHeader,
    ErrorDeclaration,
    Event,
    EventBase,
    ObjectEvent,
    Partner,
    QuantityElement,
    SensorElement,
    SourceDestination,
    StandardBusinessDocumentHeader,
    TransactionEvent,
    TransformationEvent,
    Vocabulary,
    XmlElement,
)
from epcis.model import DocumentHead as Head
from epcis.xml_reader import GS1USHC_NS, SBDH_NS

__all__ = ["event_element", "format_time", "write_xml"]

_ROOT_NS = {"1.2": "urn:epcglobal:epcis:xsd:1", "2.0": "urn:epcglobal:epcis:xsd:2"}
_EPCIS_CORE = ("urn:epcglobal:epcis", "urn:epcglobal:epcis-query", "urn:epcglobal:epcis-masterdata")
_XSI_NIL = "{http://www.w3.org/2001/XMLSchema-instance}nil"
_CBV = vocabulary.CBVKind
_DEFAULT_PREFIXES = {
    SBDH_NS: "sbdh",
    GS1USHC_NS: "gs1ushc",
    "urn:epcglobal:cbv:mda": "cbvmda",
    "http://www.w3.org/2001/XMLSchema-instance": "xsi",
}
Version = Literal["1.2", "2.0"]


def format_time(value: datetime) -> str:
    """xsd:dateTime with the value's own offset (``Z`` for UTC), milliseconds when exact."""
    spec = "milliseconds" if value.microsecond % 1000 == 0 else "microseconds"
    text = value.isoformat(timespec=spec)
    if value.utcoffset() == timedelta(0):
        text = text[: -len("+00:00")] + "Z"
    return text


def _decimal(value: Decimal) -> str:
    return format(value, "f")


class _Writer:
    """Per-document state: version-specific spellings and namespace prefixes."""

    def __init__(self, version: Version, namespaces: dict[str, str]) -> None:
        self.version = version
        self.prefixes: dict[str, str] = {}
        for prefix, uri in namespaces.items():
            if not uri.startswith(_EPCIS_CORE) and uri not in self.prefixes:
                self.prefixes[uri] = prefix
        self._root = {
            prefix: uri
            for prefix, uri in namespaces.items()
            if not uri.startswith(_EPCIS_CORE) and prefix != "epcis"
        }
        for uri, prefix in _DEFAULT_PREFIXES.items():
            if prefix not in self._root:
                self.prefixes.setdefault(uri, prefix)
        self._urn = version == "1.2"

    def root_nsmap(self) -> dict[str | None, str]:
        """The sender's own root declarations (round trips keep them), plus ``epcis``."""
        nsmap: dict[str | None, str] = {"epcis": _ROOT_NS[self.version]}
        nsmap.update(self._root)
        return nsmap

    def declared(self, parent: etree._Element | None, tag: str, uri: str) -> etree._Element:
        """A new element in namespace ``uri``, declaring its prefix on it when the root doesn't."""
        nsmap = {} if uri in self._root.values() else {self.prefix_for(uri): uri}
        if parent is None:
            return etree.Element(f"{{{uri}}}{tag}", nsmap=nsmap)
        return etree.SubElement(parent, f"{{{uri}}}{tag}", nsmap=nsmap)

    def prefix_for(self, uri: str) -> str:
        prefix = self.prefixes.get(uri)
        if prefix is None:
            prefix = f"ns{len(self.prefixes)}"
            self.prefixes[uri] = prefix
        return prefix

    # -- spellings --

    def cbv(self, kind: vocabulary.CBVKind, value: str) -> str:
        if self.version == "1.2":
            return vocabulary.to_urn(kind, value)
        return vocabulary.to_web_uri(kind, value)

    def epc(self, value: str) -> str:
        if not self._urn or value.startswith("urn:"):
            return value
        try:
            return to_epc_urn(value)
        except InvalidIdentifierError:
            return value  # no URN form (unknown company prefix length): keep the Digital Link

    # -- generic elements --

    def xml(self, parent: etree._Element | None, item: XmlElement) -> etree._Element:
        nsmap: dict[str, str] = {}
        if item.namespace is not None:
            nsmap[self.prefix_for(item.namespace)] = item.namespace
        for name in item.attributes:
            if name.startswith("{"):
                uri = name[1 : name.index("}")]
                nsmap[self.prefix_for(uri)] = uri
        if parent is None:
            element = etree.Element(item.clark_name, nsmap=nsmap)
        else:
            element = etree.SubElement(parent, item.clark_name, nsmap=nsmap)
        for name, value in item.attributes.items():
            element.set(name, value)
        element.text = item.text
        for child in item.children:
            self.xml(element, child)
        return element


def _sub(parent: etree._Element, tag: str, text: str | None = None) -> etree._Element:
    element = etree.SubElement(parent, tag)
    if text is not None:
        element.text = text
    return element


# --- header ------------------------------------------------------------------------------


def _partner(parent: etree._Element, tag: str, partner: Partner) -> None:
    element = _sub(parent, f"{{{SBDH_NS}}}{tag}")
    identifier = _sub(element, f"{{{SBDH_NS}}}Identifier", partner.identifier)
    if partner.authority is not None:
        identifier.set("Authority", partner.authority)
    for contact in partner.contact_information:
        info = _sub(element, f"{{{SBDH_NS}}}ContactInformation")
        for name, value in (
            ("Contact", contact.contact),
            ("EmailAddress", contact.email_address),
            ("FaxNumber", contact.fax_number),
            ("TelephoneNumber", contact.telephone_number),
            ("ContactTypeIdentifier", contact.contact_type_identifier),
        ):
            if value is not None:
                _sub(info, f"{{{SBDH_NS}}}{name}", value)


def _sbdh(w: _Writer, parent: etree._Element, sbdh: StandardBusinessDocumentHeader) -> None:
    root = w.declared(parent, "StandardBusinessDocumentHeader", SBDH_NS)
    _sub(root, f"{{{SBDH_NS}}}HeaderVersion", sbdh.header_version)
    for sender in sbdh.sender:
        _partner(root, "Sender", sender)
    for receiver in sbdh.receiver:
        _partner(root, "Receiver", receiver)
    ident = sbdh.document_identification
    element = _sub(root, f"{{{SBDH_NS}}}DocumentIdentification")
    _sub(element, f"{{{SBDH_NS}}}Standard", ident.standard)
    _sub(element, f"{{{SBDH_NS}}}TypeVersion", ident.type_version)
    _sub(element, f"{{{SBDH_NS}}}InstanceIdentifier", ident.instance_identifier)
    _sub(element, f"{{{SBDH_NS}}}Type", ident.type)
    if ident.multiple_type is not None:
        _sub(element, f"{{{SBDH_NS}}}MultipleType", "true" if ident.multiple_type else "false")
    _sub(element, f"{{{SBDH_NS}}}CreationDateAndTime", format_time(ident.creation_date_and_time))
    for raw in (sbdh.manifest, sbdh.business_scope):
        if raw is not None:
            w.xml(root, raw)


def _vocabularies(w: _Writer, parent: etree._Element, items: Iterable[Vocabulary]) -> None:
    for item in items:
        element = _sub(parent, "Vocabulary")
        element.set("type", item.type)
        if not item.vocabulary_element_list:
            continue
        listing = _sub(element, "VocabularyElementList")
        for entry in item.vocabulary_element_list:
            entry_element = _sub(listing, "VocabularyElement")
            entry_element.set("id", entry.id)
            for attribute in entry.attributes:
                attribute_element = _sub(entry_element, "attribute", attribute.value)
                attribute_element.set("id", attribute.id)
                for child in attribute.children:
                    w.xml(attribute_element, child)
            if entry.children:
                children = _sub(entry_element, "children")
                for child_id in entry.children:
                    _sub(children, "id", child_id)


def _header(w: _Writer, header: EPCISHeader) -> etree._Element:
    element = etree.Element("EPCISHeader")
    if header.standard_business_document_header is not None:
        _sbdh(w, element, header.standard_business_document_header)
    local = [item for item in header.extensions if item.namespace is None]
    if header.master_data or local:
        extension = _sub(element, "extension")
        if header.master_data:
            vocabulary_list = _sub(_sub(extension, "EPCISMasterData"), "VocabularyList")
            _vocabularies(w, vocabulary_list, header.master_data)
        if local:
            inner = _sub(extension, "extension")
            for item in local:
                w.xml(inner, item)
    gs1ushc = header.gs1ushc
    if gs1ushc is not None:
        if gs1ushc.guideline_version is not None:
            version = w.declared(element, "guidelineVersion", GS1USHC_NS)
            version.text = gs1ushc.guideline_version
        statement = gs1ushc.dscsa_transaction_statement
        if statement is not None:
            ts = w.declared(element, "dscsaTransactionStatement", GS1USHC_NS)
            affirm = "true" if statement.affirm_transaction_statement else "false"
            _sub(ts, f"{{{GS1USHC_NS}}}affirmTransactionStatement", affirm)
            if statement.legal_notice is not None:
                _sub(ts, f"{{{GS1USHC_NS}}}legalNotice", statement.legal_notice)
            for item in statement.other:
                w.xml(ts, item)
    for item in header.extensions:
        if item.namespace is not None:
            w.xml(element, item)
    return element


# --- event parts -------------------------------------------------------------------------


def _epcs(w: _Writer, parent: etree._Element, tag: str, epcs: tuple[str, ...]) -> None:
    element = _sub(parent, tag)
    for epc in epcs:
        _sub(element, "epc", w.epc(epc))


def _quantities(
    w: _Writer, parent: etree._Element, tag: str, items: tuple[QuantityElement, ...]
) -> None:
    element = _sub(parent, tag)
    for item in items:
        quantity_element = _sub(element, "quantityElement")
        _sub(quantity_element, "epcClass", w.epc(item.epc_class))
        if item.quantity is not None:
            _sub(quantity_element, "quantity", _decimal(item.quantity))
        elif item.uom is not None:
            _sub(quantity_element, "quantity").set(_XSI_NIL, "true")
        if item.uom is not None:
            _sub(quantity_element, "uom", item.uom)


def _biz_transactions(
    w: _Writer, parent: etree._Element, items: tuple[BizTransaction, ...]
) -> None:
    element = _sub(parent, "bizTransactionList")
    for item in items:
        entry = _sub(element, "bizTransaction", item.value)
        if item.type is not None:
            entry.set("type", w.cbv(_CBV.BIZ_TRANSACTION_TYPE, item.type))


def _sources(
    w: _Writer, parent: etree._Element, tag: str, items: tuple[SourceDestination, ...]
) -> None:
    element = _sub(parent, f"{tag}List")
    for item in items:
        entry = _sub(element, tag, w.epc(item.value))
        entry.set("type", w.cbv(_CBV.SOURCE_DESTINATION_TYPE, item.type))


def _location(
    w: _Writer, parent: etree._Element, tag: str, value: str | None, extra: tuple[XmlElement, ...]
) -> None:
    if value is None:
        return
    element = _sub(parent, tag)
    _sub(element, "id", w.epc(value))
    for item in extra:
        w.xml(element, item)


def _error_declaration(w: _Writer, parent: etree._Element, item: ErrorDeclaration) -> None:
    element = _sub(parent, "errorDeclaration")
    _sub(element, "declarationTime", format_time(item.declaration_time))
    if item.reason is not None:
        _sub(element, "reason", w.cbv(_CBV.ERROR_REASON, item.reason))
    if item.corrective_event_ids:
        ids = _sub(element, "correctiveEventIDs")
        for event_id in item.corrective_event_ids:
            _sub(ids, "correctiveEventID", event_id)
    local = [extra for extra in item.extensions if extra.namespace is None]
    if local:
        extension = _sub(element, "extension")
        for extra in local:
            w.xml(extension, extra)
    for extra in item.extensions:
        if extra.namespace is not None:
            w.xml(element, extra)


def _sensor_attributes(element: etree._Element, model: Any) -> None:
    for name, info in type(model).model_fields.items():
        if name == "other_attributes":
            continue
        value = getattr(model, name)
        if value is None:
            continue
        if isinstance(value, datetime):
            text = format_time(value)
        elif isinstance(value, bool):
            text = "true" if value else "false"
        elif isinstance(value, Decimal):
            text = _decimal(value)
        else:
            text = str(value)
        element.set(info.alias or name, text)
    for name, value in model.other_attributes.items():
        element.set(name, value)


def _sensors(w: _Writer, parent: etree._Element, items: tuple[SensorElement, ...]) -> None:
    element = _sub(parent, "sensorElementList")
    for item in items:
        sensor = _sub(element, "sensorElement")
        if item.sensor_metadata is not None:
            metadata = item.sensor_metadata
            _namespaces_of(w, metadata.other_attributes)
            _sensor_attributes(_sub(sensor, "sensorMetadata"), metadata)
        for report in item.sensor_report:
            _namespaces_of(w, report.other_attributes)
            _sensor_attributes(_sub(sensor, "sensorReport"), report)
        for extra in item.extensions:
            w.xml(sensor, extra)


def _namespaces_of(w: _Writer, attributes: dict[str, str]) -> None:
    for name in attributes:
        if name.startswith("{"):
            w.prefix_for(name[1 : name.index("}")])


def _late_fields(w: _Writer, parent: etree._Element, event: EventBase) -> None:
    """sensorElementList and persistentDisposition (2.0 fields; in 1.2, the ##local slot)."""
    if event.sensor_element_list:
        _sensors(w, parent, event.sensor_element_list)
    if event.persistent_disposition is not None:
        element = _sub(parent, "persistentDisposition")
        for value in event.persistent_disposition.unset:
            _sub(element, "unset", w.cbv(_CBV.DISPOSITION, value))
        for value in event.persistent_disposition.set:
            _sub(element, "set", w.cbv(_CBV.DISPOSITION, value))


def _local_slot(w: _Writer, parent: etree._Element, event: EventBase) -> None:
    """1.2: what only has a 2.0 name, in the innermost ##local extension slot."""
    _late_fields(w, parent, event)
    for value in event.certification_info:
        _sub(parent, "certificationInfo", value)
    for extra in event.extensions:
        if extra.namespace is None:
            w.xml(parent, extra)


def _needs_local_slot(event: EventBase) -> bool:
    return bool(
        event.sensor_element_list
        or event.persistent_disposition is not None
        or event.certification_info
        or any(extra.namespace is None for extra in event.extensions)
    )


# --- events ------------------------------------------------------------------------------


def _common(w: _Writer, element: etree._Element, event: EventBase) -> None:
    _sub(element, "eventTime", format_time(event.event_time))
    if event.record_time is not None:
        _sub(element, "recordTime", format_time(event.record_time))
    _sub(element, "eventTimeZoneOffset", event.event_time_zone_offset)
    if w.version == "1.2":
        if event.event_id is not None or event.error_declaration is not None:
            base = _sub(element, "baseExtension")
            if event.event_id is not None:
                _sub(base, "eventID", event.event_id)
            if event.error_declaration is not None:
                _error_declaration(w, base, event.error_declaration)
        return
    if event.event_id is not None:
        _sub(element, "eventID", event.event_id)
    if event.error_declaration is not None:
        _error_declaration(w, element, event.error_declaration)
    for value in event.certification_info:
        _sub(element, "certificationInfo", value)


def _what_where_why(
    w: _Writer, element: etree._Element, event: EventBase, *, transactions: bool
) -> None:
    if event.biz_step is not None:
        _sub(element, "bizStep", w.cbv(_CBV.BIZ_STEP, event.biz_step))
    if event.disposition is not None:
        _sub(element, "disposition", w.cbv(_CBV.DISPOSITION, event.disposition))
    _location(w, element, "readPoint", event.read_point, event.read_point_extensions)
    _location(w, element, "bizLocation", event.biz_location, event.biz_location_extensions)
    if transactions and event.biz_transaction_list:
        _biz_transactions(w, element, event.biz_transaction_list)


def _tail_lists(
    w: _Writer,
    parent: etree._Element,
    event: EventBase,
    quantities: tuple[str, tuple[QuantityElement, ...]] | None,
) -> None:
    if quantities is not None and quantities[1]:
        _quantities(w, parent, quantities[0], quantities[1])
    if event.source_list:
        _sources(w, parent, "source", event.source_list)
    if event.destination_list:
        _sources(w, parent, "destination", event.destination_list)


def _user_extensions(w: _Writer, element: etree._Element, event: EventBase) -> None:
    if w.version == "2.0" or isinstance(event, AssociationEvent):
        local = [extra for extra in event.extensions if extra.namespace is None]
        if local:
            extension = _sub(element, "extension")
            for extra in local:
                w.xml(extension, extra)
    for extra in event.extensions:
        if extra.namespace is not None:
            w.xml(element, extra)


def _wrapped_1_2(
    w: _Writer,
    element: etree._Element,
    event: EventBase,
    quantities: tuple[str, tuple[QuantityElement, ...]],
    ilmd: tuple[XmlElement, ...] | None,
) -> None:
    """1.2 Object/Aggregation/TransactionEvent: 1.1 fields in extension, 2.0 ones deeper."""
    if not (
        quantities[1]
        or event.source_list
        or event.destination_list
        or ilmd is not None
        or _needs_local_slot(event)
    ):
        return
    extension = _sub(element, "extension")
    _tail_lists(w, extension, event, quantities)
    if ilmd is not None:
        _ilmd(w, extension, ilmd)
    if _needs_local_slot(event):
        _local_slot(w, _sub(extension, "extension"), event)


def _ilmd(w: _Writer, parent: etree._Element, ilmd: tuple[XmlElement, ...]) -> None:
    element = _sub(parent, "ilmd")
    for item in ilmd:
        w.xml(element, item)


def _object(w: _Writer, event: ObjectEvent) -> etree._Element:
    element = etree.Element("ObjectEvent")
    _common(w, element, event)
    if event.epc_list or w.version == "1.2":
        _epcs(w, element, "epcList", event.epc_list)
    _sub(element, "action", event.action.value)
    _what_where_why(w, element, event, transactions=True)
    if w.version == "1.2":
        _wrapped_1_2(w, element, event, ("quantityList", event.quantity_list), event.ilmd)
    else:
        _tail_lists(w, element, event, ("quantityList", event.quantity_list))
        _late_fields(w, element, event)
        if event.ilmd is not None:
            _ilmd(w, element, event.ilmd)
    _user_extensions(w, element, event)
    return element


def _aggregation(w: _Writer, event: AggregationEvent | AssociationEvent) -> etree._Element:
    name = "AggregationEvent" if isinstance(event, AggregationEvent) else "AssociationEvent"
    element = etree.Element(name)
    _common(w, element, event)
    if event.parent_id is not None:
        _sub(element, "parentID", w.epc(event.parent_id))
    if event.child_epcs or (w.version == "1.2" and name == "AggregationEvent"):
        _epcs(w, element, "childEPCs", event.child_epcs)
    if name == "AssociationEvent" and event.child_quantity_list:
        _quantities(w, element, "childQuantityList", event.child_quantity_list)
    _sub(element, "action", event.action.value)
    _what_where_why(w, element, event, transactions=True)
    quantities = (
        "childQuantityList",
        event.child_quantity_list if name == "AggregationEvent" else (),
    )
    if w.version == "1.2" and name == "AggregationEvent":
        _wrapped_1_2(w, element, event, quantities, None)
    else:
        _tail_lists(w, element, event, quantities)
        _late_fields(w, element, event)
        if (
            w.version == "1.2"
        ):  # AssociationEvent in 1.2 keeps its 2.0 layout, bar certificationInfo
            for value in event.certification_info:
                _sub(element, "certificationInfo", value)
    _user_extensions(w, element, event)
    return element


def _transaction(w: _Writer, event: TransactionEvent) -> etree._Element:
    element = etree.Element("TransactionEvent")
    _common(w, element, event)
    _biz_transactions(w, element, event.biz_transaction_list)
    if event.parent_id is not None:
        _sub(element, "parentID", w.epc(event.parent_id))
    if event.epc_list or w.version == "1.2":
        _epcs(w, element, "epcList", event.epc_list)
    _sub(element, "action", event.action.value)
    _what_where_why(w, element, event, transactions=False)
    if w.version == "1.2":
        _wrapped_1_2(w, element, event, ("quantityList", event.quantity_list), None)
    else:
        _tail_lists(w, element, event, ("quantityList", event.quantity_list))
        _late_fields(w, element, event)
    _user_extensions(w, element, event)
    return element


def _transformation(w: _Writer, event: TransformationEvent) -> etree._Element:
    element = etree.Element("TransformationEvent")
    _common(w, element, event)
    if event.input_epc_list:
        _epcs(w, element, "inputEPCList", event.input_epc_list)
    if event.input_quantity_list:
        _quantities(w, element, "inputQuantityList", event.input_quantity_list)
    if event.output_epc_list:
        _epcs(w, element, "outputEPCList", event.output_epc_list)
    if event.output_quantity_list:
        _quantities(w, element, "outputQuantityList", event.output_quantity_list)
    if event.transformation_id is not None:
        _sub(element, "transformationID", event.transformation_id)
    _what_where_why(w, element, event, transactions=True)
    _tail_lists(w, element, event, None)
    if w.version == "1.2":
        if event.ilmd is not None:
            _ilmd(w, element, event.ilmd)
        if _needs_local_slot(event):
            _local_slot(w, _sub(element, "extension"), event)
    else:
        _late_fields(w, element, event)
        if event.ilmd is not None:
            _ilmd(w, element, event.ilmd)
    _user_extensions(w, element, event)
    return element


def event_element(w: _Writer, event: Event) -> etree._Element:
    """One event as its XML element, wrapped for 1.2 where the 1.2 schema needs it."""
    if isinstance(event, ObjectEvent):
        return _object(w, event)
    if isinstance(event, TransactionEvent):
        return _transaction(w, event)
    if isinstance(event, AggregationEvent):
        return _aggregation(w, event)
    if isinstance(event, TransformationEvent):
        element = _transformation(w, event)
        if w.version == "1.2":
            wrapper = etree.Element("extension")
            wrapper.append(element)
            return wrapper
        return element
    element = _aggregation(w, event)
    if w.version == "1.2":
        outer = etree.Element("extension")
        _sub(outer, "extension").append(element)
        return outer
    return element


def write_xml(head: Head, events: Iterable[Event], stream: BinaryIO, *, version: Version) -> None:
    """Write the document to ``stream``: header first, then each event as it is produced."""
    w = _Writer(version, head.namespaces)
    root_nsmap = w.root_nsmap()
    header = _header(w, head.header) if head.header is not None else None
    # Keep the sender's minor version when it belongs to the version written.
    schema_version = head.schema_version if head.schema_version[:1] == version[0] else version
    attributes = {"schemaVersion": schema_version, "creationDate": format_time(head.creation_date)}
    root_tag = f"{{{_ROOT_NS[version]}}}EPCISDocument"
    with etree.xmlfile(stream, encoding="utf-8") as xf:
        xf.write_declaration()
        with xf.element(root_tag, attributes, nsmap=root_nsmap):
            xf.write("\n")
            if header is not None:
                xf.write(header)
                xf.write("\n")
            with xf.element("EPCISBody"), xf.element("EventList"):
                xf.write("\n")
                for event in events:
                    xf.write(event_element(w, event))
                    xf.write("\n")
            for extra in head.extensions:
                xf.write(w.xml(None, extra))
        xf.flush()
