"""Reads EPCIS 2.0 JSON-LD documents and events into the model, streaming and bounded.

Conventions for what JSON-LD has no standard form for (the writer uses the same ones):

* User extensions and ILMD fields are ``"prefix:name": value`` with the prefix declared in an
  ``@context`` (document, event or any nested object). A string, number or boolean value is
  the element's text, an object its children, an array repeated elements of that name
  (``null`` is an empty element). Keys without a prefix inside an extension object are
  elements in no namespace.
* XML attributes of an extension element go under the key ``"@xmlAttributes"`` (an object of
  qualified attribute name -> string), and the text of an element that also has attributes
  or children under ``"@xmlText"``. Extension elements in no namespace where JSON needs a
  prefix (event, ILMD, header and document level) go under ``"@xmlUnqualified"`` (an object
  of local name -> value). These keys have the form of a JSON-LD keyword, which JSON-LD
  processors ignore, so they cost nothing to linked-data consumers.
* ``cbvmda:`` keys are XML namespace ``urn:epcglobal:cbv:mda``; see :mod:`epcis.jsonld_context`.
* The SBDH is ``epcisHeader["sbdh:StandardBusinessDocumentHeader"]``, an extension-style tree
  of the SBDH XML (prefix ``sbdh`` declared by the document). Without it, the GS1 "pseudo-SBDH"
  document keys ``sender``, ``receiver`` and ``instanceIdentifier`` make a minimal SBDH.
* GS1 US healthcare header elements are ``epcisHeader["gs1ushc:guidelineVersion"]`` and
  ``epcisHeader["gs1ushc:dscsaTransactionStatement"]`` (an object of ``gs1ushc:`` children).
* Sensor report ``type``/``exception``/``component`` values are kept as written.

Hostile input: the whole document is bounded by ``max_bytes``; a first pass over the parser's
token stream enforces nesting depth, string length, the event count and rejects duplicate
keys in any object (JSON-LD would keep the last one silently, which lets two readers of the
same bytes disagree). No context is ever fetched: known GS1 context URLs are matched by name
and any other remote context is ignored, so a prefix it alone would define is an error.

Parsing uses ``ijson`` with its C backend. The first pass collects the document head (its
keys may come in any order, even ``@context`` last) and validates limits; the second builds
one event at a time in C. Memory stays at the input bytes plus one event (a seekable stream
is re-read instead of held).
"""

from __future__ import annotations

import io
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from decimal import Decimal
from functools import cache, lru_cache
from typing import IO, Any, BinaryIO, Literal, overload

import ijson  # type: ignore[import-untyped]
from pydantic import TypeAdapter, ValidationError

from epcis.errors import (
    DocumentTooLargeError,
    InvalidDocumentError,
    InvalidIdentifierError,
    Problem,
)
from epcis.jsonld_context import GS1_PREFIXES, xml_namespace
from epcis.model import (
    ContactInformation,
    DocumentFormat,
    DocumentHead,
    DocumentIdentification,
    DSCSATransactionStatement,
    EPCISHeader,
    Event,
    GS1USHealthcareHeader,
    Partner,
    StandardBusinessDocumentHeader,
    Vocabulary,
    VocabularyAttribute,
    VocabularyElement,
    XmlElement,
)
from epcis.reading import EventError, ReadLimits
from epcis.vocabulary import BIZ_STEPS, DISPOSITIONS, CBVKind, canonical

__all__ = [
    "ATTRIBUTES_KEY",
    "GS1USHC_NS",
    "SBDH_NS",
    "TEXT_KEY",
    "UNQUALIFIED_KEY",
    "event_from_jsonld",
    "iter_jsonld",
]

ATTRIBUTES_KEY = "@xmlAttributes"
UNQUALIFIED_KEY = "@xmlUnqualified"
TEXT_KEY = "@xmlText"
SBDH_NS = "http://www.unece.org/cefact/namespaces/StandardBusinessDocumentHeader"
GS1USHC_NS = "http://epcis.gs1us.org/hc/ns"

_CHUNK = 64 * 1024
_EVENT_TYPES = frozenset(
    {"ObjectEvent", "AggregationEvent", "TransactionEvent", "TransformationEvent"}
    | {"AssociationEvent"}
)
_DOCUMENT_KEYS = frozenset(
    {"@context", "id", "type", "schemaVersion", "creationDate", "epcisHeader", "epcisBody"}
    | {"sender", "receiver", "instanceIdentifier"}
)
_EPC_LISTS = ("epcList", "childEPCs", "inputEPCList", "outputEPCList")
_QUANTITY_LISTS = ("quantityList", "childQuantityList", "inputQuantityList", "outputQuantityList")
_PLAIN_EVENT_KEYS = frozenset(
    {"type", "eventTime", "eventTimeZoneOffset", "recordTime", "eventID", "action"}
    | {"transformationID"}
)
_SENSOR_METADATA_KEYS = frozenset(
    "time deviceID deviceMetadata rawData startTime endTime dataProcessingMethod bizRules".split()
)
_SENSOR_REPORT_KEYS = frozenset(
    "type exception deviceID deviceMetadata rawData dataProcessingMethod bizRules time "
    "microorganism "
    "chemicalSubstance value component stringValue booleanValue hexBinaryValue uriValue "
    "minValue maxValue meanValue sDev percRank percValue uom coordinateReferenceSystem".split()
)


