"""Writes model events and documents as EPCIS 2.0 JSON-LD, streaming one event at a time.

The JSON conventions for extensions, attributes, SBDH and GS1 US healthcare header elements
are those described in :mod:`epcis.jsonld_reader`. The document ``@context`` is the GS1 context
URL plus one prefix for every namespace of ``head.namespaces`` that is not a GS1 context term;
an event that uses a namespace not declared there carries its own ``@context`` with a
generated prefix (``ns1``, ``ns2``...), so each event object is self-describing.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable, Mapping
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from functools import lru_cache
from typing import Any, BinaryIO, Literal

from epcis.jsonld_context import GS1_CONTEXT_URL, GS1_PREFIXES, GS1_TERMS, context_entry
from epcis.jsonld_reader import ATTRIBUTES_KEY, GS1USHC_NS, SBDH_NS, TEXT_KEY, UNQUALIFIED_KEY
from epcis.model import (
    AggregationEvent,
    AssociationEvent,
    DocumentHead,
    ErrorDeclaration,
    Event,
    EventBase,
    ObjectEvent,
    Partner,
    QuantityElement,
    SensorElement,
    StandardBusinessDocumentHeader,
    TransactionEvent,
    TransformationEvent,
    Vocabulary,
    XmlElement,
)

__all__ = ["EpcFormat", "event_to_jsonld", "head_to_jsonld", "json_time", "write_jsonld"]

EpcFormat = Literal["as-is", "urn", "digital-link"]


# --- prefixes --------------------------------------------------------------------------


@lru_cache(maxsize=64)
def _base_tables(namespaces: tuple[tuple[str, str], ...]) -> tuple[dict[str, str], set[str]]:
    """The starting tables of :class:`_Prefixes`; callers copy them before changing them."""
    by_namespace: dict[str, str] = {}
    for prefix, namespace in {**dict(namespaces), **GS1_PREFIXES}.items():
        by_namespace.setdefault(namespace, prefix)
    for prefix, namespace in GS1_PREFIXES.items():
        by_namespace[namespace] = prefix
    return by_namespace, set(GS1_TERMS) | {prefix for prefix, _ in namespaces}


class _Prefixes:
    """Namespace -> prefix for one output object; new namespaces get generated prefixes."""

    __slots__ = ("added", "by_namespace", "taken")

    def __init__(self, namespaces: Mapping[str, str]) -> None:
        # Most events use no namespace beyond the GS1 ones, so the tables start as shared,
        # memoised read-only ones and are copied only when a prefix has to be generated.
        key = tuple(namespaces.items())
        self.by_namespace, self.taken = _base_tables(key)
        self.added: dict[str, str] = {}

    def qname(self, namespace: str | None, name: str) -> str:
        if namespace is None:
            return name
        prefix = self.by_namespace.get(namespace)
        if prefix is None:
            number = len(self.added) + 1
            while f"ns{number}" in self.taken:
                number += 1
            prefix = f"ns{number}"
            if not self.added:
                self.by_namespace, self.taken = dict(self.by_namespace), set(self.taken)
            self.taken.add(prefix)
            self.by_namespace[namespace] = prefix
            self.added[prefix] = namespace
        return f"{prefix}:{name}"

    def clark(self, clark_name: str) -> str:
        if clark_name.startswith("{"):
            namespace, _, name = clark_name[1:].partition("}")
            return self.qname(namespace, name)
        return clark_name


def document_namespaces(namespaces: Mapping[str, str]) -> dict[str, str]:
    """The prefixes a document declares: the user's, minus any clash with a GS1 term."""
    return {
        prefix: namespace
        for prefix, namespace in namespaces.items()
        if prefix not in GS1_TERMS and namespace not in GS1_PREFIXES.values() and prefix
    }


# --- values ----------------------------------------------------------------------------


def json_time(value: datetime) -> str:
    """A timestamp as EPCIS JSON-LD writes it: UTC as ``Z``, milliseconds unless finer."""
    spec = "milliseconds" if value.microsecond % 1000 == 0 else "microseconds"
    text = value.isoformat(timespec=spec)
    return text[:-6] + "Z" if value.utcoffset() == UTC.utcoffset(None) else text


