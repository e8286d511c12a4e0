"""Derive an event's store index (the keys every query filters on) from the model, once."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import date, datetime
from typing import Any

from epcis.model import EventBase
from epcis.query import event_class_keys, event_epc_keys, identifier_key, ilmd_lot_and_expiry
from epcis.vocabulary import CBVKind, canonical
from service.store import EventIndex

__all__ = ["index_event", "index_from_json", "index_to_json"]


def _typed(kind: CBVKind, entries: list[tuple[str | None, str]]) -> tuple[tuple[str, str], ...]:
    return tuple(
        dict.fromkeys((canonical(kind, t or ""), identifier_key(value)) for t, value in entries)
    )


def index_event(event: EventBase) -> EventIndex:
    """The :class:`EventIndex` of a model event; keys are those :mod:`epcis.query` matches."""
    sdt = CBVKind.SOURCE_DESTINATION_TYPE
    sources = _typed(sdt, [(s.type, s.value) for s in event.source_list])
    destinations = _typed(sdt, [(d.type, d.value) for d in event.destination_list])
    lot, expiry = ilmd_lot_and_expiry(event)
    action = getattr(event, "action", None)
    error = event.error_declaration
    return EventIndex(
        action=str(action) if action is not None else None,
        biz_step=event.biz_step and canonical(CBVKind.BIZ_STEP, event.biz_step),
        disposition=event.disposition and canonical(CBVKind.DISPOSITION, event.disposition),
        read_point=event.read_point and identifier_key(event.read_point),
        biz_location=event.biz_location and identifier_key(event.biz_location),
        epcs=tuple(dict.fromkeys(event_epc_keys(event))),
        classes=tuple(dict.fromkeys(event_class_keys(event))),
        biz_transactions=_typed(
            CBVKind.BIZ_TRANSACTION_TYPE,
            [(bt.type, bt.value) for bt in event.biz_transaction_list],
        ),
        sources=sources,
        destinations=destinations,
        parties=tuple(dict.fromkeys(value for _, value in sources + destinations)),
        lot=lot,
        expiry=expiry,
        error_declared=error is not None,
        error_declaration_time=error.declaration_time if error is not None else None,
        transformation_id=getattr(event, "transformation_id", None),
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