# --- identifiers (epcis.identifiers is optional until it lands) -------------------------


# Memoised because the same EPCs and locations recur in event after event (an item is
# commissioned, packed, shipped and received; a read point appears in thousands of events) and
# parsing one costs tens of microseconds. Both functions are pure; errors are not cached, so an
# invalid identifier raises every time it is met.
@lru_cache(maxsize=1 << 16)
def _canonical_epc(value: str) -> str:
    return str(_identifier_functions()[0](value))


@lru_cache(maxsize=1 << 12)
def _canonical_class(value: str) -> str:
    return str(_identifier_functions()[1](value))


@cache
def _identifier_functions() -> tuple[Any, Any]:
    try:
        from epcis import identifiers  # type: ignore[attr-defined,unused-ignore]
    except ImportError:  # pragma: no cover - epcis.identifiers is being written alongside
        return str, str
    # Until epcis.identifiers exports them, identifiers are kept as written.
    return getattr(identifiers, "canonical_epc", str), getattr(identifiers, "canonical_class", str)


# --- prefix scope ----------------------------------------------------------------------


class _Scope:
    """Prefixes in force at one point of the document: prefix -> XML namespace."""

    __slots__ = ("prefixes",)

    def __init__(self, prefixes: Mapping[str, str]) -> None:
        self.prefixes = prefixes

    def with_context(self, context: Any, path: str) -> _Scope:
        added = context_prefixes(context, path)
        return _Scope({**self.prefixes, **added}) if added else self

    def resolve(self, key: str, path: str) -> tuple[str | None, str]:
        prefix, colon, local = key.partition(":")
        if not colon:
            return None, key
        namespace = self.prefixes.get(prefix)
        if namespace is None:
            if local.startswith("//"):
                raise _invalid(f"absolute IRI {key!r} is not a supported extension key", path)
            raise _invalid(f"prefix {prefix!r} is not declared in any @context", path)
        return namespace, local


def context_prefixes(context: Any, path: str) -> dict[str, str]:
    """The prefixes (prefix -> XML namespace) an ``@context`` value declares."""
    items = context if isinstance(context, list) else [context]
    found: dict[str, str] = {}
    for item in items:
        if isinstance(item, str) or item is None:
            continue  # remote contexts: the GS1 one is built in, others are never fetched
        if not isinstance(item, dict):
            raise _invalid("an @context entry must be a URL or an object", path)
        for term, definition in item.items():
            if term.startswith("@") or ":" in term:
                continue
            if isinstance(definition, dict):
                # Expanded definitions are how we write a namespace verbatim.
                iri = definition.get("@id")
                if isinstance(iri, str) and iri:
                    found[term] = iri
            elif isinstance(definition, str) and definition:
                found[term] = xml_namespace(definition)
    return found


def _base_scope(namespaces: Mapping[str, str]) -> _Scope:
    return _Scope({**GS1_PREFIXES, **namespaces})


# --- errors ----------------------------------------------------------------------------


def _invalid(reason: str, path: str, source: str | None = None) -> InvalidDocumentError:
    return InvalidDocumentError(reason, (Problem(reason, source=source, path=path or "/"),))


def _pointer(*parts: object) -> str:
    return "".join(_pointer_join("", p) for p in parts)


def _with_source(error: InvalidDocumentError, source: str | None) -> InvalidDocumentError:
    if source is None:
        return error
    problems = tuple(
        Problem(p.reason, source=source, line=p.line, path=p.path) for p in error.problems
    )
    return type(error)(str(error), problems)


# --- extension trees -------------------------------------------------------------------


def _text(value: Any, path: str) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, str):
        return value
    if isinstance(value, int | float | Decimal):
        return str(value)
    raise _invalid("expected a string, number or boolean", path)


def _elements(key: str, value: Any, scope: _Scope, path: str) -> list[XmlElement]:
    """The XmlElements one ``"prefix:name": value`` entry stands for."""
    namespace, name = scope.resolve(key, path)
    if isinstance(value, list):
        out: list[XmlElement] = []
        for index, item in enumerate(value):
            if isinstance(item, list):
                raise _invalid("nested arrays have no XML form", _pointer_join(path, index))
            out.append(_element(namespace, name, item, scope, _pointer_join(path, index)))
        return out
    return [_element(namespace, name, value, scope, path)]