@lru_cache(maxsize=1024)
def _offset_time(value: datetime, offset: timedelta | None) -> str:
    return json_time(value)


def _time(value: datetime) -> str:
    """:func:`json_time`, memoised: events of a document share their times.

    Keyed on the offset too: datetimes at one instant in different zones are equal (and hash
    alike) but are written differently; at one instant and one offset the text is the same.
    """
    return _offset_time(value, value.utcoffset())


def _number(value: Decimal) -> int | float:
    """A JSON number; Decimal would not survive json.dumps or BSON."""
    integral = value.to_integral_value()
    return int(integral) if integral == value else float(value)


def _element_value(element: XmlElement, prefixes: _Prefixes) -> Any:
    if not element.attributes and not element.children:
        return element.text if element.text is not None else None
    out: dict[str, Any] = {}
    if element.attributes:
        out[ATTRIBUTES_KEY] = {prefixes.clark(k): v for k, v in element.attributes.items()}
    if element.text is not None:
        out[TEXT_KEY] = element.text
    _put_elements(out, element.children, prefixes, top=False)
    return out


def _put_elements(
    out: dict[str, Any],
    elements: Iterable[XmlElement],
    prefixes: _Prefixes,
    *,
    top: bool = True,
) -> None:
    """Elements as keys of ``out``; repeated names become arrays (in first-seen order).

    At ``top`` level (where a bare key would be a standard field) elements in no namespace
    are put under ``UNQUALIFIED_KEY``.
    """
    for element in elements:
        if top and element.namespace is None:
            _put_elements(out.setdefault(UNQUALIFIED_KEY, {}), [element], prefixes, top=False)
            continue
        key = prefixes.qname(element.namespace, element.name)
        value = _element_value(element, prefixes)
        if key not in out:
            out[key] = value
        elif isinstance(out[key], _Repeated):
            out[key].append(value)
        else:
            out[key] = _Repeated((out[key], value))


class _Repeated(list[Any]):
    """An array made of repeated elements."""


# --- events ----------------------------------------------------------------------------


def _quantities(items: tuple[QuantityElement, ...], epc: Callable[[str], str]) -> list[Any]:
    out = []
    for item in items:
        entry: dict[str, Any] = {"epcClass": epc(item.epc_class)}
        if item.quantity is not None:
            entry["quantity"] = _number(item.quantity)
        if item.uom is not None:
            entry["uom"] = item.uom
        out.append(entry)
    return out


def _error_declaration(value: ErrorDeclaration, prefixes: _Prefixes) -> dict[str, Any]:
    out: dict[str, Any] = {"declarationTime": _time(value.declaration_time)}
    if value.reason is not None:
        out["reason"] = value.reason
    if value.corrective_event_ids:
        out["correctiveEventIDs"] = list(value.corrective_event_ids)
    _put_elements(out, value.extensions, prefixes)
    return out


_SENSOR_NUMBERS = frozenset(
    {"value", "minValue", "maxValue", "meanValue", "sDev", "percRank", "percValue"}
)


