"""Streaming reader of EPCIS 1.2 and 2.0 XML documents into the model, one event at a time.

The document is parsed with ``lxml.etree.iterparse``; each event element is converted as soon
as it is complete and then removed from the tree, so memory stays bounded whatever the
document size. The reader is lenient about layout and strict about content: 1.2 wrappers
(``baseExtension``, ``extension``, ``extension/extension``) and 2.0 direct children are both
accepted in any order, while unknown standard elements, bad actions, unparsable times and the
like raise :class:`InvalidDocumentError` naming source, line and element path. Element order
is the XSD validator's business, not the reader's.

Events are built without validation (:func:`_build`) from values this module has already
checked (types, tz-aware times, enum values, tuples). Measured on a DSCSA-like file, reading runs
at about 35% of a bare ``iterparse`` loop this way and at about 25% with a top-level
``model_validate``; the test suite checks every model built here against full validation.

Not kept (the model has no place for them): the query-document wrapper (``queryName``,
``subscriptionID``), ``readPoint``/``bizLocation`` extensions, vocabulary-element extensions,
text after a child element in mixed content. Document-level elements after ``EPCISBody`` come
after the events in the stream, so only :func:`read_xml_document` puts them in the head.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from decimal import Decimal, InvalidOperation
from functools import lru_cache
from typing import TYPE_CHECKING, Any, BinaryIO, TypeVar

from lxml import etree
from pydantic import BaseModel, ValidationError

from epcis import vocabulary
from epcis.errors import (
    DocumentTooLargeError,
    InvalidDocumentError,
    InvalidIdentifierError,
    Problem,
    UnsupportedFormatError,
)
from epcis.identifiers import canonical_class, canonical_epc
from epcis.model import (
    EPCIS_EVENT_TYPES,
    Action,
    BizTransaction,
    ContactInformation,
    DocumentFormat,
    DocumentHead,
    DocumentIdentification,
    DSCSATransactionStatement,
    EPCISHeader,
    ErrorDeclaration,
    Event,
    GS1USHealthcareHeader,
    Partner,
    PersistentDisposition,
    QuantityElement,
    SensorElement,
    SensorMetadata,
    SensorReport,
    SourceDestination,
    StandardBusinessDocumentHeader,
    Vocabulary,
    VocabularyAttribute,
    VocabularyElement,
    XmlElement,
)
from epcis.xml_safety import (
    MAX_PROLOG_BYTES,
    BoundedReader,
    check_prolog,
    read_prolog,
    safe_iterparse,
)

if TYPE_CHECKING:
    from epcis.reading import ReadLimits

__all__ = [
    "EPCIS_NAMESPACES",
    "GS1USHC_NS",
    "SBDH_NS",
    "format_of_root",
    "iter_xml",
    "read_xml_document",
]

SBDH_NS = "http://www.unece.org/cefact/namespaces/StandardBusinessDocumentHeader"
GS1USHC_NS = "http://epcis.gs1us.org/hc/ns"
XSI_NIL = "{http://www.w3.org/2001/XMLSchema-instance}nil"

# Root namespace -> (format, root local names it may carry).
EPCIS_NAMESPACES: dict[str, DocumentFormat] = {
    "urn:epcglobal:epcis:xsd:1": DocumentFormat.XML_1_2,
    "urn:epcglobal:epcis-query:xsd:1": DocumentFormat.XML_1_2,
    "urn:epcglobal:epcis-masterdata:xsd:1": DocumentFormat.XML_1_2,
    "urn:epcglobal:epcis:xsd:2": DocumentFormat.XML_2_0,
    "urn:epcglobal:epcis-query:xsd:2": DocumentFormat.XML_2_0,
    "urn:epcglobal:epcis-masterdata:xsd:2": DocumentFormat.XML_2_0,
}
_ROOT_NAMES = frozenset({"EPCISDocument", "EPCISQueryDocument", "EPCISMasterDataDocument"})
_EVENT_NAMES = frozenset(EPCIS_EVENT_TYPES)
_TAGS = [
    "{*}EPCISDocument",
    "{*}EPCISQueryDocument",
    "{*}EPCISMasterDataDocument",
    "{}EPCISHeader",
    "{}EPCISBody",
    "{}EventList",
    "{*}QueryResults",
    "{}QuantityEvent",
    *(f"{{}}{name}" for name in EPCIS_EVENT_TYPES),
]
# xsd:dateTime; seconds may be missing (seen in real files), Python fills in zero.
_DATETIME = re.compile(r"-?\d{4,}-\d\d-\d\dT\d\d:\d\d(?::\d\d(?:\.\d+)?)?(Z|[+-]\d\d:\d\d)?")
_OFFSET = re.compile(r"[+-](\d\d):(\d\d)")
_DIGITAL_LINK_KEY = re.compile(
    r"^https?://[^/]+(?:/.*)?/(?:00|01|253|255|401|402|414|417|8003|8004|8006|8010|8017|8018)/"
)


def format_of_root(namespace: str | None, local_name: str) -> DocumentFormat:
    """The XML format a root element names, or :class:`UnsupportedFormatError`."""
    document_format = EPCIS_NAMESPACES.get(namespace or "")
    if document_format is None or local_name not in _ROOT_NAMES:
        if local_name in _EVENT_NAMES:
            reason = f"root element {local_name} is a bare event, not an EPCIS document"
        else:
            reason = f"root element {{{namespace or ''}}}{local_name} is not an EPCIS document"
        raise UnsupportedFormatError(reason)
    return document_format


# --- identifiers -------------------------------------------------------------------------


@lru_cache(maxsize=4096)
def _maybe_location(value: str) -> str:
    """Location-like ids (readPoint, source...) canonical when they are GS1 keys, else as given."""
    if value.startswith("urn:epc:id:") or _DIGITAL_LINK_KEY.match(value):
        try:
            return canonical_epc(value)
        except InvalidIdentifierError:
            return value
    return value


# --- fast construction --------------------------------------------------------------------

_ModelT = TypeVar("_ModelT", bound=BaseModel)
_DEFAULTS: dict[type[BaseModel], dict[str, Any]] = {}
_FACTORIES: dict[type[BaseModel], dict[str, Callable[[], Any]]] = {}


def _defaults(model: type[BaseModel]) -> dict[str, Any]:
    defaults: dict[str, Any] = {}
    factories: dict[str, Callable[[], Any]] = {}
    for name, info in model.model_fields.items():
        if info.default_factory is not None:
            factories[name] = info.default_factory  # type: ignore[assignment]
        elif not info.is_required():
            defaults[name] = info.default
    _DEFAULTS[model] = defaults
    _FACTORIES[model] = factories
    return defaults


def _build(model: type[_ModelT], **values: Any) -> _ModelT:
    """A model instance from already-checked values, without validation.

    What ``model_construct`` does, minus its per-field default and alias work, which costs more
    than the rest of event conversion; the test suite validates every model built this way.
    """
    defaults = _DEFAULTS.get(model) or _defaults(model)
    fields = defaults.copy()
    fields.update(values)
    for name, factory in _FACTORIES[model].items():
        if name not in values:
            fields[name] = factory()
    instance = model.__new__(model)
    object.__setattr__(instance, "__dict__", fields)
    object.__setattr__(instance, "__pydantic_fields_set__", set(values))
    object.__setattr__(instance, "__pydantic_extra__", None)
    object.__setattr__(instance, "__pydantic_private__", None)
    return instance


# CBV values repeat across events; the canonical spelling of each is computed once.
_cbv_value = lru_cache(maxsize=4096)(vocabulary.canonical)


# --- errors ------------------------------------------------------------------------------


class _ContentError(Exception):
    """A content problem at an element, turned into a located :class:`Problem` by the caller."""

    def __init__(self, reason: str, element: etree._Element) -> None:
        super().__init__(reason)
        self.reason = reason
        self.element = element


def _path(element: etree._Element, event_number: int | None) -> str:
    parts: list[str] = []
    node: etree._Element | None = element
    while node is not None:
        name = etree.QName(node).localname
        if event_number is not None and name in _EVENT_NAMES and parts[-1:] != [name]:
            name = f"{name}[{event_number}]"
        parts.append(name)
        node = node.getparent()
    return "/" + "/".join(reversed(parts))


@dataclass(slots=True)
class _Context:
    source: str | None
    limits: ReadLimits
    event_number: int = 0
    offset: str | None = None

    def invalid(
        self, reason: str, element: etree._Element, *, in_event: bool = True
    ) -> InvalidDocumentError:
        problem = Problem(
            reason,
            source=self.source,
            line=element.sourceline if isinstance(element.sourceline, int) else None,
            path=_path(element, self.event_number if in_event else None),
        )
        return InvalidDocumentError(str(problem), (problem,))


# --- small values ------------------------------------------------------------------------


def _text(element: etree._Element, limits: ReadLimits) -> str:
    text = element.text
    if text is None:
        raise _ContentError(f"{etree.QName(element).localname} is empty", element)
    if len(text) > limits.max_text_length:
        raise _ContentError(f"text longer than {limits.max_text_length} characters", element)
    text = text.strip()
    if not text:
        raise _ContentError(f"{etree.QName(element).localname} is empty", element)
    return text


def _time(text: str, element: etree._Element, default_offset: str | None) -> datetime:
    match = _DATETIME.fullmatch(text)
    if match is None:
        raise _ContentError(f"not an xsd:dateTime: {text!r}", element)
    try:
        value = datetime.fromisoformat(text)
    except ValueError as error:
        raise _ContentError(f"not an xsd:dateTime: {text!r}", element) from error
    if value.tzinfo is None:
        # A zone-less 1.2 time is local time at the event's eventTimeZoneOffset.
        if default_offset is None:
            raise _ContentError(f"time without time zone: {text!r}", element)
        value = value.replace(tzinfo=_zone(default_offset))
    return value


def _zone(offset: str) -> timezone:
    sign = -1 if offset[0] == "-" else 1
    return timezone(sign * timedelta(hours=int(offset[1:3]), minutes=int(offset[4:6])))


def _decimal(text: str, element: etree._Element) -> Decimal:
    try:
        value = Decimal(text)
    except InvalidOperation as error:
        raise _ContentError(f"not a decimal: {text!r}", element) from error
    if not value.is_finite():
        raise _ContentError(f"not a decimal: {text!r}", element)
    return value


def _boolean(text: str, element: etree._Element) -> bool:
    if text in ("true", "1"):
        return True
    if text in ("false", "0"):
        return False
    raise _ContentError(f"not a boolean: {text!r}", element)


def _split(tag: str) -> tuple[str | None, str]:
    if tag[0] == "{":
        namespace, _, name = tag[1:].partition("}")
        return namespace, name
    return None, tag


def xml_element(element: etree._Element, limits: ReadLimits, depth: int = 0) -> XmlElement:
    """Any element as a lossless :class:`XmlElement` tree (comments dropped)."""
    if depth > limits.max_depth:
        raise _ContentError(f"nesting deeper than {limits.max_depth}", element)
    namespace, name = _split(element.tag)
    children = tuple(
        xml_element(child, limits, depth + 1) for child in element if isinstance(child.tag, str)
    )
    text = element.text
    if text is not None:
        if children and not text.strip():
            text = None
        elif len(text) > limits.max_text_length:
            raise _ContentError(f"text longer than {limits.max_text_length} characters", element)
    return _build(
        XmlElement,
        namespace=namespace,
        name=name,
        attributes={str(name): str(value) for name, value in element.attrib.items()},
        text=text,
        children=children,
    )


# --- event parts -------------------------------------------------------------------------


def _epc_list(element: etree._Element, ctx: _Context) -> tuple[str, ...]:
    epcs: list[str] = []
    for child in element:
        if not isinstance(child.tag, str):
            continue
        if child.tag != "epc":
            raise _ContentError(f"unexpected element {child.tag} in an EPC list", child)
        epcs.append(_identifier(_text(child, ctx.limits), child, canonical_epc))
    return tuple(epcs)


def _identifier(value: str, element: etree._Element, canonical: Callable[[str], str]) -> str:
    try:
        return canonical(value)
    except InvalidIdentifierError as error:
        raise _ContentError(f"invalid identifier {value!r}: {error}", element) from error


def _quantity_list(element: etree._Element, ctx: _Context) -> tuple[QuantityElement, ...]:
    items: list[QuantityElement] = []
    for child in element:
        if not isinstance(child.tag, str):
            continue
        if child.tag != "quantityElement":
            raise _ContentError(f"unexpected element {child.tag} in a quantity list", child)
        epc_class: str | None = None
        quantity: Decimal | None = None
        uom: str | None = None
        for part in child:
            tag = part.tag
            if tag == "epcClass":
                epc_class = _identifier(_text(part, ctx.limits), part, canonical_class)
            elif tag == "quantity":
                if part.get(XSI_NIL) not in ("true", "1"):
                    quantity = _decimal(_text(part, ctx.limits), part)
            elif tag == "uom":
                uom = _text(part, ctx.limits)
            elif isinstance(tag, str):
                raise _ContentError(f"unexpected element {tag} in a quantity element", part)
        if epc_class is None:
            raise _ContentError("quantityElement without epcClass", child)
        items.append(_build(QuantityElement, epc_class=epc_class, quantity=quantity, uom=uom))
    return tuple(items)


def _biz_transactions(element: etree._Element, ctx: _Context) -> tuple[BizTransaction, ...]:
    items: list[BizTransaction] = []
    for child in element:
        if not isinstance(child.tag, str):
            continue
        if child.tag != "bizTransaction":
            raise _ContentError(f"unexpected element {child.tag} in bizTransactionList", child)
        kind = child.get("type")
        items.append(
            _build(
                BizTransaction,
                value=_text(child, ctx.limits),
                type=_cbv_value(vocabulary.CBVKind.BIZ_TRANSACTION_TYPE, kind)
                if kind is not None
                else None,
            )
        )
    return tuple(items)


def _sources(element: etree._Element, ctx: _Context, item: str) -> tuple[SourceDestination, ...]:
    items: list[SourceDestination] = []
    for child in element:
        if not isinstance(child.tag, str):
            continue
        if child.tag != item:
            raise _ContentError(f"unexpected element {child.tag} in {item}List", child)
        kind = child.get("type")
        if kind is None:
            raise _ContentError(f"{item} without type", child)
        items.append(
            _build(
                SourceDestination,
                value=_maybe_location(_text(child, ctx.limits)),
                type=_cbv_value(vocabulary.CBVKind.SOURCE_DESTINATION_TYPE, kind),
            )
        )
    return tuple(items)


def _location(element: etree._Element, ctx: _Context) -> tuple[str, tuple[XmlElement, ...]]:
    identifier: str | None = None
    extensions: list[XmlElement] = []
    for child in _flatten(element):
        if child.tag == "id":
            identifier = _maybe_location(_text(child, ctx.limits))
        else:
            extensions.append(xml_element(child, ctx.limits))
    if identifier is None:
        raise _ContentError(f"{element.tag} without id", element)
    return identifier, tuple(extensions)


def _error_declaration(element: etree._Element, ctx: _Context) -> ErrorDeclaration:
    declaration_time: datetime | None = None
    reason: str | None = None
    corrective: list[str] = []
    extensions: list[XmlElement] = []
    for child in _flatten(element):
        tag = child.tag
        if tag == "declarationTime":
            declaration_time = _time(_text(child, ctx.limits), child, ctx.offset)
        elif tag == "reason":
            reason = _cbv_value(vocabulary.CBVKind.ERROR_REASON, _text(child, ctx.limits))
        elif tag == "correctiveEventIDs":
            corrective.extend(
                _text(item, ctx.limits) for item in child if item.tag == "correctiveEventID"
            )
        elif tag[0] == "{":
            extensions.append(xml_element(child, ctx.limits))
        else:
            raise _ContentError(f"unexpected element {tag} in errorDeclaration", child)
    if declaration_time is None:
        raise _ContentError("errorDeclaration without declarationTime", element)
    return _build(
        ErrorDeclaration,
        declaration_time=declaration_time,
        reason=reason,
        corrective_event_ids=tuple(corrective),
        extensions=tuple(extensions),
    )


def _persistent_disposition(element: etree._Element, ctx: _Context) -> PersistentDisposition:
    set_: list[str] = []
    unset: list[str] = []
    for child in element:
        if child.tag == "set":
            target = set_
        elif child.tag == "unset":
            target = unset
        elif isinstance(child.tag, str):
            raise _ContentError(f"unexpected element {child.tag} in persistentDisposition", child)
        else:
            continue
        target.append(_cbv_value(vocabulary.CBVKind.DISPOSITION, _text(child, ctx.limits)))
    return _build(PersistentDisposition, set=tuple(set_), unset=tuple(unset))


_SENSOR_DECIMALS = frozenset(
    {"value", "minValue", "maxValue", "meanValue", "sDev", "percRank", "percValue"}
)
_SENSOR_TIMES = frozenset({"time", "startTime", "endTime"})


def _sensor_fields(
    element: etree._Element, model: type[SensorMetadata | SensorReport], ctx: _Context
) -> dict[str, Any]:
    by_alias = _ALIASES[model]
    values: dict[str, Any] = {}
    other: dict[str, str] = {}
    for key, value in element.attrib.items():
        name, raw = str(key), str(value)
        field_name = by_alias.get(name)
        if field_name is None:
            other[name] = raw
        elif name in _SENSOR_DECIMALS:
            values[field_name] = _decimal(raw.strip(), element)
        elif name in _SENSOR_TIMES:
            values[field_name] = _time(raw.strip(), element, ctx.offset)
        elif name == "booleanValue":
            values[field_name] = _boolean(raw.strip(), element)
        else:
            values[field_name] = raw
    values["other_attributes"] = other
    return values


def _sensor_elements(element: etree._Element, ctx: _Context) -> tuple[SensorElement, ...]:
    items: list[SensorElement] = []
    for child in _flatten(element):
        if child.tag != "sensorElement":
            raise _ContentError(f"unexpected element {child.tag} in sensorElementList", child)
        metadata: SensorMetadata | None = None
        reports: list[SensorReport] = []
        extensions: list[XmlElement] = []
        for part in _flatten(child):
            tag = part.tag
            if tag == "sensorMetadata":
                fields = _sensor_fields(part, SensorMetadata, ctx)
                metadata = _build(SensorMetadata, **fields)
            elif tag == "sensorReport":
                fields = _sensor_fields(part, SensorReport, ctx)
                reports.append(_build(SensorReport, **fields))
            elif tag[0] == "{":
                extensions.append(xml_element(part, ctx.limits))
            else:
                raise _ContentError(f"unexpected element {tag} in sensorElement", part)
        items.append(
            _build(
                SensorElement,
                sensor_metadata=metadata,
                sensor_report=tuple(reports),
                extensions=tuple(extensions),
            )
        )
    return tuple(items)


def _flatten(element: etree._Element) -> Iterator[etree._Element]:
    """Children, with the contents of un-namespaced ``extension`` wrappers spliced in."""
    for child in element:
        tag = child.tag
        if not isinstance(tag, str):
            continue
        if tag == "extension" or tag == "baseExtension":
            yield from _flatten(child)
        else:
            yield child


_ALIASES: dict[type[Any], dict[str, str]] = {
    model: {(info.alias or name): name for name, info in model.model_fields.items()}
    for model in (SensorMetadata, SensorReport)
}


# --- events ------------------------------------------------------------------------------


def _event_fields(
    element: etree._Element, ctx: _Context
) -> tuple[dict[str, Any], dict[str, etree._Element]]:
    values: dict[str, Any] = {}
    where: dict[str, etree._Element] = {}
    local: list[XmlElement] = []
    other: list[XmlElement] = []
    certification: list[str] = []
    _collect(element, ctx, values, where, (local, other, certification), wrapped=False)
    # Un-namespaced extension content (1.2 "##local" inside extension wrappers) comes first.
    values["extensions"] = tuple(local + other)
    values["certification_info"] = tuple(certification)
    return values, where


def _collect(
    element: etree._Element,
    ctx: _Context,
    values: dict[str, Any],
    where: dict[str, etree._Element],
    lists: tuple[list[XmlElement], list[XmlElement], list[str]],
    *,
    wrapped: bool,
) -> None:
    limits = ctx.limits
    for child in element:
        tag = child.tag
        if not isinstance(tag, str):
            continue
        if tag[0] == "{":
            lists[1].append(xml_element(child, limits))
            continue
        handler = _HANDLERS.get(tag)
        if handler is None:
            if tag == "extension" or tag == "baseExtension":
                _collect(child, ctx, values, where, lists, wrapped=True)
            elif tag == "certificationInfo":
                lists[2].append(_text(child, limits))
            elif wrapped:
                lists[0].append(xml_element(child, limits))
            else:
                raise _ContentError(f"unknown element {tag}", child)
            continue
        field_name, convert = handler
        if field_name in where:
            raise _ContentError(f"{tag} appears twice", child)
        values[field_name] = convert(child, ctx)
        where[field_name] = child


def _raw_text(element: etree._Element, ctx: _Context) -> str:
    return _text(element, ctx.limits)


def _action(element: etree._Element, ctx: _Context) -> Action:
    text = _text(element, ctx.limits)
    if text not in Action.__members__:
        raise _ContentError(f"invalid action {text!r} (ADD, OBSERVE or DELETE)", element)
    return Action(text)


def _cbv(kind: vocabulary.CBVKind) -> Callable[[etree._Element, _Context], str]:
    def convert(element: etree._Element, ctx: _Context) -> str:
        return _cbv_value(kind, _text(element, ctx.limits))

    return convert


def _epc(element: etree._Element, ctx: _Context) -> str:
    return _identifier(_text(element, ctx.limits), element, canonical_epc)


def _ilmd(element: etree._Element, ctx: _Context) -> tuple[XmlElement, ...]:
    return tuple(xml_element(child, ctx.limits) for child in element if isinstance(child.tag, str))


_Handler = tuple[str, Callable[[etree._Element, _Context], Any]]
_HANDLERS: dict[str, _Handler] = {
    "eventTime": ("event_time", _raw_text),
    "recordTime": ("record_time", _raw_text),
    "eventTimeZoneOffset": ("event_time_zone_offset", _raw_text),
    "eventID": ("event_id", _raw_text),
    "errorDeclaration": ("error_declaration", lambda e, c: e),
    "epcList": ("epc_list", _epc_list),
    "childEPCs": ("child_epcs", _epc_list),
    "inputEPCList": ("input_epc_list", _epc_list),
    "outputEPCList": ("output_epc_list", _epc_list),
    "parentID": ("parent_id", _epc),
    "action": ("action", _action),
    "bizStep": ("biz_step", _cbv(vocabulary.CBVKind.BIZ_STEP)),
    "disposition": ("disposition", _cbv(vocabulary.CBVKind.DISPOSITION)),
    "readPoint": ("read_point", _location),
    "bizLocation": ("biz_location", _location),
    "bizTransactionList": ("biz_transaction_list", _biz_transactions),
    "quantityList": ("quantity_list", _quantity_list),
    "childQuantityList": ("child_quantity_list", _quantity_list),
    "inputQuantityList": ("input_quantity_list", _quantity_list),
    "outputQuantityList": ("output_quantity_list", _quantity_list),
    "sourceList": ("source_list", lambda e, c: _sources(e, c, "source")),
    "destinationList": ("destination_list", lambda e, c: _sources(e, c, "destination")),
    "sensorElementList": ("sensor_element_list", lambda e, c: e),
    "persistentDisposition": ("persistent_disposition", lambda e, c: e),
    "ilmd": ("ilmd", _ilmd),
    "transformationID": ("transformation_id", _raw_text),
}
_ELEMENT_OF_FIELD = {field_name: tag for tag, (field_name, _) in _HANDLERS.items()}
_FIELDS = {name: frozenset(model.model_fields) for name, model in EPCIS_EVENT_TYPES.items()}


def _event(element: etree._Element, ctx: _Context) -> Event:
    name = element.tag
    values, where = _event_fields(element, ctx)
    offset = values.get("event_time_zone_offset")
    if offset is None:
        raise _ContentError("eventTimeZoneOffset is missing", element)
    match = _OFFSET.fullmatch(offset)
    if match is None or int(match.group(1)) > 14 or int(match.group(2)) > 59:
        raise _ContentError(
            f"invalid eventTimeZoneOffset {offset!r}", where["event_time_zone_offset"]
        )
    ctx.offset = offset
    if "event_time" not in values:
        raise _ContentError("eventTime is missing", element)
    for time_field in ("event_time", "record_time"):
        if time_field in values:
            values[time_field] = _time(values[time_field], where[time_field], offset)
    # Parts that carry times are converted once the offset is known.
    if "error_declaration" in values:
        values["error_declaration"] = _error_declaration(values["error_declaration"], ctx)
    if "sensor_element_list" in values:
        values["sensor_element_list"] = _sensor_elements(values["sensor_element_list"], ctx)
    if "persistent_disposition" in values:
        values["persistent_disposition"] = _persistent_disposition(
            values["persistent_disposition"], ctx
        )
    for location in ("read_point", "biz_location"):
        if location in values:
            values[location], values[f"{location}_extensions"] = values[location]
    allowed = _FIELDS[name]
    for field_name, child in where.items():
        if field_name not in allowed:
            raise _ContentError(f"{_ELEMENT_OF_FIELD[field_name]} is not allowed in {name}", child)
    if "action" in allowed and "action" not in values:
        raise _ContentError(f"{name} without action", element)
    model = EPCIS_EVENT_TYPES[name]
    return _build(model, **values)  # type: ignore[return-value]


# --- header ------------------------------------------------------------------------------


def _sbdh_children(element: etree._Element) -> Iterator[tuple[str, etree._Element]]:
    for child in element:
        if isinstance(child.tag, str):
            yield _split(child.tag)[1], child


def _partner(element: etree._Element, ctx: _Context) -> Partner:
    identifier: str | None = None
    authority: str | None = None
    contacts: list[ContactInformation] = []
    for name, child in _sbdh_children(element):
        if name == "Identifier":
            identifier = _text(child, ctx.limits)
            authority = child.get("Authority")
        elif name == "ContactInformation":
            fields = {
                _CONTACT_FIELDS[part_name]: _text(part, ctx.limits)
                for part_name, part in _sbdh_children(child)
                if part_name in _CONTACT_FIELDS
            }
            contacts.append(ContactInformation(**fields))
    if identifier is None:
        raise _ContentError("SBDH partner without Identifier", element)
    return Partner(identifier=identifier, authority=authority, contact_information=tuple(contacts))


_CONTACT_FIELDS = {
    "Contact": "contact",
    "EmailAddress": "email_address",
    "FaxNumber": "fax_number",
    "TelephoneNumber": "telephone_number",
    "ContactTypeIdentifier": "contact_type_identifier",
}
_IDENTIFICATION_FIELDS = {
    "Standard": "standard",
    "TypeVersion": "type_version",
    "InstanceIdentifier": "instance_identifier",
    "Type": "type",
    "MultipleType": "multiple_type",
    "CreationDateAndTime": "creation_date_and_time",
}


def _sbdh(element: etree._Element, ctx: _Context) -> StandardBusinessDocumentHeader:
    values: dict[str, Any] = {"sender": [], "receiver": []}
    for name, child in _sbdh_children(element):
        if name == "HeaderVersion":
            values["header_version"] = _text(child, ctx.limits)
        elif name in ("Sender", "Receiver"):
            values[name.lower()].append(_partner(child, ctx))
        elif name == "DocumentIdentification":
            identification: dict[str, Any] = {}
            for part_name, part in _sbdh_children(child):
                if part_name in _IDENTIFICATION_FIELDS:
                    identification[_IDENTIFICATION_FIELDS[part_name]] = _text(part, ctx.limits)
            if "creation_date_and_time" in identification:
                identification["creation_date_and_time"] = _time(
                    identification["creation_date_and_time"], child, "+00:00"
                )
            values["document_identification"] = DocumentIdentification(**identification)
        elif name == "Manifest":
            values["manifest"] = xml_element(child, ctx.limits)
        elif name == "BusinessScope":
            values["business_scope"] = xml_element(child, ctx.limits)
    values["sender"] = tuple(values["sender"])
    values["receiver"] = tuple(values["receiver"])
    return StandardBusinessDocumentHeader(**values)


def vocabularies(element: etree._Element, ctx: _Context) -> tuple[Vocabulary, ...]:
    """The ``Vocabulary`` children of a ``VocabularyList``."""
    result: list[Vocabulary] = []
    for vocabulary_element in element:
        if vocabulary_element.tag != "Vocabulary":
            continue
        elements: list[VocabularyElement] = []
        for part in _flatten(vocabulary_element):
            if part.tag != "VocabularyElementList":
                continue
            for item in part:
                if item.tag == "VocabularyElement":
                    elements.append(_vocabulary_element(item, ctx))
        kind = vocabulary_element.get("type")
        if kind is None:
            raise _ContentError("Vocabulary without type", vocabulary_element)
        result.append(Vocabulary(type=kind, vocabulary_element_list=tuple(elements)))
    return tuple(result)


def _vocabulary_element(element: etree._Element, ctx: _Context) -> VocabularyElement:
    identifier = element.get("id")
    if identifier is None:
        raise _ContentError("VocabularyElement without id", element)
    attributes: list[VocabularyAttribute] = []
    children: list[str] = []
    for child in element:
        if child.tag == "attribute":
            attributes.append(_vocabulary_attribute(child, ctx))
        elif child.tag == "children":
            children.extend(_text(item, ctx.limits) for item in child if item.tag == "id")
    return VocabularyElement(id=identifier, attributes=tuple(attributes), children=tuple(children))


def _vocabulary_attribute(element: etree._Element, ctx: _Context) -> VocabularyAttribute:
    identifier = element.get("id")
    if identifier is None:
        raise _ContentError("attribute without id", element)
    structured = tuple(
        xml_element(child, ctx.limits) for child in element if isinstance(child.tag, str)
    )
    text = element.text
    if structured or text is None or not text.strip():
        text = None
    return VocabularyAttribute(id=identifier, value=text, children=structured)


def _gs1ushc(
    element: etree._Element, ctx: _Context, current: GS1USHealthcareHeader | None
) -> GS1USHealthcareHeader | None:
    name = _split(element.tag)[1]
    values = current.model_dump() if current is not None else {}
    if name == "guidelineVersion":
        values["guideline_version"] = _text(element, ctx.limits)
    elif name == "dscsaTransactionStatement":
        affirm: bool | None = None
        legal: str | None = None
        other: list[XmlElement] = []
        for child in element:
            if not isinstance(child.tag, str):
                continue
            namespace, child_name = _split(child.tag)
            if namespace == GS1USHC_NS and child_name == "affirmTransactionStatement":
                affirm = _boolean(_text(child, ctx.limits), child)
            elif namespace == GS1USHC_NS and child_name == "legalNotice" and legal is None:
                legal = _text(child, ctx.limits)
            else:
                other.append(xml_element(child, ctx.limits))
        if affirm is None:
            raise _ContentError(
                "dscsaTransactionStatement without affirmTransactionStatement", element
            )
        values["dscsa_transaction_statement"] = DSCSATransactionStatement(
            affirm_transaction_statement=affirm, legal_notice=legal, other=tuple(other)
        )
    else:
        return None
    return GS1USHealthcareHeader(**values)


def _header(element: etree._Element, ctx: _Context) -> EPCISHeader:
    sbdh: StandardBusinessDocumentHeader | None = None
    master: list[Vocabulary] = []
    gs1ushc: GS1USHealthcareHeader | None = None
    extensions: list[XmlElement] = []
    for child in element:
        tag = child.tag
        if not isinstance(tag, str):
            continue
        if tag == f"{{{SBDH_NS}}}StandardBusinessDocumentHeader":
            sbdh = _sbdh(child, ctx)
        elif tag == "extension":
            for part in child:
                if part.tag == "EPCISMasterData":
                    for vocabulary_list in part:
                        if vocabulary_list.tag == "VocabularyList":
                            master.extend(vocabularies(vocabulary_list, ctx))
                elif part.tag == "extension":
                    extensions.extend(
                        xml_element(item, ctx.limits) for item in part if isinstance(item.tag, str)
                    )
        elif (
            tag.startswith(f"{{{GS1USHC_NS}}}")
            and (updated := _gs1ushc(child, ctx, gs1ushc)) is not None
        ):
            gs1ushc = updated
        else:
            extensions.append(xml_element(child, ctx.limits))
    return EPCISHeader(
        standard_business_document_header=sbdh,
        master_data=tuple(master),
        gs1ushc=gs1ushc,
        extensions=tuple(extensions),
    )


# --- the stream --------------------------------------------------------------------------


@dataclass(slots=True)
class _Trailer:
    """Document-level extensions found after the events (only ``read_xml_document`` uses them)."""

    extensions: tuple[XmlElement, ...]


@dataclass(slots=True)
class _State:
    ctx: _Context
    root: etree._Element | None = None
    format: DocumentFormat | None = None
    head_values: dict[str, Any] = field(default_factory=dict)
    head: DocumentHead | None = None
    header: EPCISHeader | None = None
    query_results: bool = False


def _open(source: BinaryIO | bytes, limits: ReadLimits, source_name: str | None) -> BoundedReader:
    if isinstance(source, bytes | bytearray | memoryview):
        data = bytes(source)
        if len(data) > limits.max_bytes:
            raise DocumentTooLargeError(f"document larger than {limits.max_bytes} bytes")
        prefix, rest = data, None
        root = check_prolog(data[:MAX_PROLOG_BYTES], source=source_name)
    else:
        prefix, root = read_prolog(source, source=source_name, max_bytes=limits.max_bytes)
        rest = source
    if root is None:
        raise InvalidDocumentError(
            "not XML: no root element", (Problem("not XML: no root element", source=source_name),)
        )
    format_of_root(root.namespace, root.local_name)
    return BoundedReader(prefix, rest, limits.max_bytes)


def _iter(
    source: BinaryIO | bytes, limits: ReadLimits, source_name: str | None
) -> Iterator[DocumentHead | Event | _Trailer]:
    reader = _open(source, limits, source_name)
    state = _State(_Context(source_name, limits))
    try:
        for action, element in safe_iterparse(reader, events=("start", "end"), tag=_TAGS):
            yield from _step(state, action, element)
    except etree.XMLSyntaxError as error:
        problem = Problem(
            f"malformed XML: {error.msg}", source=source_name, line=error.lineno or None
        )
        raise InvalidDocumentError(str(problem), (problem,)) from error
    if state.head is None:
        raise InvalidDocumentError("EPCIS document without EPCISBody")


def _step(
    state: _State, action: str, element: etree._Element
) -> Iterator[DocumentHead | Event | _Trailer]:
    tag = element.tag
    if action == "start":
        if state.root is None:
            _start_root(state, element)
        elif tag == "EPCISBody" and element.getparent() is state.root:
            if state.root.tag.endswith("}EPCISMasterDataDocument"):
                return
            state.head = _make_head(state)
            yield state.head
        return
    if tag in _EVENT_NAMES or tag == "QuantityEvent":
        list_item = _event_list_item(element)
        if list_item is None:
            return  # not an EPCIS event: an un-namespaced element of that name inside an extension
        if state.head is None:
            raise state.ctx.invalid("event outside EPCISBody", element)
        if tag == "QuantityEvent":
            raise state.ctx.invalid("QuantityEvent is deprecated and not supported", element)
        yield _convert_event(state, element)
        element.clear()
        _prune(state, list_item)
    elif tag == "EPCISHeader":
        try:
            state.header = _header(element, state.ctx)
        except _ContentError as error:
            raise state.ctx.invalid(error.reason, error.element, in_event=False) from None
        except ValidationError as error:
            raise state.ctx.invalid(f"invalid header: {error}", element, in_event=False) from None
        element.clear()
    elif tag == "EventList":
        for child in element:
            _check_list_member(state, child)
    elif tag.endswith("QueryResults"):
        state.query_results = True
    elif tag == "EPCISBody":
        yield from _end_body(state, element)
    elif element is state.root:
        yield from _end_root(state, element)


def _start_root(state: _State, element: etree._Element) -> None:
    namespace, name = _split(element.tag)
    state.root = element
    state.format = format_of_root(namespace, name)
    ctx = state.ctx
    version = element.get("schemaVersion")
    created = element.get("creationDate")
    if version is None or created is None:
        raise ctx.invalid("root without schemaVersion or creationDate", element, in_event=False)
    try:
        creation_date = _time(created.strip(), element, None)
    except _ContentError as error:
        raise ctx.invalid(f"creationDate: {error.reason}", element, in_event=False) from None
    state.head_values = {
        "format": state.format,
        "schema_version": version.strip(),
        "creation_date": creation_date,
        # The EPCIS namespaces themselves are the writer's business, not the sender's choice.
        "namespaces": _sender_namespaces(element),
    }


def _sender_namespaces(root: etree._Element) -> dict[str, str]:
    """Root prefixes, one per namespace; the EPCIS namespaces are the writer's business."""
    namespaces: dict[str, str] = {}
    for prefix, uri in root.nsmap.items():
        if prefix and uri not in EPCIS_NAMESPACES and uri not in namespaces.values():
            namespaces[prefix] = uri
    return namespaces