def _pointer_join(path: str, part: object) -> str:
    text = str(part)
    if "~" in text or "/" in text:
        text = text.replace("~", "~0").replace("/", "~1")
    return f"{path}/{text}"


def _element(namespace: str | None, name: str, value: Any, scope: _Scope, path: str) -> XmlElement:
    if value is None:
        return XmlElement(namespace=namespace, name=name)
    if not isinstance(value, dict):
        return XmlElement(namespace=namespace, name=name, text=_text(value, path))
    if "@context" in value:
        scope = scope.with_context(value["@context"], path + "/@context")
    attributes: dict[str, str] = {}
    text: str | None = None
    children: list[XmlElement] = []
    for key, item in value.items():
        item_path = _pointer_join(path, key)
        if key == "@context":
            continue
        if key == ATTRIBUTES_KEY:
            attributes = _attributes(item, scope, item_path)
        elif key == TEXT_KEY:
            text = _text(item, item_path)
        else:
            children.extend(_elements(key, item, scope, item_path))
    return XmlElement(
        namespace=namespace, name=name, attributes=attributes, text=text, children=tuple(children)
    )


def _attributes(value: Any, scope: _Scope, path: str) -> dict[str, str]:
    if not isinstance(value, dict):
        raise _invalid(f"{ATTRIBUTES_KEY} must be an object", path)
    out: dict[str, str] = {}
    for key, item in value.items():
        namespace, name = scope.resolve(key, _pointer_join(path, key))
        out[f"{{{namespace}}}{name}" if namespace else name] = _text(item, path)
    return out


def extension_elements(
    obj: Mapping[str, Any], known: frozenset[str], scope: _Scope, path: str
) -> tuple[XmlElement, ...]:
    """The user extensions among an object's keys (those not in ``known``)."""
    out: list[XmlElement] = []
    for key, value in obj.items():
        if key in known or key == "@context":
            continue
        if key == UNQUALIFIED_KEY:
            for name, item in _object(value, _pointer_join(path, key)).items():
                if ":" in name:
                    raise _invalid(f"{name!r} is qualified", _pointer_join(path, key))
                out.extend(_elements(name, item, scope, _pointer_join(path, key) + _pointer(name)))
            continue
        if ":" not in key:
            raise _invalid(f"unknown field {key!r} (extensions need a prefix)", path)
        out.extend(_elements(key, value, scope, _pointer_join(path, key)))
    return tuple(out)


def _clark(key: str, scope: _Scope, path: str) -> str:
    namespace, name = scope.resolve(key, path)
    return f"{{{namespace}}}{name}" if namespace else name


# --- events ----------------------------------------------------------------------------


@cache
def _event_adapter() -> TypeAdapter[Event]:
    return TypeAdapter(Event)


def _as_list(value: Any, path: str) -> list[Any]:
    if isinstance(value, list):
        return value
    if isinstance(value, str):
        return [value]  # certificationInfo may be a single string
    raise _invalid("expected an array", path)


def _id_of(value: Any, path: str) -> str:
    if isinstance(value, dict):
        value = value.get("id")
    if not isinstance(value, str):
        raise _invalid("expected an object with an 'id' string", path)
    return value


def _object(value: Any, path: str) -> dict[str, Any]:
    if not isinstance(value, dict):
        raise _invalid("expected an object", path)
    return value


def _quantities(value: Any, path: str) -> list[dict[str, Any]]:
    out = []
    for index, item in enumerate(_as_list(value, path)):
        entry = dict(_object(item, _pointer_join(path, index)))
        if isinstance(entry.get("epcClass"), str):
            entry["epcClass"] = _canonical_class(entry["epcClass"])
        out.append(entry)
    return out


def _typed_list(value: Any, field: str, kind: CBVKind, path: str) -> list[dict[str, Any]]:
    out = []
    for index, item in enumerate(_as_list(value, path)):
        entry = _object(item, _pointer_join(path, index))
        converted: dict[str, Any] = {"type": entry.get("type"), "value": entry.get(field)}
        if field == "bizTransaction":
            converted = {"bizTransaction": entry.get(field)}
            if entry.get("type") is not None:
                converted["type"] = entry["type"]
        if isinstance(converted.get("type"), str):
            converted["type"] = _canonical_cbv(kind, converted["type"])
        if field != "bizTransaction" and isinstance(converted["value"], str):
            converted["value"] = _canonical_epc(converted["value"])
        extra = set(entry) - {"type", field}
        if extra:
            raise _invalid(f"unknown field {sorted(extra)[0]!r}", _pointer_join(path, index))
        out.append(converted)
    return out


