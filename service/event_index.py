"""Derive an event's store index (the keys every query filters on) from the model, once."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from datetime import date, datetime
from functools import lru_cache
from typing import Any

from epcis.model import (
    AggregationEvent,
    AssociationEvent,
    EventBase,
    ObjectEvent,
    QuantityElement,
    SourceDestination,
    TransactionEvent,
    TransformationEvent,
)
from epcis.query import identifier_key, ilmd_lot_and_expiry
from epcis.vocabulary import CBVKind, canonical
from service.store import EventIndex

__all__ = ["index_event", "index_from_json", "index_to_json"]

# Capture derives keys for every identifier of every event. Locations, parties, classes and
# CBV values repeat across a document, and an item's EPC comes back in the packing event
# right after its commissioning, so bounded memo tables turn most conversions into lookups.
_key = lru_cache(maxsize=1 << 14)(identifier_key)
_cbv = lru_cache(maxsize=1024)(canonical)

_SDT = CBVKind.SOURCE_DESTINATION_TYPE
_BTT = CBVKind.BIZ_TRANSACTION_TYPE

_Pairs = tuple[tuple[str, str], ...]


def _typed(kind: CBVKind, entries: Iterable[tuple[str | None, str]]) -> _Pairs:
    return tuple(dict.fromkeys((_cbv(kind, t or ""), _key(value)) for t, value in entries))


def _roled(*groups: tuple[str, Iterable[str]]) -> _Pairs:
    return tuple(dict.fromkeys((role, _key(value)) for role, values in groups for value in values))


def _classes(*groups: tuple[str, tuple[QuantityElement, ...]]) -> _Pairs:
    return tuple(
        dict.fromkeys(
            (role, _key(element.epc_class)) for role, elements in groups for element in elements
        )
    )


def _parent(event: AggregationEvent | AssociationEvent | TransactionEvent) -> tuple[str, ...]:
    return (event.parent_id,) if event.parent_id else ()


def _identifiers(event: EventBase) -> tuple[_Pairs, _Pairs]:
    """(role, key) of instance identifiers and of quantity classes, in the order of
    :func:`epcis.query.event_epc_keys` and :func:`epcis.query.event_class_keys`."""
    if isinstance(event, ObjectEvent):
        return _roled(("epc", event.epc_list)), _classes(("epc", event.quantity_list))
    if isinstance(event, AggregationEvent | AssociationEvent):
        epcs = _roled(("child", event.child_epcs), ("parent", _parent(event)))
        return epcs, _classes(("child", event.child_quantity_list))
    if isinstance(event, TransactionEvent):
        epcs = _roled(("epc", event.epc_list), ("parent", _parent(event)))
        return epcs, _classes(("epc", event.quantity_list))
    if isinstance(event, TransformationEvent):
        epcs = _roled(("input", event.input_epc_list), ("output", event.output_epc_list))
        classes = _classes(
            ("input", event.input_quantity_list), ("output", event.output_quantity_list)
        )
        return epcs, classes
    return (), ()


def _action(event: EventBase) -> str | None:
    if isinstance(event, ObjectEvent | AggregationEvent | TransactionEvent | AssociationEvent):
        return str(event.action)
    return None


def _sources(entries: tuple[SourceDestination, ...]) -> _Pairs:
    return _typed(_SDT, ((s.type, s.value) for s in entries)) if entries else ()


def index_event(event: EventBase) -> EventIndex:
    """The :class:`EventIndex` of a model event; keys are those :mod:`epcis.query` matches."""
    sources = _sources(event.source_list)
    destinations = _sources(event.destination_list)
    epcs, classes = _identifiers(event)
    lot, expiry = ilmd_lot_and_expiry(event)
    action = _action(event)
    error = event.error_declaration
    biz_step, disposition = event.biz_step, event.disposition
    transactions = event.biz_transaction_list
    return EventIndex(
        action=action,
        biz_step=biz_step and _cbv(CBVKind.BIZ_STEP, biz_step),
        disposition=disposition and _cbv(CBVKind.DISPOSITION, disposition),
        read_point=event.read_point and _key(event.read_point),
        biz_location=event.biz_location and _key(event.biz_location),
        epcs=epcs,
        classes=classes,
        biz_transactions=_typed(_BTT, ((bt.type, bt.value) for bt in transactions))
        if transactions
        else (),
        sources=sources,
        destinations=destinations,
        parties=tuple(dict.fromkeys(value for _, value in sources + destinations)),
        lot=lot,
        expiry=expiry,
        error_declared=error is not None,
        error_declaration_time=error.declaration_time if error is not None else None,
        transformation_id=event.transformation_id
        if isinstance(event, TransformationEvent)
        else None,
    )


def index_to_json(index: EventIndex) -> dict[str, Any]:
    """A JSON-ready dict of an index (the adapters store it beside the event)."""
    state = {name: getattr(index, name) for name in EventIndex.__dataclass_fields__}
    state["expiry"] = index.expiry.isoformat() if index.expiry else None
    moment = index.error_declaration_time
    state["error_declaration_time"] = moment.isoformat() if moment else None
    return state


def index_from_json(state: Mapping[str, Any]) -> EventIndex:
    pairs = ("epcs", "classes", "biz_transactions", "sources", "destinations")
    values = dict(state)
    for name in pairs:
        values[name] = tuple((str(a), str(b)) for a, b in state[name])
    values["parties"] = tuple(state["parties"])
    values["expiry"] = date.fromisoformat(state["expiry"]) if state["expiry"] else None
    moment = state["error_declaration_time"]
    values["error_declaration_time"] = datetime.fromisoformat(moment) if moment else None
    return EventIndex(**values)