def _make_head(state: _State) -> DocumentHead:
    return DocumentHead(header=state.header, **state.head_values)


def _event_list_item(element: etree._Element) -> etree._Element | None:
    """The ``EventList`` child holding this event (itself or a 1.2 ``extension`` wrapper)."""
    item = element
    parent = item.getparent()
    while parent is not None and parent.tag == "extension":
        item, parent = parent, parent.getparent()
    return item if parent is not None and parent.tag == "EventList" else None


def _convert_event(state: _State, element: etree._Element) -> Event:
    ctx = state.ctx
    ctx.event_number += 1
    if ctx.event_number > ctx.limits.max_events:
        raise DocumentTooLargeError(f"more than {ctx.limits.max_events} events")
    try:
        return _event(element, ctx)
    except _ContentError as error:
        raise ctx.invalid(error.reason, error.element) from None


def _check_list_member(state: _State, child: etree._Element) -> None:
    tag = child.tag
    if not isinstance(tag, str):
        return
    if tag == "extension":
        for inner in child:
            _check_list_member(state, inner)
    elif tag not in _EVENT_NAMES:
        raise state.ctx.invalid(f"unknown event type {tag}", child, in_event=False)


def _prune(state: _State, list_item: etree._Element) -> None:
    """Drop what precedes the finished event in EventList, checking nothing unknown is there."""
    previous = list_item.getprevious()
    while previous is not None:
        _check_list_member(state, previous)
        parent = previous.getparent()
        before = previous.getprevious()
        if parent is not None:
            parent.remove(previous)
        previous = before