def _error_declaration(value: Any, scope: _Scope, path: str) -> dict[str, Any]:
    obj = _object(value, path)
    out: dict[str, Any] = {
        "declarationTime": obj.get("declarationTime"),
        "correctiveEventIDs": obj.get("correctiveEventIDs", ()),
        "extensions": extension_elements(
            obj, frozenset({"declarationTime", "reason", "correctiveEventIDs"}), scope, path
        ),
    }
    if isinstance(obj.get("reason"), str):
        out["reason"] = canonical(CBVKind.ERROR_REASON, obj["reason"])
    return out


def _sensor_part(
    obj: dict[str, Any], known: frozenset[str], scope: _Scope, path: str
) -> dict[str, Any]:
    out: dict[str, Any] = {}
    other: dict[str, str] = {}
    for key, value in obj.items():
        if key in known:
            out[key] = value
        elif key != "@context":
            if ":" not in key:
                raise _invalid(f"unknown field {key!r}", _pointer_join(path, key))
            other[_clark(key, scope, path)] = _text(value, _pointer_join(path, key))
    if isinstance(out.get("deviceID"), str):
        out["deviceID"] = _canonical_epc(out["deviceID"])
    out["otherAttributes"] = other
    return out


def _sensor_elements(value: Any, scope: _Scope, path: str) -> list[dict[str, Any]]:
    out = []
    for index, item in enumerate(_as_list(value, path)):
        item_path = _pointer_join(path, index)
        obj = _object(item, item_path)
        element: dict[str, Any] = {}
        if "sensorMetadata" in obj:
            element["sensorMetadata"] = _sensor_part(
                _object(obj["sensorMetadata"], item_path + "/sensorMetadata"),
                _SENSOR_METADATA_KEYS,
                scope,
                item_path + "/sensorMetadata",
            )
        reports_path = item_path + "/sensorReport"
        element["sensorReport"] = [
            _sensor_part(
                _object(report, _pointer_join(reports_path, n)),
                _SENSOR_REPORT_KEYS,
                scope,
                _pointer_join(reports_path, n),
            )
            for n, report in enumerate(_as_list(obj.get("sensorReport", []), reports_path))
        ]
        element["extensions"] = extension_elements(
            obj, frozenset({"sensorMetadata", "sensorReport"}), scope, item_path
        )
        out.append(element)
    return out


def _ilmd(value: Any, scope: _Scope, path: str) -> tuple[XmlElement, ...]:
    obj = _object(value, path)
    if "@context" in obj:
        scope = scope.with_context(obj["@context"], path + "/@context")
    return extension_elements(obj, frozenset(), scope, path)


def _convert_field(key: str, value: Any, scope: _Scope, path: str) -> Any:
    if key in _EPC_LISTS:
        return [_canonical_epc(_id_str(v, _pointer_join(path, i))) for i, v in enumerate(value)]
    if key == "parentID":
        return _canonical_epc(_id_str(value, path))
    if key in _QUANTITY_LISTS:
        return _quantities(value, path)
    if key == "bizStep":
        return _cbv(CBVKind.BIZ_STEP, value, path)
    if key == "disposition":
        return _cbv(CBVKind.DISPOSITION, value, path)
    if key in ("readPoint", "bizLocation"):
        return _canonical_epc(_id_of(value, path))
    if key == "bizTransactionList":
        return _typed_list(value, "bizTransaction", CBVKind.BIZ_TRANSACTION_TYPE, path)
    if key == "sourceList":
        return _typed_list(value, "source", CBVKind.SOURCE_DESTINATION_TYPE, path)
    if key == "destinationList":
        return _typed_list(value, "destination", CBVKind.SOURCE_DESTINATION_TYPE, path)
    if key == "persistentDisposition":
        obj = _object(value, path)
        for extra in set(obj) - {"set", "unset"}:
            raise _invalid(f"unknown field {extra!r}", path)
        return {
            part: [_cbv(CBVKind.DISPOSITION, v, path) for v in _as_list(obj.get(part, []), path)]
            for part in ("set", "unset")
        }
    if key == "errorDeclaration":
        return _error_declaration(value, scope, path)
    if key == "certificationInfo":
        return _as_list(value, path)
    if key == "sensorElementList":
        return _sensor_elements(value, scope, path)
    if key == "ilmd":
        return _ilmd(value, scope, path)
    return value


# Few distinct CBV values occur, in nearly every event: memoised like the EPCs above.
_canonical_cbv = lru_cache(maxsize=1 << 10)(canonical)

_CBV_WORDS = {CBVKind.BIZ_STEP: BIZ_STEPS, CBVKind.DISPOSITION: DISPOSITIONS}


