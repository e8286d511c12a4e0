"""Streaming reader of EPCIS 1.2 and 2.0 XML documents into the model, one event at a time.

The document is parsed with ``lxml.etree.iterparse``; each event element is converted as soon
as it is complete and then removed from the tree, so memory stays bounded whatever the
document size. The reader is lenient about layout and strict about content: 1.2 wrappers
(``baseExtension``, ``extension``, ``extension/extension``) and 2.0 direct children are both
accepted in any order, while unknown standard elements, bad actions, unparsable times and the
like raise :class:`InvalidDocumentError` naming source, line and element path. Element order
is the XSD validator's business, not the reader's.

Events are built without validation (:func:`_build`) from values this module has already
checked (types, tz-aware times, enum values, tuples); tests check every model built here
against ``model_construct`` and full validation. Values that repeat (CBV words, EPCs, times)
go through small bounded caches, and a list of plain SGTINs is checked in one match.

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
from functools import lru_cache, partial
from typing import TYPE_CHECKING, Any, BinaryIO, Literal, TypeVar, cast, overload

from lxml import etree
from pydantic import BaseModel, ValidationError

from epcis import vocabulary
from epcis.errors import (
    DocumentTooLargeError,
    EPCISError,
    InvalidDocumentError,
    InvalidIdentifierError,
    Problem,
    SchemaViolationError,
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
    from epcis.reading import EventError, ReadLimits

__all__ = [
    "EPCIS_NAMESPACES",
    "GS1USHC_NS",
    "SBDH_NS",
    "Reread",
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


@dataclass(frozen=True, slots=True)
class _Spec:
    """What building a model needs, worked out once per model class."""

    # Every field in declaration order, optional ones at their default, required ones at None
    # (always overwritten: see _build).
    template: dict[str, Any]
    required: frozenset[str]
    factories: tuple[tuple[str, Callable[[], Any]], ...]


_SPECS: dict[type[BaseModel], _Spec] = {}
_set = object.__setattr__
_new = object.__new__


def _spec(model: type[BaseModel]) -> _Spec:
    template: dict[str, Any] = {}
    factories: list[tuple[str, Callable[[], Any]]] = []
    for name, info in model.model_fields.items():
        template[name] = None if info.is_required() else info.default
        if info.default_factory is not None:
            factories.append((name, info.default_factory))  # type: ignore[arg-type]
    required = frozenset(n for n, info in model.model_fields.items() if info.is_required())
    spec = _SPECS[model] = _Spec(template, required, tuple(factories))
    return spec


def _build(model: type[_ModelT], values: dict[str, Any]) -> _ModelT:
    """A model instance from already-checked ``values`` (field name -> value), unvalidated.

    What ``model_construct`` does, minus its per-field default and alias work, which costs more
    than the rest of event conversion: a dict of every field, made once per model, is copied
    and updated. Keys stay in declaration order, so ``model_dump_json`` and ``repr`` come out
    as for a validated instance. Tests compare the result with ``model_construct(**values)``
    and with full validation on every corpus file and on generated events.
    """
    spec = _SPECS.get(model) or _spec(model)
    fields = spec.template.copy()
    fields.update(values)
    for name, factory in spec.factories:
        if name not in values:
            fields[name] = factory()
    if not spec.required <= values.keys():
        # Never the case for the reader's own calls; keep model_construct's behaviour anyway.
        for name in spec.required - values.keys():
            del fields[name]
    instance = _new(model)
    _set(instance, "__dict__", fields)
    _set(instance, "__pydantic_fields_set__", set(values))
    _set(instance, "__pydantic_extra__", None)
    _set(instance, "__pydantic_private__", None)
    return instance


# Values that repeat across events (CBV words, EPCs, times) are converted once per distinct
# value; the caches are bounded so a long document cannot grow them without limit.
_cbv_value = lru_cache(maxsize=4096)(vocabulary.canonical)
_canonical_epc = lru_cache(maxsize=1024)(canonical_epc)


# --- errors ------------------------------------------------------------------------------


class _ContentError(Exception):
    """A content problem at an element, turned into a located :class:`Problem` by the caller."""

    def __init__(self, reason: str, element: etree._Element) -> None:
        super().__init__(reason)
        self.reason = reason
        self.element = element


class _LimitError(_ContentError):
    """Content beyond a read limit: the document's fault even inside one event."""


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
    if text is not None and len(text) <= limits.max_text_length:
        text = text.strip()
        if text:
            return text
    return _text_problem(element, limits)


