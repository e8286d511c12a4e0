"""CBV 2.0 EPCIS event hash ID: an event's canonical pre-hash string and its ``ni:`` URI.

The pre-hash string is built in one pass over the model: the standard fields in the CBV's
canonical order, then everything the order does not name (business transactions, sources,
destinations, ILMD, user extensions) sorted as strings. The output reproduces the published
test vectors of the reference implementation, including its documented quirks; see
``docs/event-hash.md`` for the algorithm, the quirks and where XML and JSON-LD inputs differ.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Iterable, Mapping
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from functools import lru_cache
from typing import Any

from epcis.errors import InvalidIdentifierError
from epcis.identifiers import to_digital_link
from epcis.identifiers.canonical import plain_digital_link
from epcis.model import (
    EPCIS_EVENT_TYPES,
    AggregationEvent,
    AssociationEvent,
    BizTransaction,
    DocumentHead,
    EventBase,
    ObjectEvent,
    QuantityElement,
    SensorElement,
    SensorMetadata,
    SensorReport,
    SourceDestination,
    TransactionEvent,
    TransformationEvent,
    XmlElement,
)
from epcis.vocabulary import CBVKind, to_web_uri

__all__ = [
    "HASH_ALGORITHMS",
    "event_hash",
    "ignored_fields",
    "prehash_string",
]

AnyEvent = (
    ObjectEvent | AggregationEvent | TransactionEvent | TransformationEvent | AssociationEvent
)

HASH_ALGORITHMS: Mapping[str, Callable[[bytes], Any]] = {
    "sha-256": hashlib.sha256,
    "sha3-256": hashlib.sha3_256,
    "sha-384": hashlib.sha384,
    "sha-512": hashlib.sha512,
}
_VERSION = "?ver=CBV2.0"

# CBV 1.2 URNs become CBV 2.0 Web URIs wherever they occur in a value.
_CBV_URN_PREFIXES = (
    ("urn:epcglobal:cbv:bizstep:", "https://ref.gs1.org/cbv/BizStep-"),
    ("urn:epcglobal:cbv:disp:", "https://ref.gs1.org/cbv/Disp-"),
    ("urn:epcglobal:cbv:btt:", "https://ref.gs1.org/cbv/BTT-"),
    ("urn:epcglobal:cbv:sdt:", "https://ref.gs1.org/cbv/SDT-"),
    ("urn:epcglobal:cbv:er:", "https://ref.gs1.org/cbv/ER-"),
)
# The two CURIE prefixes every EPCIS 2.0 document may use without declaring them.
_CURIES = {"gs1:": "https://gs1.org/voc/", "cbv:": "https://ref.gs1.org/cbv/"}
# A value is tried as a number only if float() could possibly accept it; this keeps the
# exception path off the common case of words and URIs.
_NUMBER_STARTS = frozenset("0123456789+-.iInN")
_IDENTIFIER_STARTS = ("urn:epc:", "http://", "https://")
# Reference behaviour: a child level whose names contain these substrings is treated as the
# event level, where user extensions are not pulled up next to their parent.
_EVENT_LEVEL_MARKERS = ("eventTime", "action")
# JSON-LD comments are annotations, not event content (XML comments never reach the model).
_COMMENTS = frozenset({"{http://www.w3.org/2000/01/rdf-schema#}comment"})
# Lists whose entries the reference never sorts (their two parts stay type-first).
_UNSORTED_CHILDREN = frozenset({"bizTransaction", "source", "destination"})

_SENSOR_METADATA_FIELDS = (
    ("time", "time"),
    ("startTime", "start_time"),
    ("endTime", "end_time"),
    ("deviceID", "device_id"),
    ("deviceMetadata", "device_metadata"),
    ("rawData", "raw_data"),
    ("dataProcessingMethod", "data_processing_method"),
    ("bizRules", "biz_rules"),
)
_SENSOR_REPORT_FIELDS = (
    ("type", "type"),
    ("exception", "exception"),
    ("deviceID", "device_id"),
    ("deviceMetadata", "device_metadata"),
    ("rawData", "raw_data"),
    ("dataProcessingMethod", "data_processing_method"),
    ("time", "time"),
    ("microorganism", "microorganism"),
    ("chemicalSubstance", "chemical_substance"),
    ("value", "value"),
    ("component", "component"),
    ("stringValue", "string_value"),
    ("booleanValue", "boolean_value"),
    ("hexBinaryValue", "hex_binary_value"),
    ("uriValue", "uri_value"),
    ("minValue", "min_value"),
    ("maxValue", "max_value"),
    ("meanValue", "mean_value"),
    ("sDev", "s_dev"),
    ("percRank", "perc_rank"),
    ("percValue", "perc_value"),
    ("uom", "uom"),
    ("coordinateReferenceSystem", "coordinate_reference_system"),
)
# Bare words in these sensor fields are terms of the GS1 Web vocabulary (JSON-LD @vocab).
_SENSOR_VOCABULARY = {
    "type": "https://gs1.org/voc/",
    "exception": "https://gs1.org/voc/",
    "component": "https://ref.gs1.org/cbv/Comp-",
}

_ONE, _EPCS, _QUANTITIES = range(3)
# Identifier fields in canonical order; each event type has a subset.
_IDENTIFIER_FIELDS = (
    ("parentID", "parent_id", _ONE),
    ("epcList", "epc_list", _EPCS),
    ("inputEPCList", "input_epc_list", _EPCS),
    ("childEPCs", "child_epcs", _EPCS),
    ("quantityList", "quantity_list", _QUANTITIES),
    ("childQuantityList", "child_quantity_list", _QUANTITIES),
    ("inputQuantityList", "input_quantity_list", _QUANTITIES),
    ("outputEPCList", "output_epc_list", _EPCS),
    ("outputQuantityList", "output_quantity_list", _QUANTITIES),
)
# Per event class, looked up once: asking a pydantic model for a field it lacks is slow.
_FIELDS_OF: dict[type, tuple[tuple[str, str, int], ...]] = {
    cls: tuple(f for f in _IDENTIFIER_FIELDS if f[1] in cls.model_fields)
    for cls in EPCIS_EVENT_TYPES.values()
}
_HAS_ILMD = frozenset(cls for cls in EPCIS_EVENT_TYPES.values() if "ilmd" in cls.model_fields)


def event_hash(
    event: EventBase, algorithm: str = "sha-256", ignore: frozenset[str] = frozenset()
) -> str:
    """The event's CBV 2.0 hash ID, ``ni:///<algorithm>;<hex>?ver=CBV2.0``.

    ``ignore`` holds Clark names of event-level extension fields left out of the hash (a
    document's ``ignoreFields``, see :func:`ignored_fields`).
    """
    try:
        digest = HASH_ALGORITHMS[algorithm]
    except KeyError:
        raise ValueError(f"unsupported hash algorithm {algorithm!r}") from None
    hexdigest: str = digest(prehash_string(event, ignore).encode()).hexdigest()
    return f"ni:///{algorithm};{hexdigest}{_VERSION}"


def ignored_fields(head: DocumentHead) -> frozenset[str]:
    """Clark names a document lists in its ``ignoreFields`` header element, if any."""
    names: set[str] = set()
    for extension in head.extensions:
        if extension.name != "ignoreFields":
            continue
        for child in extension.children:
            # XML names each field as an empty element; JSON-LD as a CURIE string.
            names.add(
                _resolve_curie(child.text, head.namespaces) if child.text else child.clark_name
            )
        if extension.text:
            names.add(_resolve_curie(extension.text, head.namespaces))
    return frozenset(names)


def _resolve_curie(curie: str, namespaces: Mapping[str, str]) -> str:
    prefix, _, local = curie.strip().partition(":")
    namespace = namespaces.get(prefix)
    return f"{{{namespace}}}{local}" if namespace and local else curie.strip()


def prehash_string(event: EventBase, ignore: frozenset[str] = frozenset()) -> str:
    """The canonical pre-hash string of ``event`` (CBV 2.0 event hash ID algorithm)."""
    out: list[str] = ["eventType=", _event_type(event)]
    rest: list[str] = []  # fields outside the canonical order, sorted at the end
    out += ("eventTime=", _timestamp(event.event_time))
    out += ("eventTimeZoneOffset=", event.event_time_zone_offset.strip())
    if event.certification_info:
        out += sorted(f"certificationInfo={_value(c)}" for c in event.certification_info)
    _emit_identifiers(event, out)
    if isinstance(event, TransformationEvent):
        if event.transformation_id:
            out += ("transformationID=", _value(event.transformation_id))
    else:
        out += ("action=", _event_action(event))
    if event.biz_step:
        out += ("bizStep=", _value(to_web_uri(CBVKind.BIZ_STEP, event.biz_step)))
    if event.disposition:
        out += ("disposition=", _value(to_web_uri(CBVKind.DISPOSITION, event.disposition)))
    _emit_persistent_disposition(event, out)
    _emit_location("readPoint", event.read_point, event.read_point_extensions, out, rest)
    _emit_location("bizLocation", event.biz_location, event.biz_location_extensions, out, rest)
    if event.sensor_element_list:
        _emit_sensors(event.sensor_element_list, out, rest)
    _collect_unordered(event, ignore, rest)
    rest.sort()
    out += rest
    return "".join(out)


def _event_type(event: EventBase) -> str:
    event_type: str = getattr(event, "type", type(event).__name__)
    return event_type


def _event_action(event: EventBase) -> str:
    action: str = event.action.value  # type: ignore[attr-defined]
    return action


def _emit_identifiers(event: EventBase, out: list[str]) -> None:
    for label, field, kind in _FIELDS_OF[type(event)]:
        value = getattr(event, field)
        if not value:
            continue
        if kind == _EPCS:
            out.append(label)
            # Every entry starts "epc=", so sorting the values sorts the entries.
            out += ["epc=" + text for text in sorted(map(_value, value))]
        elif kind == _QUANTITIES:
            out.append(label)
            out += sorted(_quantity(q) for q in value)
        else:
            out += (label, "=", _value(value))


def _quantity(element: QuantityElement) -> str:
    parts = ["quantityElementepcClass=", _value(element.epc_class)]
    if element.quantity is not None:
        parts += ("quantity=", _number(element.quantity))
    if element.uom:
        parts += ("uom=", _value(element.uom))
    return "".join(parts)


def _emit_persistent_disposition(event: EventBase, out: list[str]) -> None:
    persistent = event.persistent_disposition
    if persistent is None or not (persistent.set or persistent.unset):
        return
    out.append("persistentDisposition")
    for label, values in (("set=", persistent.set), ("unset=", persistent.unset)):
        out += sorted(label + _value(to_web_uri(CBVKind.DISPOSITION, v)) for v in values)


def _emit_location(
    label: str,
    location: str | None,
    extensions: tuple[XmlElement, ...],
    out: list[str],
    rest: list[str],
) -> None:
    if not extensions:  # the common case: an identifier alone
        if location:
            out += (label, "id=", _value(location))
        return
    names = ["id"] if location else []
    names += [e.clark_name for e in extensions]
    pulled_up, left_over = _split_extensions(names, [(e.clark_name, e) for e in extensions])
    if location or pulled_up:
        out.append(label)
        if location:
            out += ("id=", _value(location))
        out += _generic_list([_element(e) for e in pulled_up])
    if left_over:
        rest.append(label + _generic_list([_element(e) for e in left_over]))


def _split_extensions(
    names: list[str], candidates: list[tuple[str, Any]]
) -> tuple[list[Any], list[Any]]:
    """Which extensions the reference appends to their parent, and which it leaves over.

    It appends namespaced children whose namespace ends in ``/`` when the parent has more than
    one child and no child name contains ``eventTime`` or ``action``; the others are emitted
    again, under the parent's name, among the unordered fields.
    """
    if not candidates:
        return [], []
    gather = len(names) > 1 and not any(m in n for n in names for m in _EVENT_LEVEL_MARKERS)
    pulled_up: list[Any] = []
    left_over: list[Any] = []
    for name, item in candidates:
        (pulled_up if gather and "/}" in name else left_over).append(item)
    return pulled_up, left_over


def _emit_sensors(elements: tuple[SensorElement, ...], out: list[str], rest: list[str]) -> None:
    emitted: list[str] = []
    left_over: list[str] = []
    for element in elements:
        text, remainder = _sensor_element(element)
        if text:
            emitted.append(text)
        if remainder:
            left_over.append(remainder)
    if emitted:
        out.append("sensorElementList")
        out += sorted(emitted)
    if left_over:
        rest.append("sensorElementList" + _generic_list(left_over))


def _sensor_element(element: SensorElement) -> tuple[str, str]:
    """The element's ordered text and, if the reference leaves parts over, their text."""
    parts: list[str] = []
    remainder: list[str] = []
    if element.sensor_metadata is not None:
        text, left = _sensor_fields(
            "sensorMetadata", element.sensor_metadata, _SENSOR_METADATA_FIELDS
        )
        parts.append(text)
        if left:
            remainder.append(left)
    reports: list[str] = []
    for report in element.sensor_report:
        text, left = _sensor_fields("sensorReport", report, _SENSOR_REPORT_FIELDS)
        reports.append(text)
        if left:
            remainder.append(left)
    parts += sorted(reports)
    names = [e.clark_name for e in element.extensions]
    if element.sensor_metadata is not None:
        names.append("sensorMetadata")
    names += ["sensorReport"] * len(element.sensor_report)
    pulled_up, extra = _split_extensions(names, [(e.clark_name, e) for e in element.extensions])
    parts.append(_generic_list([_element(e) for e in pulled_up]))
    remainder += (_element(e) for e in extra)
    body = "".join(parts)
    text = f"sensorElement{body}" if body else ""
    return text, ("sensorElement" + _generic_list(remainder) if remainder else "")


def _sensor_fields(
    label: str,
    item: SensorMetadata | SensorReport,
    fields: tuple[tuple[str, str], ...],
) -> tuple[str, str]:
    parts: list[str] = []
    names: list[str] = []
    for name, attribute in fields:
        value = getattr(item, attribute)
        if value is None or value == "":
            continue
        names.append(name)
        parts += (name, "=", _sensor_value(name, value))
    others = [
        (k, f"{k}={_value(v.strip())}" if v.strip() else k)
        for k, v in item.other_attributes.items()
    ]
    # The reference's sensorReport order lacks bizRules, so it is left over like an unknown.
    biz_rules = item.biz_rules if isinstance(item, SensorReport) else None
    if biz_rules:
        others.append(("bizRules", f"bizRules={_value(biz_rules.strip())}"))
    names += (k for k, _ in others)
    pulled_up, left_over = _split_extensions(names, others)
    parts.append(_generic_list(pulled_up))
    body = "".join(parts)
    text = label + body if body else ""
    return text, (label + _generic_list(left_over) if left_over else "")


def _sensor_value(name: str, value: object) -> str:
    if isinstance(value, datetime):
        return _timestamp(value)
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, Decimal):
        return _number(value)
    text = str(value).strip()
    vocabulary = _SENSOR_VOCABULARY.get(name)
    if vocabulary and ":" not in text:
        text = vocabulary + text
    return _value(text)