def _cbv(kind: CBVKind, value: Any, path: str) -> str:
    """A bizStep or disposition: a bare word must be a CBV value, anything else a URI."""
    word = _canonical_cbv(kind, _id_str(value, path))
    if ":" not in word and word not in _CBV_WORDS[kind]:
        raise _invalid(f"{word!r} is not a CBV {kind.name.lower()} (use a URI)", path)
    return word


def _id_str(value: Any, path: str) -> str:
    if not isinstance(value, str):
        raise _invalid("expected a string", path)
    return value


_CONVERTED_KEYS = frozenset(
    {*_EPC_LISTS, *_QUANTITY_LISTS, "parentID", "bizStep", "disposition", "readPoint"}
    | {"bizLocation", "bizTransactionList", "sourceList", "destinationList"}
    | {"persistentDisposition", "errorDeclaration", "certificationInfo", "sensorElementList"}
    | {"ilmd"}
)
_EVENT_KEYS = _CONVERTED_KEYS | _PLAIN_EVENT_KEYS


def event_from_jsonld(
    obj: dict[str, Any], namespaces: Mapping[str, str], *, path: str = ""
) -> Event:
    """One EPCIS 2.0 JSON event as a model event.

    ``namespaces`` are the prefixes in force (prefix -> XML namespace) besides the GS1 ones;
    an ``@context`` inside the event adds to them. ``path`` is the event's JSON pointer, used
    in error reports.
    """
    if not isinstance(obj, dict):
        raise _invalid("an event must be an object", path)
    scope = _base_scope(namespaces)
    if "@context" in obj:
        scope = scope.with_context(obj["@context"], path + "/@context")
    event_type = obj.get("type")
    if event_type not in _EVENT_TYPES:
        raise _invalid(f"unknown event type {event_type!r}", path + "/type")
    data: dict[str, Any] = {}
    for key, value in obj.items():
        if key in _CONVERTED_KEYS:
            if value is not None:
                try:
                    data[key] = _convert_field(key, value, scope, _pointer_join(path, key))
                except InvalidIdentifierError as error:
                    raise _invalid(str(error), _pointer_join(path, key)) from None
        elif key in _PLAIN_EVENT_KEYS:
            data[key] = value
    for key in ("readPoint", "bizLocation"):
        location = obj.get(key)
        if isinstance(location, dict) and len(location) > 1:
            data[f"{key}Extensions"] = extension_elements(
                location, frozenset({"id"}), scope, _pointer_join(path, key)
            )
    data["extensions"] = extension_elements(obj, _EVENT_KEYS, scope, path)
    try:
        return _event_adapter().validate_python(data)
    except ValidationError as error:
        raise _validation_error(error, path) from None


def _validation_error(error: ValidationError, path: str) -> InvalidDocumentError:
    problems = []
    for detail in error.errors(include_url=False):
        loc = list(detail["loc"])
        if loc and loc[0] in _EVENT_TYPES:
            loc = loc[1:]
        problems.append(Problem(detail["msg"], path=path + _pointer(*loc)))
    return InvalidDocumentError(f"invalid event: {problems[0]}", tuple(problems))


# --- document head ---------------------------------------------------------------------


def _sbdh_text(element: XmlElement | None) -> str | None:
    return element.text if element is not None else None


def _partner(element: XmlElement) -> Partner:
    identifier = element.find(SBDH_NS, "Identifier")
    contacts = [
        ContactInformation(
            contact=_sbdh_text(child.find(SBDH_NS, "Contact")),
            email_address=_sbdh_text(child.find(SBDH_NS, "EmailAddress")),
            fax_number=_sbdh_text(child.find(SBDH_NS, "FaxNumber")),
            telephone_number=_sbdh_text(child.find(SBDH_NS, "TelephoneNumber")),
            contact_type_identifier=_sbdh_text(child.find(SBDH_NS, "ContactTypeIdentifier")),
        )
        for child in element.children
        if child.namespace == SBDH_NS and child.name == "ContactInformation"
    ]
    return Partner(
        identifier=(identifier.text or "") if identifier else "",
        authority=identifier.attributes.get("Authority") if identifier else None,
        contact_information=tuple(contacts),
    )


