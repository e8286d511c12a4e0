"""Which events apply to an identifier: containment intervals from aggregation, and inference.

An event on a container applies to everything inside it at that event's time, through any
number of levels (item in case on pallet). Everything here is pure and ordered by the event
key ``(event_time, hash_id)``, so the answer does not depend on the order events arrived in.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, fields
from datetime import date, datetime
from functools import lru_cache
from operator import attrgetter
from typing import Any

from epcis.model import AggregationEvent, EventBase, TransformationEvent, XmlElement
from service.exception_records import ExceptionType, Finding

__all__ = [
    "EventFacts",
    "EventKey",
    "Interval",
    "TimelineEntry",
    "facts_tuple",
    "intervals_for_child",
    "timeline",
]

EventKey = tuple[datetime, str]

_MDA = "urn:epcglobal:cbv:mda"
# What json.dumps(..., separators=(",", ":")) builds on every call, built once: making the
# encoder was a third of encoding the facts.
_COMPACT = json.JSONEncoder(separators=(",", ":"))
_USHC = "http://epcis.gs1us.org/hc/ns"


@dataclass(frozen=True, slots=True)
class EventFacts:
    """The part of a stored event that state, checks and trace need, keyed by its hash."""

    hash_id: str
    event_id: str
    event_type: str
    event_time: datetime
    action: str | None
    biz_step: str | None
    disposition: str | None
    read_point: str | None
    biz_location: str | None
    epcs: tuple[str, ...]
    parent_id: str | None
    child_epcs: tuple[str, ...]
    sources: tuple[tuple[str, str], ...]
    destinations: tuple[tuple[str, str], ...]
    biz_transactions: tuple[tuple[str, str], ...]
    lot: str | None
    expiry: date | None
    document_id: str | None = None

    @property
    def key(self) -> EventKey:
        return (self.event_time, self.hash_id)

    def names(self) -> tuple[str, ...]:
        """Every identifier the event names directly."""
        parent = (self.parent_id,) if self.parent_id else ()
        return parent + self.epcs + self.child_epcs

    def source(self, kind: str) -> str | None:
        return next((value for type_, value in self.sources if type_ == kind), None)

    def destination(self, kind: str) -> str | None:
        return next((value for type_, value in self.destinations if type_ == kind), None)

    def is_aggregation(self) -> bool:
        return self.event_type == "AggregationEvent"

    @classmethod
    def from_event(
        cls, event: EventBase, hash_id: str, document_id: str | None = None
    ) -> EventFacts:
        return cls(*facts_tuple(event, hash_id, document_id))

    def to_json(self) -> str:
        return _COMPACT.encode(
            {
                "hash_id": self.hash_id,
                "event_id": self.event_id,
                "event_type": self.event_type,
                "event_time": self.event_time.isoformat(),
                "action": self.action,
                "biz_step": self.biz_step,
                "disposition": self.disposition,
                "read_point": self.read_point,
                "biz_location": self.biz_location,
                "epcs": self.epcs,
                "parent_id": self.parent_id,
                "child_epcs": self.child_epcs,
                "sources": self.sources,
                "destinations": self.destinations,
                "biz_transactions": self.biz_transactions,
                "lot": self.lot,
                "expiry": self.expiry.isoformat() if self.expiry else None,
                "document_id": self.document_id,
            }
        )

    def as_tuple(self) -> tuple[Any, ...]:
        """The fields in order, as a plain tuple: the form capture hooks spool and send to the
        projection worker (``facts_tuple`` builds it straight from an event). Pickling the
        dataclass itself goes through ``dataclasses``' per-object state (a dict built by
        ``fields()``): ~20 us a fact against ~5 for the tuple."""
        return _FIELD_VALUES(self)

    @classmethod
    def from_tuple(cls, values: tuple[Any, ...]) -> EventFacts:
        """The facts :meth:`as_tuple` gave."""
        return cls(*values)

    @classmethod
    def from_json(cls, text: str) -> EventFacts:
        # Field by field rather than cls(**data) after converting in place: decoding stored
        # facts is most of what reading a trace costs.
        data = json.loads(text)
        expiry = data["expiry"]
        return cls(
            data["hash_id"],
            data["event_id"],
            data["event_type"],
            datetime.fromisoformat(data["event_time"]),
            data["action"],
            data["biz_step"],
            data["disposition"],
            data["read_point"],
            data["biz_location"],
            tuple(data["epcs"]),
            data["parent_id"],
            tuple(data["child_epcs"]),
            tuple((a, b) for a, b in data["sources"]),
            tuple((a, b) for a, b in data["destinations"]),
            tuple((a, b) for a, b in data["biz_transactions"]),
            data["lot"],
            date.fromisoformat(expiry) if expiry else None,
            data.get("document_id"),
        )


def facts_tuple(event: EventBase, hash_id: str, document_id: str | None = None) -> tuple[Any, ...]:
    """``EventFacts.from_event(...).as_tuple()`` without building the dataclass: what a
    capture hook hands the projection worker for each event, on the capture's reader thread."""
    # Fields read by the event's class instead of getattr with a default (a miss goes
    # through pydantic's __getattr__ and an exception) and empty lists not walked: this
    # runs once per captured event, ahead of the projection.
    kind = type(event)
    has = _fields_of(kind)
    parent = event.parent_id if "parent_id" in has else None  # type: ignore[attr-defined]
    if isinstance(event, AggregationEvent):
        epcs: tuple[str, ...] = ()
        children = event.child_epcs
    elif isinstance(event, TransformationEvent):
        epcs, children = event.input_epc_list + event.output_epc_list, ()
    else:
        epcs = tuple(event.epc_list) if "epc_list" in has else ()  # type: ignore[attr-defined]
        children = ()
    ilmd = event.ilmd if "ilmd" in has else None  # type: ignore[attr-defined]
    lot, expiry = _lot_and_expiry(ilmd) if ilmd else (None, None)
    action = event.action if "action" in has else None  # type: ignore[attr-defined]
    sources = event.source_list
    destinations = event.destination_list
    transactions = event.biz_transaction_list
    return (
        hash_id,
        event.event_id or hash_id,
        kind.__name__,
        event.event_time,
        str(action) if action is not None else None,
        event.biz_step,
        event.disposition,
        event.read_point,
        event.biz_location,
        epcs,
        parent,
        children,
        tuple([(s.type, s.value) for s in sources]) if sources else (),
        tuple([(d.type, d.value) for d in destinations]) if destinations else (),
        tuple([(b.type or "", b.value) for b in transactions]) if transactions else (),
        lot,
        expiry,
        document_id,
    )


