"""Hypothesis strategies for model events and a whole-document read, for the JSON-LD tests."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone
from typing import Any

from hypothesis import strategies as st

from epcis.identifiers import canonical_class, canonical_epc
from epcis.jsonld_reader import iter_jsonld
from epcis.model import (
    Action,
    AggregationEvent,
    BizTransaction,
    DocumentHead,
    ErrorDeclaration,
    Event,
    ObjectEvent,
    PersistentDisposition,
    QuantityElement,
    SensorElement,
    SensorMetadata,
    SensorReport,
    SourceDestination,
    TransactionEvent,
    TransformationEvent,
    XmlElement,
)
from epcis.reading import ReadLimits
from epcis.vocabulary import BIZ_STEPS, DISPOSITIONS

__all__ = ["LIMITS", "events", "read", "xml_elements"]

LIMITS = ReadLimits(max_bytes=50_000_000, max_events=100_000)


def read(data: bytes) -> tuple[DocumentHead, list[Event]]:
    """A JSON-LD document's head and events."""
    items = list(iter_jsonld(data, limits=LIMITS))
    head = items[0]
    assert isinstance(head, DocumentHead)
    return head, [e for e in items[1:] if not isinstance(e, DocumentHead)]


NAMESPACES = (
    "http://ns.example.com/epcis/",
    "urn:epcglobal:cbv:mda",
    "http://epcis.gs1us.org/hc/ns",
    "urn:example:ext:",
    "https://example.org/vocab#",
)


def _model(cls: Any, **fields: st.SearchStrategy[Any]) -> st.SearchStrategy[Any]:
    """Build a model by field name (st.builds would add required fields by their alias)."""
    return st.fixed_dictionaries(fields).map(lambda kwargs: cls(**kwargs))


_names = st.from_regex(r"[a-zA-Z][a-zA-Z0-9_]{0,8}", fullmatch=True)
_text = st.text(st.characters(codec="utf-8", exclude_categories=("Cs", "Cc")), max_size=12)
# Identifiers in the model's canonical form, whatever epcis.identifiers makes of them.
_epcs = st.sampled_from(
    [
        canonical_epc(value)
        for value in (
            "urn:epc:id:sgtin:0614141.107346.2017",
            "urn:epc:id:sscc:0614141.1234567890",
            "https://id.gs1.org/01/09520123456788/21/12345",
            "urn:epc:id:sgln:0614141.07346.1234",
        )
    ]
)
_times = st.datetimes(
    min_value=datetime(2000, 1, 1), max_value=datetime(2040, 1, 1), timezones=st.just(UTC)
).map(lambda t: t.astimezone(timezone(timedelta(hours=-5))))


@st.composite
def xml_elements(draw: st.DrawFn, depth: int = 2) -> XmlElement:
    namespace = draw(st.sampled_from(NAMESPACES))
    attributes = draw(st.dictionaries(_names, _text, max_size=2))
    if depth > 0 and draw(st.booleans()):
        # Children of one name stay together: JSON objects cannot interleave repeated keys.
        groups = draw(st.lists(xml_elements(depth - 1), max_size=3))
        children = tuple(sorted(groups, key=lambda e: (e.namespace or "", e.name)))
        text = draw(st.none() | _text)
        return XmlElement(
            namespace=namespace,
            name=draw(_names),
            attributes=attributes,
            text=text,
            children=children,
        )
    return XmlElement(
        namespace=namespace, name=draw(_names), attributes=attributes, text=draw(st.none() | _text)
    )


def _unique_names(elements: list[XmlElement]) -> tuple[XmlElement, ...]:
    return tuple(sorted(elements, key=lambda e: (e.namespace or "", e.name)))


_quantities = st.lists(
    _model(
        QuantityElement,
        epc_class=st.just(canonical_class("urn:epc:class:lgtin:4012345.012345.998877")),
        quantity=st.none() | st.decimals(min_value=0, max_value=10**6, places=2),
        uom=st.none() | st.sampled_from(["KGM", "EA"]),
    ),
    max_size=2,
)
_sensors = st.lists(
    _model(
        SensorElement,
        sensor_metadata=st.none() | _model(SensorMetadata, time=_times, biz_rules=st.none()),
        sensor_report=st.lists(
            _model(
                SensorReport,
                type=st.sampled_from(["Temperature", "gs1:Humidity"]),
                value=st.none() | st.decimals(min_value=-50, max_value=50, places=1),
                uom=st.just("CEL"),
                other_attributes=st.dictionaries(
                    _names.map(lambda n: "{http://ns.example.com/epcis/}" + n), _text, max_size=1
                ),
            ),
            max_size=2,
        ).map(tuple),
    ),
    max_size=1,
)


@st.composite
def _common(draw: st.DrawFn) -> dict[str, object]:
    return {
        "event_time": draw(_times),
        "event_time_zone_offset": "-05:00",
        "record_time": draw(st.none() | _times),
        "event_id": draw(st.none() | st.uuids().map(lambda u: f"urn:uuid:{u}")),
        "error_declaration": draw(
            st.none()
            | _model(
                ErrorDeclaration,
                declaration_time=_times,
                reason=st.none() | st.just("incorrect_data"),
                corrective_event_ids=st.lists(st.just("urn:uuid:1"), max_size=1).map(tuple),
            )
        ),
        "biz_step": draw(st.none() | st.sampled_from(sorted(BIZ_STEPS)) | st.just("urn:x:step")),
        "disposition": draw(st.none() | st.sampled_from(sorted(DISPOSITIONS))),
        "persistent_disposition": draw(
            st.none() | _model(PersistentDisposition, set=st.just(("completeness_verified",)))
        ),
        "read_point": draw(st.none() | _epcs),
        "biz_transaction_list": tuple(
            draw(
                st.lists(
                    _model(BizTransaction, value=_epcs, type=st.none() | st.just("po")), max_size=2
                )
            )
        ),
        "source_list": tuple(
            draw(
                st.lists(
                    _model(SourceDestination, value=_epcs, type=st.just("owning_party")), max_size=2
                )
            )
        ),
        "sensor_element_list": tuple(draw(_sensors)),
        "extensions": _unique_names(draw(st.lists(xml_elements(), max_size=3))),
    }


@st.composite
def events(draw: st.DrawFn) -> Event:
    common = draw(_common())
    kind = draw(st.sampled_from(["object", "aggregation", "transaction", "transformation"]))
    epcs = tuple(draw(st.lists(_epcs, max_size=3)))
    action = draw(st.sampled_from(list(Action)))
    if kind == "object":
        ilmd = draw(st.none() | st.lists(xml_elements(1), max_size=2).map(_unique_names))
        return ObjectEvent(
            **common,
            epc_list=epcs,
            action=action,
            quantity_list=tuple(draw(_quantities)),
            ilmd=ilmd,
        )
    if kind == "aggregation":
        return AggregationEvent(
            **common, parent_id=draw(st.none() | _epcs), child_epcs=epcs, action=action
        )
    if kind == "transaction":
        return TransactionEvent(**common, epc_list=epcs, action=action)
    return TransformationEvent(
        **common,
        input_epc_list=epcs,
        output_quantity_list=tuple(draw(_quantities)),
        transformation_id=draw(st.none() | st.just("urn:epc:id:gdti:0614141.12345.400")),
    )