def _sbdh(element: XmlElement, path: str) -> StandardBusinessDocumentHeader:
    ident = element.find(SBDH_NS, "DocumentIdentification")
    if ident is None:
        raise _invalid("SBDH without DocumentIdentification", path)
    fields = {
        "standard": _sbdh_text(ident.find(SBDH_NS, "Standard")),
        "type_version": _sbdh_text(ident.find(SBDH_NS, "TypeVersion")),
        "instance_identifier": _sbdh_text(ident.find(SBDH_NS, "InstanceIdentifier")),
        "type": _sbdh_text(ident.find(SBDH_NS, "Type")),
        "multiple_type": _sbdh_text(ident.find(SBDH_NS, "MultipleType")),
        "creation_date_and_time": _sbdh_text(ident.find(SBDH_NS, "CreationDateAndTime")),
    }
    version = _sbdh_text(element.find(SBDH_NS, "HeaderVersion"))
    try:
        return StandardBusinessDocumentHeader(
            header_version=version or "1.0",
            sender=tuple(_partner(c) for c in element.children if c.name == "Sender"),
            receiver=tuple(_partner(c) for c in element.children if c.name == "Receiver"),
            document_identification=DocumentIdentification.model_validate(
                {k: v for k, v in fields.items() if v is not None}
            ),
            manifest=element.find(SBDH_NS, "Manifest"),
            business_scope=element.find(SBDH_NS, "BusinessScope"),
        )
    except ValidationError as error:
        raise _invalid(f"invalid SBDH: {error.errors()[0]['msg']}", path) from None


def _vocabularies(value: Any, scope: _Scope, path: str) -> tuple[Vocabulary, ...]:
    out = []
    for index, item in enumerate(_as_list(value, path)):
        vocab_path = _pointer_join(path, index)
        vocab = _object(item, vocab_path)
        elements = []
        for n, raw in enumerate(vocab.get("vocabularyElementList", [])):
            element_path = f"{vocab_path}/vocabularyElementList/{n}"
            element = _object(raw, element_path)
            attributes = []
            for m, raw_attribute in enumerate(element.get("attributes", [])):
                attribute_path = f"{element_path}/attributes/{m}"
                attribute = _object(raw_attribute, attribute_path)
                content = attribute.get("attribute")
                if isinstance(content, dict):
                    children = _element(None, "attribute", content, scope, attribute_path)
                    attributes.append(
                        VocabularyAttribute(
                            id=_id_str(attribute.get("id"), attribute_path),
                            children=children.children,
                        )
                    )
                else:
                    attributes.append(
                        VocabularyAttribute(
                            id=_id_str(attribute.get("id"), attribute_path),
                            value=None if content is None else _text(content, attribute_path),
                        )
                    )
            elements.append(
                VocabularyElement(
                    id=_id_str(element.get("id"), element_path),
                    attributes=tuple(attributes),
                    children=tuple(element.get("children", ())),
                )
            )
        out.append(
            Vocabulary(
                type=_id_str(vocab.get("type"), vocab_path), vocabulary_element_list=tuple(elements)
            )
        )
    return tuple(out)


def _gs1ushc(header: dict[str, Any], scope: _Scope) -> GS1USHealthcareHeader | None:
    version: str | None = None
    statement: DSCSATransactionStatement | None = None
    for key, value in header.items():
        if ":" not in key or key == "@context":
            continue
        namespace, name = scope.resolve(key, "/epcisHeader")
        if namespace != GS1USHC_NS:
            continue
        path = _pointer("epcisHeader", key)
        if name == "guidelineVersion":
            version = _text(value, path)
        elif name == "dscsaTransactionStatement":
            tree = _element(namespace, name, value, scope, path)
            affirm = tree.find(GS1USHC_NS, "affirmTransactionStatement")
            notice = tree.find(GS1USHC_NS, "legalNotice")
            statement = DSCSATransactionStatement(
                affirm_transaction_statement=(affirm.text or "").strip() in ("true", "1")
                if affirm
                else False,
                legal_notice=notice.text if notice else None,
                other=tuple(c for c in tree.children if c is not affirm and c is not notice),
            )
    if version is None and statement is None:
        return None
    return GS1USHealthcareHeader(guideline_version=version, dscsa_transaction_statement=statement)


def _is_header_key(key: str, scope: _Scope) -> bool:
    if ":" not in key:
        return False
    namespace, name = scope.resolve(key, "/epcisHeader")
    if namespace == SBDH_NS:
        return name == "StandardBusinessDocumentHeader"
    return namespace == GS1USHC_NS and name in ("guidelineVersion", "dscsaTransactionStatement")


def _pseudo_sbdh(doc: Mapping[str, Any]) -> StandardBusinessDocumentHeader | None:
    if not any(k in doc for k in ("sender", "receiver", "instanceIdentifier")):
        return None
    try:
        return StandardBusinessDocumentHeader(
            sender=tuple(Partner(identifier=s) for s in _as_list(doc.get("sender", []), "/")),
            receiver=tuple(Partner(identifier=r) for r in _as_list(doc.get("receiver", []), "/")),
            document_identification=DocumentIdentification(
                instance_identifier=str(doc.get("instanceIdentifier", "")),
                creation_date_and_time=doc["creationDate"],
            ),
        )
    except (ValidationError, KeyError):
        raise _invalid("invalid sender/receiver/instanceIdentifier", "/") from None