def _sensor_part(part: Any, prefixes: _Prefixes, epc: Callable[[str], str]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for key, value in part.model_dump(by_alias=True, exclude_none=True).items():
        if key == "otherAttributes":
            continue
        if isinstance(value, datetime):
            out[key] = _time(value)
        elif key in _SENSOR_NUMBERS:
            out[key] = _number(value)
        elif key == "deviceID":
            out[key] = epc(value)
        else:
            out[key] = value
    for clark_name, text in part.other_attributes.items():
        out[prefixes.clark(clark_name)] = text
    return out


def _sensor_element(
    element: SensorElement, prefixes: _Prefixes, epc: Callable[[str], str]
) -> dict[str, Any]:
    out: dict[str, Any] = {}
    if element.sensor_metadata is not None:
        out["sensorMetadata"] = _sensor_part(element.sensor_metadata, prefixes, epc)
    if element.sensor_report:
        out["sensorReport"] = [_sensor_part(r, prefixes, epc) for r in element.sensor_report]
    _put_elements(out, element.extensions, prefixes)
    return out


def _common_tail(
    out: dict[str, Any], event: EventBase, prefixes: _Prefixes, epc: Callable[[str], str]
) -> None:
    """Fields after the type-specific ones, in EPCIS 2.0 order."""
    for key, value in (("bizStep", event.biz_step), ("disposition", event.disposition)):
        if value is not None:
            out[key] = value
    if event.persistent_disposition is not None:
        out["persistentDisposition"] = {
            k: list(v)
            for k, v in (
                ("set", event.persistent_disposition.set),
                ("unset", event.persistent_disposition.unset),
            )
            if v
        }
    for key, location, extensions in (
        ("readPoint", event.read_point, event.read_point_extensions),
        ("bizLocation", event.biz_location, event.biz_location_extensions),
    ):
        if location is not None:
            out[key] = {"id": epc(location)}
            _put_elements(out[key], extensions, prefixes)
    if event.biz_transaction_list:
        out["bizTransactionList"] = [
            {"type": b.type, "bizTransaction": b.value} if b.type else {"bizTransaction": b.value}
            for b in event.biz_transaction_list
        ]
    for key, field, items in (
        ("sourceList", "source", event.source_list),
        ("destinationList", "destination", event.destination_list),
    ):
        if items:
            out[key] = [{"type": s.type, field: epc(s.value)} for s in items]
    if event.sensor_element_list:
        out["sensorElementList"] = [
            _sensor_element(s, prefixes, epc) for s in event.sensor_element_list
        ]


def _type_specific(out: dict[str, Any], event: Event, epc: Callable[[str], str]) -> None:
    if isinstance(event, ObjectEvent):
        out["epcList"] = [epc(e) for e in event.epc_list]
        out["action"] = event.action.value
        if event.quantity_list:
            out["quantityList"] = _quantities(event.quantity_list, epc)
    elif isinstance(event, AggregationEvent | AssociationEvent):
        if event.parent_id is not None:
            out["parentID"] = epc(event.parent_id)
        out["childEPCs"] = [epc(e) for e in event.child_epcs]
        out["action"] = event.action.value
        if event.child_quantity_list:
            out["childQuantityList"] = _quantities(event.child_quantity_list, epc)
    elif isinstance(event, TransactionEvent):
        if event.parent_id is not None:
            out["parentID"] = epc(event.parent_id)
        out["epcList"] = [epc(e) for e in event.epc_list]
        out["action"] = event.action.value
        if event.quantity_list:
            out["quantityList"] = _quantities(event.quantity_list, epc)
    elif isinstance(event, TransformationEvent):
        for key, epcs, quantities in (
            ("input", event.input_epc_list, event.input_quantity_list),
            ("output", event.output_epc_list, event.output_quantity_list),
        ):
            if epcs:
                out[f"{key}EPCList"] = [epc(e) for e in epcs]
            if quantities:
                out[f"{key}QuantityList"] = _quantities(quantities, epc)
        if event.transformation_id is not None:
            out["transformationID"] = event.transformation_id


def _epc_converter(epc_format: EpcFormat) -> Callable[[str], str]:
    if epc_format == "as-is":
        return str
    from epcis import identifiers  # type: ignore[attr-defined,unused-ignore]

    convert: Callable[[str], str] = (
        identifiers.to_epc_urn if epc_format == "urn" else identifiers.to_digital_link
    )
    return convert


def event_to_jsonld(
    event: Event,
    namespaces: Mapping[str, str],
    *,
    epc_format: EpcFormat = "as-is",
    event_id: str | None = None,
    record_time: str | datetime | None = None,
) -> dict[str, Any]:
    """One model event as an EPCIS 2.0 JSON object; the inverse of ``event_from_jsonld``.

    ``namespaces`` (prefix -> XML namespace) are the prefixes already declared around the
    event; any other namespace the event uses is declared in an ``@context`` of its own.
    ``event_id`` and ``record_time`` (a datetime or its JSON text) stand in for the event's
    own fields: capture sets both without copying the frozen model.
    """
    prefixes = _Prefixes(namespaces)
    epc = _epc_converter(epc_format)
    out: dict[str, Any] = {
        "type": event.type,
        "eventTime": _time(event.event_time),
        "eventTimeZoneOffset": event.event_time_zone_offset,
    }
    if record_time is None:
        record_time = event.record_time
    if record_time is not None:
        out["recordTime"] = record_time if isinstance(record_time, str) else _time(record_time)
    if event_id is None:
        event_id = event.event_id
    if event_id is not None:
        out["eventID"] = event_id
    if event.error_declaration is not None:
        out["errorDeclaration"] = _error_declaration(event.error_declaration, prefixes)
    if event.certification_info:
        out["certificationInfo"] = list(event.certification_info)
    _type_specific(out, event, epc)
    _common_tail(out, event, prefixes, epc)
    ilmd = getattr(event, "ilmd", None)
    if ilmd is not None:
        out["ilmd"] = {}
        _put_elements(out["ilmd"], ilmd, prefixes)
    _put_elements(out, event.extensions, prefixes)
    if prefixes.added:
        context = {p: context_entry(ns) for p, ns in prefixes.added.items()}
        out = {"@context": context, **out}
    return out


# --- document head ---------------------------------------------------------------------


def _partner(partner: Partner) -> XmlElement:
    attributes = {"Authority": partner.authority} if partner.authority is not None else {}
    children = [
        XmlElement(
            namespace=SBDH_NS, name="Identifier", attributes=attributes, text=partner.identifier
        )
    ]
    for contact in partner.contact_information:
        children.append(
            XmlElement(
                namespace=SBDH_NS,
                name="ContactInformation",
                children=tuple(
                    XmlElement(namespace=SBDH_NS, name=name, text=value)
                    for name, value in (
                        ("Contact", contact.contact),
                        ("EmailAddress", contact.email_address),
                        ("FaxNumber", contact.fax_number),
                        ("TelephoneNumber", contact.telephone_number),
                        ("ContactTypeIdentifier", contact.contact_type_identifier),
                    )
                    if value is not None
                ),
            )
        )
    return XmlElement(namespace=SBDH_NS, name="Partner", children=tuple(children))


def _sbdh_element(sbdh: StandardBusinessDocumentHeader) -> XmlElement:
    ident = sbdh.document_identification

    def leaf(name: str, text: str) -> XmlElement:
        return XmlElement(namespace=SBDH_NS, name=name, text=text)

    identification = [
        leaf("Standard", ident.standard),
        leaf("TypeVersion", ident.type_version),
        leaf("InstanceIdentifier", ident.instance_identifier),
        leaf("Type", ident.type),
    ]
    if ident.multiple_type is not None:
        identification.append(leaf("MultipleType", "true" if ident.multiple_type else "false"))
    identification.append(leaf("CreationDateAndTime", _time(ident.creation_date_and_time)))
    children = [leaf("HeaderVersion", sbdh.header_version)]
    for name, partners in (("Sender", sbdh.sender), ("Receiver", sbdh.receiver)):
        children.extend(_partner(p).model_copy(update={"name": name}) for p in partners)
    children.append(
        XmlElement(namespace=SBDH_NS, name="DocumentIdentification", children=tuple(identification))
    )
    children.extend(e for e in (sbdh.manifest, sbdh.business_scope) if e is not None)
    return XmlElement(
        namespace=SBDH_NS, name="StandardBusinessDocumentHeader", children=tuple(children)
    )


def _vocabularies(vocabularies: tuple[Vocabulary, ...], prefixes: _Prefixes) -> list[Any]:
    out = []
    for vocabulary in vocabularies:
        elements = []
        for element in vocabulary.vocabulary_element_list:
            entry: dict[str, Any] = {"id": element.id}
            if element.attributes:
                attributes: list[dict[str, Any]] = []
                for attribute in element.attributes:
                    item: dict[str, Any] = {"id": attribute.id}
                    if attribute.children:
                        item["attribute"] = {}
                        _put_elements(item["attribute"], attribute.children, prefixes, top=False)
                    elif attribute.value is not None:
                        item["attribute"] = attribute.value
                    attributes.append(item)
                entry["attributes"] = attributes
            if element.children:
                entry["children"] = list(element.children)
            elements.append(entry)
        vocab: dict[str, Any] = {"type": vocabulary.type}
        if elements:
            vocab["vocabularyElementList"] = elements
        out.append(vocab)
    return out


def _header(head: DocumentHead, prefixes: _Prefixes) -> dict[str, Any] | None:
    header = head.header
    if header is None:
        return None
    out: dict[str, Any] = {}
    if header.standard_business_document_header is not None:
        _put_elements(out, [_sbdh_element(header.standard_business_document_header)], prefixes)
    if header.master_data:
        out["epcisMasterData"] = {"vocabularyList": _vocabularies(header.master_data, prefixes)}
    hc = header.gs1ushc
    if hc is not None:
        elements = []
        if hc.guideline_version is not None:
            elements.append(
                XmlElement(namespace=GS1USHC_NS, name="guidelineVersion", text=hc.guideline_version)
            )
        statement = hc.dscsa_transaction_statement
        if statement is not None:
            children = [
                XmlElement(
                    namespace=GS1USHC_NS,
                    name="affirmTransactionStatement",
                    text="true" if statement.affirm_transaction_statement else "false",
                )
            ]
            if statement.legal_notice is not None:
                children.append(
                    XmlElement(
                        namespace=GS1USHC_NS, name="legalNotice", text=statement.legal_notice
                    )
                )
            children.extend(statement.other)
            elements.append(
                XmlElement(
                    namespace=GS1USHC_NS, name="dscsaTransactionStatement", children=tuple(children)
                )
            )
        _put_elements(out, elements, prefixes)
    _put_elements(out, header.extensions, prefixes)
    return out


def head_to_jsonld(head: DocumentHead) -> tuple[dict[str, Any], dict[str, str]]:
    """The document object without its events, and the prefixes it declares."""
    declared = document_namespaces(head.namespaces)
    prefixes = _Prefixes(declared)
    out: dict[str, Any] = {
        "type": "EPCISDocument",
        "schemaVersion": "2.0",
        "creationDate": _time(head.creation_date),
    }
    sbdh = head.header.standard_business_document_header if head.header else None
    if sbdh is not None:
        # The GS1 context's own (pseudo-SBDH) terms, for consumers that read only those.
        if sbdh.sender:
            out["sender"] = sbdh.sender[0].identifier
        if sbdh.receiver:
            out["receiver"] = sbdh.receiver[0].identifier
        out["instanceIdentifier"] = sbdh.document_identification.instance_identifier
    header = _header(head, prefixes)
    if header is not None:
        out["epcisHeader"] = header
    _put_elements(out, head.extensions, prefixes)
    declared.update(prefixes.added)
    context: list[Any] = [GS1_CONTEXT_URL]
    if declared:
        context.append({p: context_entry(ns) for p, ns in declared.items()})
    return {"@context": context, **out}, declared


def write_jsonld(
    head: DocumentHead,
    events: Iterable[Event],
    stream: BinaryIO,
    *,
    epc_format: EpcFormat = "as-is",
) -> None:
    """Write an EPCIS 2.0 JSON-LD document: the head first, then each event as it comes."""
    document, declared = head_to_jsonld(head)
    document["epcisBody"] = {"eventList": []}
    opening = json.dumps(document, ensure_ascii=False, separators=(",", ":"))
    # The document ends with the empty eventList "[]}}": write up to its "[" and stream.
    stream.write(opening[: -len("]}}")].encode())
    separator = b""
    for event in events:
        stream.write(separator)
        stream.write(
            json.dumps(
                event_to_jsonld(event, declared, epc_format=epc_format),
                ensure_ascii=False,
                separators=(",", ":"),
            ).encode()
        )
        separator = b","
    stream.write(b"]}}")
