"""Reusable hypothesis strategies for model events and document heads (any codec's tests)."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone
from typing import Any, TypeVar

from hypothesis import strategies as st
from pydantic import BaseModel

from epcis.model import (
    Action,
    AggregationEvent,
    AssociationEvent,
    BizTransaction,
    DocumentFormat,
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
from epcis.vocabulary import BIZ_STEPS, DISPOSITIONS

__all__ = ["documents_heads", "events", "offsets", "times", "xml_elements"]

EXTENSION_NAMESPACES = ("urn:epcglobal:cbv:mda", "http://ns.example.com/epcis/", "urn:x:ext")
_M = TypeVar("_M", bound=BaseModel)
_NAME = st.from_regex(r"[a-z][A-Za-z0-9]{0,8}", fullmatch=True)
# Text that survives XML untouched (no CR, no control characters, no attribute normalisation).
_TEXT = st.text(
    alphabet=st.characters(
        whitelist_categories=("L", "N", "P", "Zs"), blacklist_characters="\r\x85\u2028\u2029"
    ),
    min_size=1,
    max_size=20,
)
_TOKEN = st.from_regex(r"[A-Za-z0-9][A-Za-z0-9._-]{0,12}", fullmatch=True)


def _model(model: type[_M], **fields: st.SearchStrategy[Any]) -> st.SearchStrategy[_M]:
    """Like ``st.builds`` but by field name only (``builds`` would also fill camelCase aliases)."""
    return st.fixed_dictionaries(fields).map(lambda values: model(**values))


@st.composite
def offsets(draw: st.DrawFn) -> str:
    """An eventTimeZoneOffset string."""
    hours = draw(st.integers(min_value=0, max_value=13))
    minutes = draw(st.sampled_from((0, 30, 45)))
    return f"{draw(st.sampled_from('+-'))}{hours:02d}:{minutes:02d}"


def _zone(offset: str) -> timezone:
    sign = -1 if offset[0] == "-" else 1
    return timezone(sign * timedelta(hours=int(offset[1:3]), minutes=int(offset[4:6])))


@st.composite
def times(draw: st.DrawFn) -> datetime:
    """A timezone-aware time, millisecond or microsecond precision."""
    naive = draw(st.datetimes(min_value=datetime(2000, 1, 1), max_value=datetime(2099, 12, 31)))
    return naive.replace(tzinfo=_zone(draw(offsets())))


def xml_elements(max_depth: int = 2) -> st.SearchStrategy[XmlElement]:
    """Namespaced extension trees: leaves carry text, parents carry children."""
    leaves = _model(
        XmlElement,
        namespace=st.sampled_from(EXTENSION_NAMESPACES),
        name=_NAME,
        attributes=st.dictionaries(_NAME, _TOKEN, max_size=2),
        text=st.none() | _TEXT,
    )

    def parents(children: st.SearchStrategy[XmlElement]) -> st.SearchStrategy[XmlElement]:
        return _model(
            XmlElement,
            namespace=st.sampled_from(EXTENSION_NAMESPACES),
            name=_NAME,
            children=st.lists(children, min_size=1, max_size=3).map(tuple),
        )

    return st.recursive(leaves, parents, max_leaves=4 if max_depth > 1 else 1)


_SGTIN = st.integers(min_value=1, max_value=10**9).map(
    lambda serial: f"urn:epc:id:sgtin:0614141.107346.{serial}"
)
_SSCC = st.integers(min_value=0, max_value=10**9).map(
    lambda ref: f"urn:epc:id:sscc:0614141.{ref:010d}"
)
_EPCS = st.lists(_SGTIN | _SSCC, max_size=4, unique=True).map(tuple)
_SGLN = st.integers(min_value=0, max_value=99999).map(
    lambda ref: f"urn:epc:id:sgln:0614141.{ref:05d}.0"
)
_CLASS = st.integers(min_value=1, max_value=999).map(
    lambda lot: f"urn:epc:class:lgtin:4012345.012345.L{lot}"
)
_DECIMAL = st.decimals(min_value=0, max_value=10**6, places=2, allow_nan=False)
_CBV_OR_URI = st.sampled_from(sorted(BIZ_STEPS)) | st.just("https://example.org/bizstep/x")

_quantities = st.lists(
    _model(
        QuantityElement,
        epc_class=_CLASS,
        quantity=st.none() | _DECIMAL,
        uom=st.none() | st.sampled_from(("KGM", "EA", "LTR")),
    ),
    max_size=2,
).map(tuple)
_sources = st.lists(
    _model(
        SourceDestination,
        value=_SGLN,
        type=st.sampled_from(("owning_party", "possessing_party", "location")),
    ),
    max_size=2,
).map(tuple)


def _sensor_elements() -> st.SearchStrategy[tuple[SensorElement, ...]]:
    report = _model(
        SensorReport,
        type=st.just("gs1:Temperature"),
        value=st.none() | _DECIMAL,
        uom=st.just("CEL"),
        boolean_value=st.none() | st.booleans(),
        time=st.none() | times(),
        other_attributes=st.dictionaries(
            st.just("{http://ns.example.com/epcis/}note"), _TOKEN, max_size=1
        ),
    )
    element = _model(
        SensorElement,
        sensor_metadata=st.none()
        | _model(SensorMetadata, time=times(), device_id=st.none() | _SGLN),
        sensor_report=st.lists(report, min_size=1, max_size=2).map(tuple),
        extensions=st.lists(xml_elements(1), max_size=1).map(tuple),
    )
    return st.lists(element, max_size=1).map(tuple)


@st.composite
def _common(draw: st.DrawFn) -> dict[str, object]:
    offset = draw(offsets())
    return {
        "event_time": draw(times()),
        "event_time_zone_offset": offset,
        "record_time": draw(st.none() | times()),
        "event_id": draw(st.none() | st.uuids().map(lambda u: f"urn:uuid:{u}")),
        "error_declaration": draw(
            st.none()
            | _model(
                ErrorDeclaration,
                declaration_time=times(),
                reason=st.sampled_from(("did_not_occur", "incorrect_data")),
                corrective_event_ids=st.lists(
                    st.uuids().map(lambda u: f"urn:uuid:{u}"), max_size=2
                ).map(tuple),
            )
        ),
        "certification_info": draw(
            st.lists(st.just("https://cert.example.org/c1"), max_size=1).map(tuple)
        ),
        "biz_step": draw(st.none() | _CBV_OR_URI),
        "disposition": draw(st.none() | st.sampled_from(sorted(DISPOSITIONS))),
        "persistent_disposition": draw(
            st.none()
            | _model(
                PersistentDisposition,
                set=st.lists(st.sampled_from(sorted(DISPOSITIONS)), max_size=2).map(tuple),
                unset=st.lists(st.sampled_from(sorted(DISPOSITIONS)), max_size=1).map(tuple),
            )
        ),
        "read_point": draw(st.none() | _SGLN),
        "biz_location": draw(st.none() | _SGLN),
        "biz_transaction_list": draw(
            st.lists(
                _model(
                    BizTransaction,
                    value=_TOKEN.map(lambda t: f"urn:epcglobal:cbv:bt:0614141000005:{t}"),
                    type=st.none() | st.sampled_from(("po", "desadv", "inv")),
                ),
                max_size=2,
            ).map(tuple)
        ),
        "source_list": draw(_sources),
        "destination_list": draw(_sources),
        "sensor_element_list": draw(_sensor_elements()),
        "extensions": draw(st.lists(xml_elements(), max_size=2).map(tuple)),
    }


@st.composite
def events(draw: st.DrawFn) -> Event:
    """Any event type with a random subset of its fields."""
    common = draw(_common())
    kind = draw(
        st.sampled_from(("object", "aggregation", "transaction", "transformation", "association"))
    )
    action = draw(st.sampled_from(list(Action)))
    ilmd = draw(st.none() | st.lists(xml_elements(), max_size=2).map(tuple))
    if kind == "object":
        return ObjectEvent(
            **common,
            epc_list=draw(_EPCS),
            action=action,
            quantity_list=draw(_quantities),
            ilmd=ilmd,
        )
    if kind == "transaction":
        if not common["biz_transaction_list"]:
            common["biz_transaction_list"] = (BizTransaction(value="urn:epcglobal:cbv:bt:1:2"),)
        return TransactionEvent(
            **common,
            parent_id=draw(st.none() | _SSCC),
            epc_list=draw(_EPCS),
            action=action,
            quantity_list=draw(_quantities),
        )
    if kind == "transformation":
        return TransformationEvent(
            **common,
            input_epc_list=draw(_EPCS),
            input_quantity_list=draw(_quantities),
            output_epc_list=draw(_EPCS),
            output_quantity_list=draw(_quantities),
            transformation_id=draw(st.none() | st.just("urn:epc:id:gdti:0614141.12345.400")),
            ilmd=ilmd,
        )
    model = AggregationEvent if kind == "aggregation" else AssociationEvent
    return model(
        **common,
        parent_id=draw(_SSCC),
        child_epcs=draw(_EPCS),
        action=action,
        child_quantity_list=draw(_quantities),
    )


@st.composite
def documents_heads(draw: st.DrawFn, document_format: DocumentFormat) -> DocumentHead:
    """A head without header (header content is covered by real files)."""
    return DocumentHead(
        format=document_format,
        schema_version="1.2" if document_format is DocumentFormat.XML_1_2 else "2.0",
        creation_date=draw(times()),
        namespaces={"cbvmda": "urn:epcglobal:cbv:mda"},
    )