def head_from_jsonld(doc: Mapping[str, Any], scope: _Scope) -> DocumentHead:
    """The DocumentHead of a document whose top-level keys (except the events) are given."""
    raw_header = doc.get("epcisHeader")
    master_data: tuple[Vocabulary, ...] = ()
    body = doc.get("epcisBody")
    if isinstance(body, dict) and "vocabularyList" in body:
        master_data = _vocabularies(body["vocabularyList"], scope, "/epcisBody/vocabularyList")
    header: EPCISHeader | None = None
    sbdh = _pseudo_sbdh(doc)
    if raw_header is not None:
        raw = _object(raw_header, "/epcisHeader")
        if "@context" in raw:
            scope = scope.with_context(raw["@context"], "/epcisHeader/@context")
        for key, value in raw.items():
            if _is_header_key(key, scope) and scope.resolve(key, "")[0] == SBDH_NS:
                path = _pointer("epcisHeader", key)
                sbdh = _sbdh(_element(SBDH_NS, key, value, scope, path), path)
        masters = raw.get("epcisMasterData")
        if masters is not None:
            path = "/epcisHeader/epcisMasterData"
            master_data += _vocabularies(
                _object(masters, path).get("vocabularyList", []), scope, path + "/vocabularyList"
            )
        extensions = extension_elements(
            {k: v for k, v in raw.items() if not _is_header_key(k, scope)},
            frozenset({"epcisMasterData"}),
            scope,
            "/epcisHeader",
        )
        header = EPCISHeader(
            standard_business_document_header=sbdh,
            master_data=master_data,
            gs1ushc=_gs1ushc(raw, scope),
            extensions=extensions,
        )
    elif sbdh is not None or master_data:
        header = EPCISHeader(standard_business_document_header=sbdh, master_data=master_data)
    try:
        return DocumentHead(
            format=DocumentFormat.JSONLD_2_0,
            schema_version=str(doc.get("schemaVersion", "")),
            creation_date=doc.get("creationDate"),
            header=header,
            namespaces={k: v for k, v in scope.prefixes.items() if GS1_PREFIXES.get(k) != v},
            extensions=extension_elements(doc, _DOCUMENT_KEYS, scope, ""),
        )
    except ValidationError as error:
        detail = error.errors(include_url=False)[0]
        raise _invalid(detail["msg"], _pointer(*detail["loc"])) from None


# --- streaming -------------------------------------------------------------------------


@dataclass
class _Collected:
    """What the first pass learnt: the document's head keys and where its events are."""

    head: dict[str, Any]
    events_prefix: str
    event_count: int


class _Bounded(io.RawIOBase):
    """A read-only view of a stream that fails once more than ``limit`` bytes were read."""

    def __init__(self, stream: IO[bytes], limit: int) -> None:
        self._stream = stream
        self._left = limit

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: Any) -> int:
        data = self._stream.read(min(len(buffer), self._left + 1))
        self._left -= len(data)
        if self._left < 0:
            raise DocumentTooLargeError("document exceeds the size limit")
        buffer[: len(data)] = data
        return len(data)


def _events_prefix(doc_type: Any) -> str:
    if doc_type == "EPCISQueryDocument":
        return "epcisBody.queryResults.resultsBody.eventList.item"
    return "epcisBody.eventList.item"


_HEAD_SKIP = ("epcisBody.eventList", "epcisBody.queryResults.resultsBody.eventList")


def _first_pass(stream: Any, limits: ReadLimits) -> _Collected:
    """Check limits and duplicate keys over every token; build all but the events."""
    # One Python step per token: locals and the cheapest tests first keep it ~10x json.loads.
    built: list[list[Any]] = []  # [container, key awaiting its value] for built containers
    seen: list[set[str] | None] = []  # keys of every open object (None for arrays)
    root: Any = None
    skip_level = -1  # depth of the eventList array being skipped, -1 when building
    events = 0
    max_text, max_depth, max_events = limits.max_text_length, limits.max_depth, limits.max_events
    for prefix, event, value in ijson.parse(stream, use_float=False):
        if event == "map_key":
            keys = seen[-1]
            if value in keys:  # type: ignore[operator]
                raise _invalid(f"duplicate key {value!r}", _ijson_pointer(prefix))
            keys.add(value)  # type: ignore[union-attr]
            if len(value) > max_text:
                raise _invalid("key too long", _ijson_pointer(prefix))
            if skip_level < 0:
                built[-1][1] = value
        elif event == "string" or event == "number" or event == "boolean" or event == "null":
            if event == "string" and len(value) > max_text:
                raise _invalid("string too long", _ijson_pointer(prefix))
            if skip_level < 0:
                root = _attach(built, value) if built else value
        elif event == "start_map" or event == "start_array":
            depth = len(seen)
            if depth >= max_depth:
                raise _invalid("document nested too deeply", _ijson_pointer(prefix))
            is_map = event == "start_map"
            seen.append(set() if is_map else None)
            if skip_level >= 0:
                if is_map and depth == skip_level + 1:
                    events += 1
                    if events > max_events:
                        raise DocumentTooLargeError(f"more than {max_events} events")
                continue
            container: Any = {} if is_map else []
            root = _attach(built, container) if built else container
            if not is_map and prefix in _HEAD_SKIP:
                skip_level = depth  # events are built one at a time in the second pass
            else:
                built.append([container, None])
        else:  # end_map, end_array
            seen.pop()
            if skip_level >= 0:
                if len(seen) == skip_level:
                    skip_level = -1
                continue
            built.pop()
    if not isinstance(root, dict):
        raise _invalid("an EPCIS JSON document must be an object", "/")
    return _Collected(root, _events_prefix(root.get("type")), events)