def _collect_unordered(event: EventBase, ignore: frozenset[str], rest: list[str]) -> None:
    if event.biz_transaction_list:
        rest.append(
            "bizTransactionList"
            + "".join(sorted(map(_biz_transaction, event.biz_transaction_list)))
        )
    for label, key, entries in (
        ("sourceList", "source=", event.source_list),
        ("destinationList", "destination=", event.destination_list),
    ):
        if entries:
            rest.append(label + "".join(sorted(_source_destination(key, e) for e in entries)))
    ilmd: tuple[XmlElement, ...] | None = event.ilmd if type(event) in _HAS_ILMD else None  # type: ignore[attr-defined]
    if ilmd is not None:
        rest.append("ilmd" + _generic_list([_element(e) for e in ilmd]))
    for extension in event.extensions:
        if extension.clark_name not in ignore and extension.clark_name not in _COMMENTS:
            rest.append(_element(extension))


def _biz_transaction(entry: BizTransaction) -> str:
    value = f"bizTransaction={_value(entry.value)}"
    if not entry.type:
        return value
    return f"type={_value(to_web_uri(CBVKind.BIZ_TRANSACTION_TYPE, entry.type))}{value}"


def _source_destination(key: str, entry: SourceDestination) -> str:
    kind = to_web_uri(CBVKind.SOURCE_DESTINATION_TYPE, entry.type)
    return f"type={_value(kind)}{key}{_value(entry.value)}"