def _end_body(state: _State, element: etree._Element) -> Iterator[DocumentHead | Event | _Trailer]:
    root = state.root
    assert root is not None
    if root.tag.endswith("}EPCISMasterDataDocument"):
        master: list[Vocabulary] = []
        try:
            for child in element:
                if child.tag == "VocabularyList":
                    master.extend(vocabularies(child, state.ctx))
        except _ContentError as error:
            raise state.ctx.invalid(error.reason, error.element, in_event=False) from None
        header = state.header or EPCISHeader()
        state.header = header.model_copy(update={"master_data": header.master_data + tuple(master)})
        state.head = _make_head(state)
        yield state.head
    elif root.tag.endswith("}EPCISQueryDocument") and not state.query_results:
        raise state.ctx.invalid("EPCISQueryDocument without QueryResults", element, in_event=False)
    element.clear()


def _end_root(state: _State, element: etree._Element) -> Iterator[_Trailer]:
    extensions: list[XmlElement] = []
    after_body = False
    for child in element:
        if child.tag == "EPCISBody":
            after_body = True
        elif after_body and isinstance(child.tag, str):
            try:
                extensions.append(xml_element(child, state.ctx.limits))
            except _ContentError as error:
                raise state.ctx.invalid(error.reason, error.element, in_event=False) from None
    if extensions:
        yield _Trailer(tuple(extensions))


def iter_xml(
    source: BinaryIO | bytes,
    *,
    limits: ReadLimits | None = None,
    source_name: str | None = None,
) -> Iterator[DocumentHead | Event]:
    """The document head, then each event in document order, read incrementally."""
    for item in _iter(source, _xml_limits(limits), source_name):
        if not isinstance(item, _Trailer):
            yield item


def read_xml_document(
    source: BinaryIO | bytes,
    *,
    limits: ReadLimits | None = None,
    source_name: str | None = None,
) -> tuple[DocumentHead, list[Event]]:
    """The whole document: head (with document-level extensions) and all events."""
    head: DocumentHead | None = None
    events: list[Event] = []
    for item in _iter(source, _xml_limits(limits), source_name):
        if isinstance(item, DocumentHead):
            head = item
        elif isinstance(item, _Trailer):
            assert head is not None
            head = head.model_copy(update={"extensions": item.extensions})
        else:
            events.append(item)
    assert head is not None
    return head, events


def _xml_limits(limits: ReadLimits | None) -> ReadLimits:
    if limits is None:
        from epcis.reading import ReadLimits

        return ReadLimits()
    return limits