def _ijson_pointer(prefix: str) -> str:
    return "/" + prefix.replace(".", "/") if prefix else "/"


def _attach(built: list[list[Any]], value: Any) -> Any:
    container, key = built[-1]
    if isinstance(container, list):
        container.append(value)
    else:
        container[key] = value
    return built[0][0]


def _open(source: BinaryIO | bytes, limits: ReadLimits) -> tuple[Any, Any]:
    """Two readers of the same bytes: (first pass, factory for the second)."""
    if isinstance(source, bytes | bytearray | memoryview):
        data = bytes(source)
        if len(data) > limits.max_bytes:
            raise DocumentTooLargeError(f"document exceeds {limits.max_bytes} bytes")
        return io.BytesIO(data), lambda: io.BytesIO(data)
    if source.seekable():
        start = source.tell()

        def again() -> Any:
            source.seek(start)
            return _Bounded(source, limits.max_bytes)

        return _Bounded(source, limits.max_bytes), again
    data = source.read(limits.max_bytes + 1)
    if len(data) > limits.max_bytes:
        raise DocumentTooLargeError(f"document exceeds {limits.max_bytes} bytes")
    return io.BytesIO(data), lambda: io.BytesIO(data)


@overload
def iter_jsonld(
    source: BinaryIO | bytes,
    *,
    limits: ReadLimits,
    source_name: str | None = ...,
    event_errors: Literal[False] = ...,
) -> Iterator[DocumentHead | Event]: ...


@overload
def iter_jsonld(
    source: BinaryIO | bytes,
    *,
    limits: ReadLimits,
    source_name: str | None = ...,
    event_errors: bool,
) -> Iterator[DocumentHead | Event | EventError]: ...


def iter_jsonld(
    source: BinaryIO | bytes,
    *,
    limits: ReadLimits,
    source_name: str | None = None,
    event_errors: bool = False,
) -> Iterator[DocumentHead | Event | EventError]:
    """The DocumentHead of an EPCIS 2.0 JSON-LD document, then its events in order.

    With ``event_errors`` an event that cannot be built is an :class:`EventError` in its
    place and reading goes on; the first pass has already seen the whole document well-formed
    and within limits, so what is left to fail is the event itself.
    """
    first, second = _open(source, limits)
    try:
        collected = _first_pass(first, limits)
    except ijson.JSONError as error:
        raise InvalidDocumentError(
            f"not well-formed JSON: {error}",
            (Problem(f"not well-formed JSON: {error}", source=source_name),),
        ) from None
    except InvalidDocumentError as error:
        raise _with_source(error, source_name) from None
    doc = collected.head
    try:
        if doc.get("type") not in ("EPCISDocument", "EPCISQueryDocument"):
            raise _invalid("type must be EPCISDocument or EPCISQueryDocument", "/type")
        if "@context" not in doc:
            raise _invalid("missing @context", "/")
        scope = _base_scope({}).with_context(doc["@context"], "/@context")
        yield head_from_jsonld(doc, scope)
        namespaces = {k: v for k, v in scope.prefixes.items() if GS1_PREFIXES.get(k) != v}
        base = "/" + collected.events_prefix.removesuffix(".item").replace(".", "/")
        stream = second()
        objects = ijson.items(stream, collected.events_prefix, use_float=False)
        if not event_errors:
            for index, obj in enumerate(objects):
                yield event_from_jsonld(obj, namespaces, path=f"{base}/{index}")
            return
        for index, obj in enumerate(objects):
            item: Event | EventError
            try:
                item = event_from_jsonld(obj, namespaces, path=f"{base}/{index}")
            except InvalidDocumentError as error:
                item = EventError(index + 1, _with_source(error, source_name))
            yield item
    except InvalidDocumentError as error:
        raise _with_source(error, source_name) from None