def _element(element: XmlElement) -> str:
    """A field outside the standard: ``{ns}name=value`` followed by its sorted children."""
    text = element.text.strip() if element.text else ""
    head = f"{element.clark_name}={_value(text)}" if text else element.clark_name
    if not element.children and not element.attributes:
        return head
    children = [
        f"{name}={_value(value.strip())}" if value.strip() else name
        for name, value in element.attributes.items()
    ]
    children += (_element(child) for child in element.children)
    if any(child.clark_name in _UNSORTED_CHILDREN for child in element.children):
        return head + "".join(children)
    return head + _generic_list(children)


def _generic_list(items: Iterable[str]) -> str:
    return "".join(sorted(items))


@lru_cache(maxsize=1024)  # event times repeat: a case and its items share one moment
def _timestamp(value: datetime) -> str:
    """UTC with exactly millisecond precision, e.g. ``2019-10-21T10:00:30.000Z``."""
    utc = value.astimezone(UTC)
    # Python's round() is half-to-even on ties, as in the reference implementation.
    millis = round(utc.microsecond, -3) // 1000
    if millis == 1000:  # the reference fails here; rounding up carries into the next second
        utc = utc.replace(microsecond=0) + timedelta(seconds=1)
        millis = 0
    return (
        f"{utc.year:04d}-{utc.month:02d}-{utc.day:02d}T"
        f"{utc.hour:02d}:{utc.minute:02d}:{utc.second:02d}.{millis:03d}Z"
    )