_FIELD_VALUES = attrgetter(*(field.name for field in fields(EventFacts)))


@lru_cache(maxsize=64)
def _fields_of(kind: type[EventBase]) -> frozenset[str]:
    """The field names of an event class (models forbid extra fields: nothing else is set)."""
    return frozenset(kind.model_fields)


def _lot_and_expiry(ilmd: Sequence[XmlElement]) -> tuple[str | None, date | None]:
    lot: str | None = None
    expiry: date | None = None
    # Depth first, in document order, with a stack: nested generators cost more than the rest
    # of building the facts. The last value in document order wins.
    stack = list(reversed(ilmd))
    while stack:
        element = stack.pop()
        if element.children:
            stack.extend(reversed(element.children))
        if element.namespace not in (_MDA, _USHC) or not element.text:
            continue
        if element.name == "lotNumber":
            lot = element.text.strip()
        elif element.name == "itemExpirationDate":
            try:
                expiry = date.fromisoformat(element.text.strip())
            except ValueError:
                expiry = None
    return lot, expiry


@dataclass(frozen=True, slots=True)
class Interval:
    """``child`` was inside ``parent`` for events with key in ``(start, end]`` (end open: now)."""

    parent: str
    child: str
    start: EventKey
    end: EventKey | None

    def covers(self, key: EventKey) -> bool:
        return self.start < key and (self.end is None or key <= self.end)

    def for_child(self, child: str) -> Interval:
        """This interval with another child (a sibling packed and unpacked with it)."""
        # Filled slot by slot instead of through the frozen dataclass's __init__ (a third of
        # the cost): every item of a packed case takes a copy of its first sibling's.
        copy: Interval = _NEW(Interval)
        _SET_PARENT(copy, self.parent)
        _SET_CHILD(copy, child)
        _SET_START(copy, self.start)
        _SET_END(copy, self.end)
        return copy