def _text_problem(element: etree._Element, limits: ReadLimits) -> str:
    """Raise what is wrong with an element's text (:func:`_text` found it unusable)."""
    text = element.text
    if text is None:
        raise _ContentError(f"{etree.QName(element).localname} is empty", element)
    if len(text) > limits.max_text_length:
        raise _LimitError(f"text longer than {limits.max_text_length} characters", element)
    text = text.strip()
    if not text:
        raise _ContentError(f"{etree.QName(element).localname} is empty", element)
    return text


@lru_cache(maxsize=256)
def _valid_offset(offset: str) -> bool:
    match = _OFFSET.fullmatch(offset)
    return match is not None and int(match.group(1)) <= 14 and int(match.group(2)) <= 59


def _time(text: str, element: etree._Element, default_offset: str | None) -> datetime:
    value = _parsed_time(text, default_offset)
    return _time_problem(text, element, default_offset) if value is None else value


@lru_cache(maxsize=256)
def _parsed_time(text: str, default_offset: str | None) -> datetime | None:
    """The time ``text`` stands for, or None when :func:`_time_problem` has to say why not.

    Events of one document share times (a shipment's events, a second's commissionings), and
    datetime values are immutable, so each distinct one is parsed once.
    """
    if _DATETIME.fullmatch(text) is None:
        return None
    try:
        value = _from_xsd(text)
    except ValueError:
        return None
    if value.tzinfo is None:
        # A zone-less 1.2 time is local time at the event's eventTimeZoneOffset.
        if default_offset is None:
            return None
        value = value.replace(tzinfo=_zone(default_offset))
    return value


# xsd:dateTime allows 24:00:00 (with zero fractions) as the end of a day, i.e. 00:00:00 of the
# next one; Python's ISO parser does not.
_END_OF_DAY = re.compile(r"T24:00:00(?:\.0+)?")


def _from_xsd(text: str) -> datetime:
    try:
        return datetime.fromisoformat(text)
    except ValueError:
        start_of_day, found = _END_OF_DAY.subn("T00:00:00", text, count=1)
        if not found:
            raise
        return datetime.fromisoformat(start_of_day) + timedelta(days=1)


def _time_problem(text: str, element: etree._Element, default_offset: str | None) -> datetime:
    """Raise what is wrong with a time that :func:`_parsed_time` refused."""
    match = _DATETIME.fullmatch(text)
    if match is None:
        raise _ContentError(f"not an xsd:dateTime: {text!r}", element)
    try:
        value = _from_xsd(text)
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


# lxml's getchildren() makes the list of children in one call, about twice as fast as iterating
# an element; the type stubs leave it out (ElementTree deprecates it, lxml keeps it).
_children: Callable[[etree._Element], list[etree._Element]] = etree._Element.getchildren  # type: ignore[attr-defined]


def xml_element(element: etree._Element, limits: ReadLimits, depth: int = 0) -> XmlElement:
    """Any element as a lossless :class:`XmlElement` tree (comments dropped)."""
    if depth > limits.max_depth:
        raise _LimitError(f"nesting deeper than {limits.max_depth}", element)
    namespace, name = _split_tag(element.tag)
    children = (
        tuple(
            [
                xml_element(child, limits, depth + 1)
                for child in _children(element)
                if isinstance(child.tag, str)
            ]
        )
        if len(element)
        else ()
    )
    attrib = element.attrib
    text = element.text
    if text is not None:
        if children and not text.strip():
            text = None
        elif len(text) > limits.max_text_length:
            raise _LimitError(f"text longer than {limits.max_text_length} characters", element)
    instance = _new(XmlElement)
    # What _build would make, spelled out: ILMD and extensions are a large share of elements.
    _set(
        instance,
        "__dict__",
        {
            "namespace": namespace,
            "name": name,
            "attributes": dict(attrib) if len(attrib) else {},
            "text": text,
            "children": children,
        },
    )
    _set(instance, "__pydantic_fields_set__", set(_XML_ELEMENT_FIELDS))
    _set(instance, "__pydantic_extra__", None)
    _set(instance, "__pydantic_private__", None)
    return instance