def _number(value: Decimal) -> str:
    return _float_text(float(value)) or str(value)


def _float_text(number: float) -> str | None:
    """A number as the reference writes it: through a binary double, integers without ``.0``."""
    if number != number or number in (float("inf"), float("-inf")):
        return None
    return str(int(number)) if number.is_integer() else repr(number)


@lru_cache(maxsize=1 << 16)
def _value(text: str) -> str:
    """A leaf value in canonical form: CBV Web URI, normalised number or canonical DL URI."""
    if "urn:epcglobal:cbv:" in text:
        for urn, web in _CBV_URN_PREFIXES:
            text = text.replace(urn, web)
    prefix = text[:4]
    if prefix in _CURIES:
        text = text.replace(prefix, _CURIES[prefix])
    first = text[:1]
    if first in _NUMBER_STARTS or (first and not first.isascii()):
        try:
            number = _float_text(float(text))
        except ValueError:
            number = None
        if number is not None:
            return number
    if text.startswith(_IDENTIFIER_STARTS):
        # The shared, remembered shortcut first (the store index asks it for the same EPCs
        # next); where it gives a value, to_digital_link and _fast_digital_link give it too.
        fast = plain_digital_link(text) or _fast_digital_link(text)
        if fast is not None:
            return fast
        try:
            return to_digital_link(text)
        except (InvalidIdentifierError, ValueError):
            return text
    return text