_NEW = object.__new__
_SET_PARENT, _SET_CHILD, _SET_START, _SET_END = (
    getattr(Interval, name).__set__ for name in Interval.__slots__
)


def _relevant_to(child: str, facts: EventFacts) -> bool:
    if not facts.is_aggregation() or not facts.parent_id:
        return False
    # An unpacking that names no children empties the whole container.
    return child in facts.child_epcs or (facts.action == "DELETE" and not facts.child_epcs)


def intervals_for_child(
    child: str, facts: Iterable[EventFacts]
) -> tuple[list[Interval], list[Finding]]:
    """Containment of ``child`` from the aggregation events that name it or empty its parents.

    ``facts`` must hold every event naming ``child`` and every event naming a container it was
    ever put in; anything else is ignored.
    """
    relevant = sorted({f.hash_id: f for f in facts if _relevant_to(child, f)}.values(), key=_key)
    intervals: list[Interval] = []
    findings: list[Finding] = []
    current: tuple[str, EventKey] | None = None
    for event in relevant:
        parent = event.parent_id
        assert parent is not None
        named = child in event.child_epcs
        if event.action in ("ADD", "OBSERVE") and named:
            if current is not None and current[0] == parent:
                continue
            if current is not None:
                if event.action == "ADD":
                    findings.append(_already_packed(child, current[0], event))
                intervals.append(Interval(current[0], child, current[1], event.key))
            current = (parent, event.key)
        elif event.action == "DELETE" and (current is None or current[0] != parent):
            if named:
                findings.append(_not_in_container(child, parent, event))
        elif event.action == "DELETE" and current is not None:
            intervals.append(Interval(parent, child, current[1], event.key))
            current = None
    if current is not None:
        intervals.append(Interval(current[0], child, current[1], None))
    return intervals, findings


def _key(facts: EventFacts) -> EventKey:
    return facts.key


def _already_packed(child: str, other: str, event: EventFacts) -> Finding:
    return Finding(
        ExceptionType.ALREADY_IN_CONTAINER,
        f"{child} packed into {event.parent_id} while still in {other}",
        (child,),
        (event.hash_id,),
    )


def _not_in_container(child: str, parent: str, event: EventFacts) -> Finding:
    return Finding(
        ExceptionType.NOT_IN_CONTAINER,
        f"{child} unpacked from {parent} but it was not in it",
        (child,),
        (event.hash_id,),
    )


@dataclass(frozen=True, slots=True)
class TimelineEntry:
    """An event that applies to an identifier; ``via`` is the container path, empty if direct."""

    facts: EventFacts
    via: tuple[str, ...] = ()

    @property
    def inferred(self) -> bool:
        return bool(self.via)


_MAX_DEPTH = 16


def timeline(
    epc: str,
    facts_of: Callable[[str], Sequence[EventFacts]],
    intervals_of: Callable[[str], Sequence[Interval]],
) -> list[TimelineEntry]:
    """Every event that applies to ``epc``, direct or through its containers, in key order."""
    entries: dict[str, TimelineEntry] = {f.hash_id: TimelineEntry(f) for f in facts_of(epc)}
    _add_inferred(epc, (), None, None, facts_of, intervals_of, entries)
    return sorted(entries.values(), key=lambda entry: entry.facts.key)


def _add_inferred(
    epc: str,
    via: tuple[str, ...],
    low: EventKey | None,
    high: EventKey | None,
    facts_of: Callable[[str], Sequence[EventFacts]],
    intervals_of: Callable[[str], Sequence[Interval]],
    entries: dict[str, TimelineEntry],
) -> None:
    for interval in intervals_of(epc):
        start = interval.start if low is None else max(interval.start, low)
        end = _min_end(interval.end, high)
        if end is not None and end <= start:
            continue
        path = (*via, interval.parent)
        if interval.parent in via or len(path) > _MAX_DEPTH:
            continue  # a containment cycle in bad data must not loop forever
        for facts in facts_of(interval.parent):
            if facts.key > start and (end is None or facts.key <= end):
                entries.setdefault(facts.hash_id, TimelineEntry(facts, path))
        _add_inferred(interval.parent, path, start, end, facts_of, intervals_of, entries)


def _min_end(a: EventKey | None, b: EventKey | None) -> EventKey | None:
    if a is None:
        return b
    if b is None:
        return a
    return min(a, b)