_split_tag = lru_cache(maxsize=1024)(_split)
_XML_ELEMENT_FIELDS = frozenset(XmlElement.model_fields)


# --- event parts -------------------------------------------------------------------------


# One or more SGTIN URNs that canonical_epc keeps exactly as written (company prefix and item
# reference of 13 digits together, a serial of 1-20 ASCII letters and digits), one a line.
_SGTIN = r"urn:epc:id:sgtin:(?=[0-9.]{14}\.)[0-9]{6,12}\.[0-9]+\.[0-9A-Za-z]{1,20}"
_PLAIN_SGTINS = re.compile(f"{_SGTIN}(?:\n{_SGTIN})*")


def _epc_list(element: etree._Element, ctx: _Context) -> tuple[str, ...]:
    # EPC lists hold most of a document's elements. A list of plain SGTINs, the usual case, is
    # checked in one regular-expression match over its texts rather than one by one; a match
    # implies every child is an <epc> whose text is non-blank, unpadded, within the length
    # limit and already canonical (the newline count rules out texts that contain one).
    children = _children(element)
    texts = [child.text for child in children if child.tag == "epc"]
    if texts and len(texts) == len(children) and None not in texts:
        joined = "\n".join(texts)  # type: ignore[arg-type]
        if (
            len(joined) <= ctx.limits.max_text_length
            and _PLAIN_SGTINS.fullmatch(joined)
            and joined.count("\n") == len(texts) - 1
        ):
            return tuple(texts)  # type: ignore[arg-type]
    return _epc_list_one_by_one(element, ctx)


def _epc_list_one_by_one(element: etree._Element, ctx: _Context) -> tuple[str, ...]:
    epcs: list[str] = []
    limits = ctx.limits
    max_text = limits.max_text_length
    for child in element:
        tag = child.tag
        if tag != "epc":
            if isinstance(tag, str):
                raise _ContentError(f"unexpected element {tag} in an EPC list", child)
            continue
        text = child.text
        if text is None or len(text) > max_text or not (text := text.strip()):
            text = _text_problem(child, limits)
        try:
            epcs.append(_canonical_epc(text))
        except InvalidIdentifierError as error:
            raise _ContentError(f"invalid identifier {text!r}: {error}", child) from error
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
        items.append(
            _build(QuantityElement, {"epc_class": epc_class, "quantity": quantity, "uom": uom})
        )
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
                {
                    "value": _text(child, ctx.limits),
                    "type": _cbv_value(vocabulary.CBVKind.BIZ_TRANSACTION_TYPE, kind)
                    if kind is not None
                    else None,
                },
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
                {
                    "value": _maybe_location(_text(child, ctx.limits)),
                    "type": _cbv_value(vocabulary.CBVKind.SOURCE_DESTINATION_TYPE, kind),
                },
            )
        )
    return tuple(items)


