"""Derive an event's store index (the keys every query filters on) from the model, once."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from datetime import date, datetime
from functools import lru_cache
from itertools import chain, repeat
from typing import Any

from epcis.model import (
    Action,
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


def _roled(role: str, values: Iterable[str]) -> _Pairs:
    # map/zip instead of a generator: the EPC lists are most of an event's identifiers.
    return tuple(dict.fromkeys(zip(repeat(role), map(_key, values))))


def _two_roles(
    first: str, firsts: tuple[str, ...], second: str, seconds: tuple[str, ...]
) -> _Pairs:
    if not seconds:
        return _roled(first, firsts)
    keys = chain(zip(repeat(first), map(_key, firsts)), zip(repeat(second), map(_key, seconds)))
    return tuple(dict.fromkeys(keys))


def _classes(*groups: tuple[str, tuple[QuantityElement, ...]]) -> _Pairs:
    if not any(elements for _, elements in groups):
        return ()  # the usual case: no quantity lists
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
        return _roled("epc", event.epc_list), _classes(("epc", event.quantity_list))
    if isinstance(event, AggregationEvent | AssociationEvent):
        epcs = _two_roles("child", event.child_epcs, "parent", _parent(event))
        return epcs, _classes(("child", event.child_quantity_list))
    if isinstance(event, TransactionEvent):
        epcs = _two_roles("epc", event.epc_list, "parent", _parent(event))
        return epcs, _classes(("epc", event.quantity_list))
    if isinstance(event, TransformationEvent):
        epcs = _two_roles("input", event.input_epc_list, "output", event.output_epc_list)
        classes = _classes(
            ("input", event.input_quantity_list), ("output", event.output_quantity_list)
        )
        return epcs, classes
    return (), ()


# str() of an Action member is a Python-level call; its text by dictionary look-up is not.
_ACTION_TEXT = {action: str(action) for action in Action}


def _action(fields: dict[str, Any]) -> str | None:
    action = fields.get("action")
    if action is None:
        return None
    text = _ACTION_TEXT.get(action)
    return str(action) if text is None else text


def _sources(entries: tuple[SourceDestination, ...]) -> _Pairs:
    return _typed(_SDT, ((s.type, s.value) for s in entries)) if entries else ()


def _lot_and_expiry(event: EventBase, fields: dict[str, Any]) -> tuple[str | None, date | None]:
    # Only events with ILMD have any; getattr of a field an event type lacks goes through
    # pydantic's __getattr__ and an AttributeError, which cost more than the rest.
    return ilmd_lot_and_expiry(event) if fields.get("ilmd") else (None, None)


def index_event(event: EventBase) -> EventIndex:
    """The :class:`EventIndex` of a model event; keys are those :mod:`epcis.query` matches."""
    # A model's fields live in its __dict__; events types without a field simply lack the key.
    fields = event.__dict__
    sources = _sources(event.source_list)
    destinations = _sources(event.destination_list)
    epcs, classes = _identifiers(event)
    lot, expiry = _lot_and_expiry(event, fields)
    error = event.error_declaration
    biz_step, disposition = event.biz_step, event.disposition
    transactions = event.biz_transaction_list
    read_point, biz_location = event.read_point, event.biz_location
    return EventIndex(
        action=_action(fields),
        biz_step=biz_step and _cbv(CBVKind.BIZ_STEP, biz_step),
        disposition=disposition and _cbv(CBVKind.DISPOSITION, disposition),
        read_point=read_point and _key(read_point),
        biz_location=biz_location and _key(biz_location),
        epcs=epcs,
        classes=classes,
        biz_transactions=_typed(_BTT, ((bt.type, bt.value) for bt in transactions))
        if transactions
        else (),
        sources=sources,
        destinations=destinations,
        parties=tuple(dict.fromkeys(value for _, value in sources + destinations))
        if sources or destinations
        else (),
        lot=lot,
        expiry=expiry,
        error_declared=error is not None,
        error_declaration_time=error.declaration_time if error is not None else None,
        transformation_id=fields.get("transformation_id"),
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