# The three EPC schemes that make up nearly every DSCSA event, converted by slicing: the
# general converter validates every key pair and costs about 100 us per identifier, most of
# a hash. Anything unusual (escapes, odd lengths, other schemes) takes the general path, and
# the tests check both paths agree.
_SCHEME_SGTIN = "urn:epc:id:sgtin:"
_SCHEME_SSCC = "urn:epc:id:sscc:"
_SCHEME_SGLN = "urn:epc:id:sgln:"
_DL = "https://id.gs1.org/"


def _fast_digital_link(urn: str) -> str | None:
    if urn.startswith(_SCHEME_SGTIN):
        parts = urn[len(_SCHEME_SGTIN) :].split(".")
        if len(parts) != 3 or not _plain(parts[2]):
            return None
        company, item, serial = parts
        gtin = _gtin(item[:1] + company + item[1:])
        return f"{_DL}01/{gtin}/21/{serial}" if gtin else None
    if urn.startswith(_SCHEME_SSCC):
        parts = urn[len(_SCHEME_SSCC) :].split(".")
        if len(parts) != 2:
            return None
        company, reference = parts
        key = _gs1_key(reference[:1] + company + reference[1:], 17)
        return f"{_DL}00/{key}" if key else None
    if urn.startswith(_SCHEME_SGLN):
        parts = urn[len(_SCHEME_SGLN) :].split(".")
        if len(parts) != 3 or not _plain(parts[2]):
            return None
        key = _gs1_key(parts[0] + parts[1], 12)
        if key is None:
            return None
        return f"{_DL}414/{key}" if parts[2] == "0" else f"{_DL}414/{key}/254/{parts[2]}"
    return None


def _plain(component: str) -> bool:
    """Digits and ASCII letters only: nothing that needs percent-decoding or encoding."""
    return component.isascii() and component.isalnum()


@lru_cache(maxsize=4096)
def _gtin(body: str) -> str | None:
    # One product (GTIN) serves many serials: its key is worth remembering.
    return _gs1_key(body, 13)


def _gs1_key(body: str, length: int) -> str | None:
    """``body`` with its mod-10 check digit, if it is ``length`` ASCII digits."""
    if len(body) != length or not (body.isascii() and body.isdigit()):
        return None
    # Weights 3, 1, 3, ... from the rightmost digit of the body.
    total = 3 * sum(map(int, body[::-2])) + sum(map(int, body[-2::-2]))
    return body + str(-total % 10)