def _location(element: etree._Element, ctx: _Context) -> tuple[str, tuple[XmlElement, ...]]:
    if len(element) == 1 and (only := element[0]).tag == "id":
        return _maybe_location(_text(only, ctx.limits)), ()
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
        {
            "declaration_time": declaration_time,
            "reason": reason,
            "corrective_event_ids": tuple(corrective),
            "extensions": tuple(extensions),
        },
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
    return _build(PersistentDisposition, {"set": tuple(set_), "unset": tuple(unset)})


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
                metadata = _build(SensorMetadata, fields)
            elif tag == "sensorReport":
                fields = _sensor_fields(part, SensorReport, ctx)
                reports.append(_build(SensorReport, fields))
            elif tag[0] == "{":
                extensions.append(xml_element(part, ctx.limits))
            else:
                raise _ContentError(f"unexpected element {tag} in sensorElement", part)
        items.append(
            _build(
                SensorElement,
                {
                    "sensor_metadata": metadata,
                    "sensor_report": tuple(reports),
                    "extensions": tuple(extensions),
                },
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


def _collect(
    element: etree._Element,
    ctx: _Context,
    values: dict[str, Any],
    lists: tuple[list[XmlElement], list[XmlElement], list[str]],
    *,
    wrapped: bool,
) -> None:
    limits = ctx.limits
    max_text = limits.max_text_length
    for child in _children(element):
        tag = child.tag
        # Standard elements first: one dict lookup (comments' tags are not keys either).
        handler = _HANDLERS.get(tag)
        if handler is None:
            if not isinstance(tag, str):
                continue
            if tag[0] == "{":
                lists[1].append(xml_element(child, limits))
            elif tag == "extension" or tag == "baseExtension":
                _collect(child, ctx, values, lists, wrapped=True)
            elif tag == "certificationInfo":
                lists[2].append(_text(child, limits))
            elif wrapped:
                lists[0].append(xml_element(child, limits))
            else:
                raise _ContentError(f"unknown element {tag}", child)
            continue
        field_name, convert, of_text = handler
        if field_name in values:
            raise _ContentError(f"{tag} appears twice", child)
        if of_text:
            # Most fields are text: _text is inlined, its checks kept.
            text = child.text
            if text is None or len(text) > max_text or not (text := text.strip()):
                text = _text_problem(child, limits)
            try:
                values[field_name] = text if convert is None else convert(text)
            except InvalidIdentifierError as error:
                raise _ContentError(f"invalid identifier {text!r}: {error}", child) from error
        else:
            assert convert is not None
            values[field_name] = convert(child, ctx)


_ACTIONS = {action.value: action for action in Action}


def _action(element: etree._Element, ctx: _Context) -> Action:
    text = _text(element, ctx.limits)
    action = _ACTIONS.get(text)
    if action is None:
        raise _ContentError(f"invalid action {text!r} (ADD, OBSERVE or DELETE)", element)
    return action


def _cbv(kind: vocabulary.CBVKind) -> Callable[[str], str]:
    """The canonical spelling of a text of this CBV kind, memoised (a C call when cached)."""
    return lru_cache(maxsize=1024)(partial(vocabulary.canonical, kind))


def _ilmd(element: etree._Element, ctx: _Context) -> tuple[XmlElement, ...]:
    limits = ctx.limits
    return tuple(
        [xml_element(child, limits) for child in _children(element) if isinstance(child.tag, str)]
    )


# Element name -> (field, converter, whether the converter takes the element's text). A text
# converter of None keeps the text itself.
_Handler = tuple[str, Callable[..., Any] | None, bool]
_HANDLERS: dict[str, _Handler] = {
    "eventTime": ("event_time", None, True),
    "recordTime": ("record_time", None, True),
    "eventTimeZoneOffset": ("event_time_zone_offset", None, True),
    "eventID": ("event_id", None, True),
    "errorDeclaration": ("error_declaration", lambda e, c: e, False),
    "epcList": ("epc_list", _epc_list, False),
    "childEPCs": ("child_epcs", _epc_list, False),
    "inputEPCList": ("input_epc_list", _epc_list, False),
    "outputEPCList": ("output_epc_list", _epc_list, False),
    "parentID": ("parent_id", _canonical_epc, True),
    "action": ("action", _action, False),
    "bizStep": ("biz_step", _cbv(vocabulary.CBVKind.BIZ_STEP), True),
    "disposition": ("disposition", _cbv(vocabulary.CBVKind.DISPOSITION), True),
    "readPoint": ("read_point", _location, False),
    "bizLocation": ("biz_location", _location, False),
    "bizTransactionList": ("biz_transaction_list", _biz_transactions, False),
    "quantityList": ("quantity_list", _quantity_list, False),
    "childQuantityList": ("child_quantity_list", _quantity_list, False),
    "inputQuantityList": ("input_quantity_list", _quantity_list, False),
    "outputQuantityList": ("output_quantity_list", _quantity_list, False),
    "sourceList": ("source_list", lambda e, c: _sources(e, c, "source"), False),
    "destinationList": ("destination_list", lambda e, c: _sources(e, c, "destination"), False),
    "sensorElementList": ("sensor_element_list", lambda e, c: e, False),
    "persistentDisposition": ("persistent_disposition", lambda e, c: e, False),
    "ilmd": ("ilmd", _ilmd, False),
    "transformationID": ("transformation_id", None, True),
}
_ELEMENT_OF_FIELD = {field_name: tag for tag, (field_name, _, _) in _HANDLERS.items()}
_FIELDS = {name: frozenset(model.model_fields) for name, model in EPCIS_EVENT_TYPES.items()}


def _element_of(event: etree._Element, field_name: str) -> etree._Element:
    """The element of an event that gave ``field_name`` (to locate a problem)."""
    tag = _ELEMENT_OF_FIELD[field_name]
    return next((child for child in _flatten(event) if child.tag == tag), event)


def _event(element: etree._Element, ctx: _Context) -> Event:
    name = element.tag
    values: dict[str, Any] = {}  # in document order: error locations are found from it
    local: list[XmlElement] = []
    other: list[XmlElement] = []
    certification: list[str] = []
    _collect(element, ctx, values, (local, other, certification), wrapped=False)
    # Un-namespaced extension content (1.2 "##local" inside extension wrappers) comes first.
    values["extensions"] = tuple(local + other) if local or other else ()
    values["certification_info"] = tuple(certification) if certification else ()
    offset = values.get("event_time_zone_offset")
    if offset is None:
        raise _ContentError("eventTimeZoneOffset is missing", element)
    if not _valid_offset(offset):
        raise _ContentError(
            f"invalid eventTimeZoneOffset {offset!r}",
            _element_of(element, "event_time_zone_offset"),
        )
    ctx.offset = offset
    if "event_time" not in values:
        raise _ContentError("eventTime is missing", element)
    for time_field in ("event_time", "record_time"):
        if time_field in values:
            text = values[time_field]
            parsed = _parsed_time(text, offset)
            if parsed is None:
                _time_problem(text, _element_of(element, time_field), offset)
            values[time_field] = parsed
    # Parts that carry times are converted once the offset is known.
    if "error_declaration" in values:
        values["error_declaration"] = _error_declaration(values["error_declaration"], ctx)
    if "sensor_element_list" in values:
        values["sensor_element_list"] = _sensor_elements(values["sensor_element_list"], ctx)
    if "persistent_disposition" in values:
        values["persistent_disposition"] = _persistent_disposition(
            values["persistent_disposition"], ctx
        )
    if "read_point" in values:
        values["read_point"], values["read_point_extensions"] = values["read_point"]
    if "biz_location" in values:
        values["biz_location"], values["biz_location_extensions"] = values["biz_location"]
    allowed = _FIELDS[name]
    if not values.keys() <= allowed:
        for field_name in values:
            if field_name not in allowed:
                element_name = _ELEMENT_OF_FIELD[field_name]
                raise _ContentError(
                    f"{element_name} is not allowed in {name}", _element_of(element, field_name)
                )
    if "action" in allowed and "action" not in values:
        raise _ContentError(f"{name} without action", element)
    model = EPCIS_EVENT_TYPES[name]
    return _build(model, values)  # type: ignore[return-value]


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


# --- schema validation in the reader's parse ---------------------------------------------


@dataclass(slots=True)
class _SchemaCheck:
    """Validation against our XSD inside the reader's own parse (no second parse).

    libxml2 validates as it parses and records violations in the parser's error log; the
    reader looks at the log before each element it handles. On a violation the located
    problems (line, element path, better wording) come from :func:`validate_xml` over the
    document again, which ``again`` opens; without it, from the streaming messages.
    """

    again: Callable[[], BinaryIO | bytes] | None
    seen: int = 0  # log entries already looked at (warnings, not violations)

    @staticmethod
    def schema(namespace: str | None) -> etree.XMLSchema | None:
        from epcis.validation import validator_for

        validator = validator_for(namespace or "")
        return None if validator is None else validator.schema

    def check(self, error_log: Any, source_name: str | None) -> None:
        """Raise :class:`SchemaViolationError` if the log holds a schema violation."""
        if len(error_log) <= self.seen:
            return
        self.seen = len(error_log)
        violations = [entry for entry in error_log if entry.domain == etree.ErrorDomains.SCHEMASV]
        if not violations:
            return
        from epcis.validation import problems_from_error_log, validate_xml

        problems = validate_xml(self.again(), source_name=source_name) if self.again else []
        if not problems:
            problems = problems_from_error_log(violations, source_name)
        raise SchemaViolationError(
            f"the document does not conform to our EPCIS XML schema: {problems[0]}",
            tuple(problems),
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
    # Whether document-level extensions after the body are wanted (read_xml_document).
    trailer: bool = False
    # Whether an event that cannot be built becomes an EventError and reading goes on.
    event_errors: bool = False
    # Raises the schema violations libxml2 has logged so far (validate=True), else None.
    schema_violations: Callable[[], None] | None = None


def _open(
    source: BinaryIO | bytes, limits: ReadLimits, source_name: str | None
) -> tuple[BoundedReader, str | None]:
    """The document as a bounded stream, and the namespace of its root element."""
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
    return BoundedReader(prefix, rest, limits.max_bytes), root.namespace


def _iter(
    source: BinaryIO | bytes,
    limits: ReadLimits,
    source_name: str | None,
    *,
    trailer: bool,
    schema_check: _SchemaCheck | None = None,
    event_errors: bool = False,
) -> Iterator[DocumentHead | Event | EventError | _Trailer]:
    reader, namespace = _open(source, limits, source_name)
    state = _State(_Context(source_name, limits), trailer=trailer, event_errors=event_errors)
    schema = schema_check.schema(namespace) if schema_check is not None else None
    parser = safe_iterparse(reader, events=("start", "end"), tag=_TAGS, schema=schema)
    if schema_check is not None:
        check = schema_check

        def violations() -> None:
            check.check(parser.error_log, source_name)

        state.schema_violations = violations
    try:
        for action, element in parser:
            # Only the start of the root and of the body matter.
            if action == "start" and state.root is not None and element.tag != "EPCISBody":
                continue
            if action == "start" and schema_check is not None:
                # The root or the body: the header is checked before the head is yielded.
                schema_check.check(parser.error_log, source_name)
            # The end of an event in EventList is handled here rather than in _step: one
            # generator less per event.
            if action == "end" and element.tag in _EVENT_NAMES and state.head is not None:
                parent = element.getparent()
                if parent is not None and parent.tag == "EventList":
                    if schema_check is not None:
                        # libxml2 has validated everything parsed so far: a violation up to
                        # here is reported before the event is built or yielded. Looking
                        # only here (and before any reader error) instead of at every
                        # element cost a quarter less per event.
                        schema_check.check(parser.error_log, source_name)
                    if event_errors:
                        yield _event_or_error(state, element)
                    else:
                        yield _convert_event(state, element)
                    element.clear()
                    _prune(state, element)
                    continue
            yield from _step(state, action, element)
    except EPCISError:
        if schema_check is not None:
            # A schema violation wins over the reader's own account of the same problem.
            schema_check.check(parser.error_log, source_name)
        raise
    except etree.XMLSyntaxError as error:
        if schema_check is not None:
            # lxml raises validity errors only once the whole document is parsed.
            schema_check.check(parser.error_log, source_name)
        problem = Problem(
            f"malformed XML: {error.msg}", source=source_name, line=error.lineno or None
        )
        raise InvalidDocumentError(str(problem), (problem,)) from error
    if schema_check is not None:
        schema_check.check(parser.error_log, source_name)
    if state.head is None:
        raise InvalidDocumentError("EPCIS document without EPCISBody")


def _step(
    state: _State, action: str, element: etree._Element
) -> Iterator[DocumentHead | Event | EventError | _Trailer]:
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
        if state.event_errors:
            if state.schema_violations is not None:
                # Events in 1.2 extension wrappers are not checked in _iter; a violation must
                # still win over the reader's own account of the event.
                state.schema_violations()
            yield _event_or_error(state, element)
        elif tag == "QuantityEvent":
            raise state.ctx.invalid("QuantityEvent is deprecated and not supported", element)
        else:
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


def _event_or_error(state: _State, element: etree._Element) -> Event | EventError:
    """:func:`_convert_event`, with what is wrong with this one event as an EventError.

    Limits (event count, nesting, text length) still raise: they guard the reader, not the
    event.
    """
    ctx = state.ctx
    ctx.event_number += 1
    if ctx.event_number > ctx.limits.max_events:
        raise DocumentTooLargeError(f"more than {ctx.limits.max_events} events")
    try:
        if element.tag == "QuantityEvent":
            raise _ContentError("QuantityEvent is deprecated and not supported", element)
        return _event(element, ctx)
    except _LimitError as error:
        raise ctx.invalid(error.reason, error.element) from None
    except _ContentError as error:
        # Imported here, on the error path only (epcis.reading imports this module): an
        # import statement on every event cost more than some of the event's fields.
        from epcis.reading import EventError

        return EventError(ctx.event_number, ctx.invalid(error.reason, error.element))


def _check_list_member(state: _State, child: etree._Element) -> None:
    tag = child.tag
    if not isinstance(tag, str):
        return
    if tag == "extension":
        for inner in child:
            _check_list_member(state, inner)
    elif tag not in _EVENT_NAMES and tag != "QuantityEvent":
        # A QuantityEvent was reported at its own end (raised, or an EventError).
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
    if extensions and state.trailer:
        yield _Trailer(tuple(extensions))


Reread = Callable[[], BinaryIO | bytes]


@overload
def iter_xml(
    source: BinaryIO | bytes,
    *,
    limits: ReadLimits | None = ...,
    source_name: str | None = ...,
    validate: bool = ...,
    reread: Reread | None = ...,
    event_errors: Literal[False] = ...,
) -> Iterator[DocumentHead | Event]: ...


@overload
def iter_xml(
    source: BinaryIO | bytes,
    *,
    limits: ReadLimits | None = ...,
    source_name: str | None = ...,
    validate: bool = ...,
    reread: Reread | None = ...,
    event_errors: bool,
) -> Iterator[DocumentHead | Event | EventError]: ...


def iter_xml(
    source: BinaryIO | bytes,
    *,
    limits: ReadLimits | None = None,
    source_name: str | None = None,
    validate: bool = False,
    reread: Reread | None = None,
    event_errors: bool = False,
) -> Iterator[DocumentHead | Event | EventError]:
    """The document head, then each event in document order, read incrementally.

    ``validate`` checks the document against our XSD in the same parse and raises
    :class:`SchemaViolationError` at the first element read after a violation (so events
    before it may have been yielded); its problems are located by :func:`validate_xml` over
    what ``reread`` returns (the document from its start), else they carry libxml2's
    messages only. Bytes are their own ``reread``.

    ``event_errors`` yields an :class:`~epcis.reading.EventError` in place of an event whose
    content is wrong (located by line and element path; the element is dropped as a good
    one is) and reads on. A schema violation (with ``validate``), malformed XML, an unknown
    element in the event list and exceeded limits still raise.
    """
    items = _iter(
        source,
        _xml_limits(limits),
        source_name,
        trailer=False,
        schema_check=_check(validate, source, reread),
        event_errors=event_errors,
    )
    return cast("Iterator[DocumentHead | Event | EventError]", items)


def read_xml_document(
    source: BinaryIO | bytes,
    *,
    limits: ReadLimits | None = None,
    source_name: str | None = None,
    validate: bool = False,
    reread: Reread | None = None,
) -> tuple[DocumentHead, list[Event]]:
    """The whole document: head (with document-level extensions) and all events.

    ``validate`` and ``reread`` as for :func:`iter_xml`.
    """
    head: DocumentHead | None = None
    events: list[Event] = []
    check = _check(validate, source, reread)
    for item in _iter(source, _xml_limits(limits), source_name, trailer=True, schema_check=check):
        if isinstance(item, DocumentHead):
            head = item
        elif isinstance(item, _Trailer):
            assert head is not None
            head = head.model_copy(update={"extensions": item.extensions})
        else:
            events.append(cast(Event, item))  # no EventError: event_errors is off
    assert head is not None
    return head, events


def _check(validate: bool, source: BinaryIO | bytes, reread: Reread | None) -> _SchemaCheck | None:
    if not validate:
        return None
    if reread is None and isinstance(source, bytes | bytearray | memoryview):
        data = bytes(source)
        return _SchemaCheck(lambda: data)
    return _SchemaCheck(reread)


def _xml_limits(limits: ReadLimits | None) -> ReadLimits:
    if limits is None:
        from epcis.reading import ReadLimits

        return ReadLimits()
    return limits
