"""The serial state projection: where each SGTIN and SSCC is, who owns it, and in what status.

The state of an identifier is a fold over every event that applies to it (direct, or inferred
through the containers it was in) in ``(event_time, hash_id)`` order. When events arrive, the
state of every identifier they name, and of everything ever inside those, is recomputed from
scratch, so late and out-of-order arrival gives the same state as event-time-ordered capture.
"""

from __future__ import annotations

import re
from collections.abc import Collection, Iterable, Sequence
from dataclasses import dataclass
from datetime import date, datetime
from enum import StrEnum
from functools import lru_cache
from typing import Protocol

from service.collector import collector_paused
from service.containment import (
    EventFacts,
    Interval,
    TimelineEntry,
    intervals_for_child,
    timeline,
)
from service.exception_records import ExceptionType, Finding, Hold

__all__ = [
    "TERMINAL",
    "ProjectionStore",
    "ProjectionUpdate",
    "SerialState",
    "SerialStateProjection",
    "Status",
    "compute_state",
    "effective_status",
    "gtin_of",
    "load_timeline",
    "same_commissioning",
]


class Status(StrEnum):
    UNKNOWN = "unknown"
    COMMISSIONED = "commissioned"
    PACKED = "packed"
    IN_TRANSIT = "in_transit"
    RECEIVED = "received"
    DISPENSED = "dispensed"
    DECOMMISSIONED = "decommissioned"
    DESTROYED = "destroyed"
    RECALLED = "recalled"
    QUARANTINED = "quarantined"
    SUSPECT = "suspect"
    ILLEGITIMATE = "illegitimate"


TERMINAL = frozenset({Status.DISPENSED, Status.DECOMMISSIONED, Status.DESTROYED})


@dataclass(frozen=True, slots=True)
class SerialState:
    """What the events say about one identifier (recalls and exception holds come on top)."""

    epc: str
    kind: str
    gtin: str | None = None
    lot: str | None = None
    expiry: date | None = None
    commissioned_at: datetime | None = None
    commissioner: str | None = None
    commissioning_event: str | None = None
    parent: str | None = None
    top_container: str | None = None
    owner: str | None = None
    custodian: str | None = None
    location: str | None = None
    destination: str | None = None
    lifecycle: Status = Status.UNKNOWN
    recalled_in_data: bool = False
    status: Status = Status.UNKNOWN
    last_event: str | None = None
    last_event_time: datetime | None = None
    last_shipment: str | None = None


def effective_status(state: SerialState, recalled: bool, holds: Collection[Hold]) -> Status:
    """The status shown to users: an illegitimate determination first (it is final), then
    suspect (a dispensed serial seen again may be a counterfeit), then an end of life, then
    recall and quarantine."""
    if Hold.ILLEGITIMATE in holds:
        return Status.ILLEGITIMATE
    if Hold.SUSPECT in holds:
        return Status.SUSPECT
    if state.status in TERMINAL:
        return state.status
    if recalled:
        return Status.RECALLED
    if Hold.QUARANTINED in holds:
        return Status.QUARANTINED
    return state.status


_SGTIN = re.compile(r"^urn:epc:id:sgtin:(\d+)\.(\d+)\.(.+)$")
_SSCC = re.compile(r"^urn:epc:id:sscc:(\d+)\.(\d+)$")
_DL_GTIN = re.compile(r"/01/(\d{14})(?:/|$)")


def gtin_of(epc: str) -> str | None:
    """The GTIN-14 of an SGTIN URN or GS1 Digital Link, else None."""
    gtin = _sgtin_gtin(epc)
    if gtin is not None:
        return gtin
    dl = _DL_GTIN.search(epc)
    return dl.group(1) if dl else None


# The GTIN of each SGTIN URN stem ("urn:epc:id:sgtin:PREFIX.REFERENCE") met so far: every
# serial of a product shares its stem, and matching each serial's URN against _SGTIN was a
# visible share of the projection's time (its state, the document checks, the lot index).
_GTIN_BY_STEM: dict[str, str] = {}
_STEMS_KEPT = 65_536


def _sgtin_gtin(epc: str) -> str | None:
    """The GTIN of an SGTIN URN, None when ``epc`` is not one (``_SGTIN`` decides)."""
    stem, _, serial = epc.rpartition(".")
    gtin = _GTIN_BY_STEM.get(stem)
    # A known stem and a serial without dots (else the stem would hold part of it) is what
    # _SGTIN matches; a newline is left to the expression, whose "$" treats it specially.
    if gtin is not None and serial and "\n" not in serial:
        return gtin
    match = _SGTIN.match(epc)
    if match is None:
        return None
    prefix, reference = match.group(1), match.group(2)
    gtin = _gtin(prefix, reference)
    if len(_GTIN_BY_STEM) < _STEMS_KEPT:
        _GTIN_BY_STEM[f"urn:epc:id:sgtin:{prefix}.{reference}"] = gtin
    return gtin


@lru_cache(maxsize=4096)
def _gtin(prefix: str, reference: str) -> str:
    # Memoised: every serial of a product shares its prefix and item reference, and the check
    # digit was a visible share of the projection's time.
    body = reference[:1] + prefix + reference[1:]
    return body + _check_digit(body)


def _check_digit(digits: str) -> str:
    total = sum(int(d) * (3 if i % 2 == 0 else 1) for i, d in enumerate(reversed(digits)))
    return str((10 - total % 10) % 10)


def _kind_and_gtin(epc: str) -> tuple[str, str | None]:
    """``(_kind_of(epc), gtin_of(epc))`` with one look-up for the common SGTIN URN."""
    gtin = _sgtin_gtin(epc)
    if gtin is not None:
        return "sgtin", gtin
    return _kind_of(epc), gtin_of(epc)


def _kind_of(epc: str) -> str:
    if _SGTIN.match(epc) or "/21/" in epc:
        return "sgtin"
    if _SSCC.match(epc) or "/00/" in epc:
        return "sscc"
    return "other"


_END_STEPS = {
    "dispensing": Status.DISPENSED,
    "decommissioning": Status.DECOMMISSIONED,
    "destroying": Status.DESTROYED,
}
_END_DISPOSITIONS = {
    "dispensed": Status.DISPENSED,
    "inactive": Status.DECOMMISSIONED,
    "destroyed": Status.DESTROYED,
}


def same_commissioning(first: EventFacts, other: EventFacts) -> bool:
    """Whether ``other`` commissions what ``first`` did, as a copy of the same event: an
    outbound shipment document carries a reduced copy of each commissioning event (only the
    shipped serials), which has another hash but the same time, place, lot and expiry."""
    return (
        first.event_time == other.event_time
        and first.biz_location == other.biz_location
        and first.read_point == other.read_point
        and first.lot == other.lot
        and first.expiry == other.expiry
    )


def _is_commissioning(facts: EventFacts, epc: str) -> bool:
    return (
        facts.event_type == "ObjectEvent"
        and facts.action == "ADD"
        and facts.biz_step == "commissioning"
        and epc in facts.epcs
    )


class _Fold:
    """Mutable accumulator for one identifier; only :func:`compute_state` uses it.

    The fields live on the accumulator and one :class:`SerialState` is built at the end:
    a ``dataclasses.replace`` per event was the largest cost of the projection.
    """

    __slots__ = (
        "commissioned_at",
        "commissioner",
        "commissioning",
        "commissioning_event",
        "custodian",
        "destination",
        "epc",
        "expiry",
        "findings",
        "first_uncommissioned",
        "last_event",
        "last_event_time",
        "last_shipment",
        "lifecycle",
        "location",
        "lot",
        "owner",
        "recalled_in_data",
    )

    def __init__(self, epc: str) -> None:
        self.epc = epc
        self.lot: str | None = None
        self.expiry: date | None = None
        self.commissioned_at: datetime | None = None
        self.commissioner: str | None = None
        self.commissioning_event: str | None = None
        self.commissioning: EventFacts | None = None
        self.owner: str | None = None
        self.custodian: str | None = None
        self.location: str | None = None
        self.destination: str | None = None
        self.lifecycle = Status.UNKNOWN
        self.recalled_in_data = False
        self.last_event: str | None = None
        self.last_event_time: datetime | None = None
        self.last_shipment: str | None = None
        self.findings: list[Finding] = []
        self.first_uncommissioned: str | None = None

    def step(self, entry: TimelineEntry) -> None:
        facts, epc = entry.facts, self.epc
        direct = not entry.via
        if direct and _is_commissioning(facts, epc):
            self._commission(facts)
            return
        if direct and self.commissioned_at is None and self.first_uncommissioned is None:
            self.first_uncommissioned = facts.hash_id
        if self.lifecycle in TERMINAL and direct and facts.action != "DELETE":
            self.findings.append(
                Finding(
                    ExceptionType.EVENT_AFTER_END_OF_LIFE,
                    f"{facts.biz_step or facts.event_type} on {epc}, "
                    f"which is {self.lifecycle.value}",
                    (epc,),
                    (facts.hash_id,),
                )
            )
        self._apply(facts)

    def _commission(self, facts: EventFacts) -> None:
        if self.commissioned_at is not None:
            if self.commissioning is not None and same_commissioning(self.commissioning, facts):
                return  # the same commissioning captured again (e.g. a reduced copy)
            differs = (facts.lot, facts.expiry) != (self.lot, self.expiry)
            kind = (
                ExceptionType.LOT_OR_EXPIRY_MISMATCH
                if differs
                else ExceptionType.DUPLICATE_COMMISSIONING
            )
            self.findings.append(
                Finding(
                    kind,
                    f"{self.epc} commissioned again (lot {facts.lot}, expiry {facts.expiry}; "
                    f"first: lot {self.lot}, expiry {self.expiry})",
                    (self.epc,),
                    (self.commissioning_event or "", facts.hash_id),
                )
            )
            return
        commissioner = facts.biz_location or facts.read_point
        self.lot = facts.lot
        self.expiry = facts.expiry
        self.commissioned_at = facts.event_time
        self.commissioner = commissioner
        self.commissioning_event = facts.hash_id
        self.commissioning = facts
        self.owner = self.owner or commissioner
        self.custodian = self.custodian or commissioner
        self.location = facts.biz_location or self.location
        if self.lifecycle is Status.UNKNOWN:
            self.lifecycle = Status.COMMISSIONED
        self.last_event = facts.hash_id
        self.last_event_time = facts.event_time

    def _apply(self, facts: EventFacts) -> None:
        step = facts.biz_step
        if step == "shipping":
            lifecycle = Status.IN_TRANSIT
            self.owner = facts.destination("owning_party") or self.owner
            self.custodian = (
                facts.source("possessing_party") or facts.source("owning_party") or self.custodian
            )
            self.location = facts.source("location") or facts.read_point or self.location
            self.destination = facts.destination("location") or facts.destination("owning_party")
            self.last_shipment = facts.hash_id
        elif step == "receiving":
            lifecycle = Status.RECEIVED
            self.owner = facts.destination("owning_party") or self.owner
            self.custodian = (
                facts.destination("possessing_party")
                or facts.destination("owning_party")
                or facts.biz_location
                or self.custodian
            )
            self.location = facts.biz_location or facts.destination("location") or self.location
            self.destination = None
        else:
            lifecycle = self.lifecycle
            if facts.biz_location:
                self.location = facts.biz_location
        end = _END_STEPS.get(step or "") or _END_DISPOSITIONS.get(facts.disposition or "")
        if end is None and facts.event_type == "ObjectEvent" and facts.action == "DELETE":
            end = Status.DECOMMISSIONED
        if self.lifecycle in TERMINAL:
            pass  # no way back from an end of life
        elif end is not None:
            self.lifecycle = end
        else:
            self.lifecycle = lifecycle
        if facts.disposition == "recalled":
            self.recalled_in_data = True
        self.last_event = facts.hash_id
        self.last_event_time = facts.event_time

    def finish(self, parent: str | None, top: str | None) -> SerialState:
        if self.commissioned_at is None and self.first_uncommissioned is not None:
            self.findings.append(
                Finding(
                    ExceptionType.NEVER_COMMISSIONED,
                    f"event on {self.epc}, which was never commissioned",
                    (self.epc,),
                    (self.first_uncommissioned,),
                )
            )
        lifecycle = self.lifecycle
        if lifecycle in TERMINAL:
            status = lifecycle
        elif self.recalled_in_data:
            status = Status.RECALLED
        elif lifecycle is Status.IN_TRANSIT:
            status = Status.IN_TRANSIT
        elif parent is not None:
            status = Status.PACKED
        else:
            status = lifecycle
        epc = self.epc
        kind, gtin = _kind_and_gtin(epc)
        return SerialState(
            epc=epc,
            kind=kind,
            gtin=gtin,
            lot=self.lot,
            expiry=self.expiry,
            commissioned_at=self.commissioned_at,
            commissioner=self.commissioner,
            commissioning_event=self.commissioning_event,
            parent=parent,
            top_container=top,
            owner=self.owner,
            custodian=self.custodian,
            location=self.location,
            destination=self.destination,
            lifecycle=lifecycle,
            recalled_in_data=self.recalled_in_data,
            status=status,
            last_event=self.last_event,
            last_event_time=self.last_event_time,
            last_shipment=self.last_shipment,
        )


def compute_state(
    epc: str, entries: Sequence[TimelineEntry], parent: str | None, top: str | None
) -> tuple[SerialState, list[Finding]]:
    """The state of ``epc`` from its time-ordered timeline and its current containers."""
    fold = _Fold(epc)
    for entry in entries:
        fold.step(entry)
    state = fold.finish(parent, top)
    return state, fold.findings


class ProjectionStore(Protocol):
    """What the projection needs from the traceability store."""

    async def add_facts(self, facts: Sequence[EventFacts]) -> list[EventFacts]: ...
    async def new_facts(self, facts: Sequence[EventFacts]) -> list[EventFacts]:
        """The facts ``add_facts`` would insert now (not stored, each hash once, in order)."""
        ...

    async def write_update(
        self,
        facts: Sequence[EventFacts],
        children: Collection[str],
        intervals: Sequence[Interval],
        states: Sequence[SerialState],
    ) -> None:
        """``add_facts``, ``replace_intervals`` and ``put_states`` at once (one transaction
        where the store has them)."""
        ...

    async def facts_for(self, epcs: Collection[str]) -> dict[str, list[EventFacts]]: ...
    async def all_fact_epcs(self) -> list[str]: ...
    async def intervals_for_children(
        self, children: Collection[str]
    ) -> dict[str, list[Interval]]: ...
    async def children_ever(self, parents: Collection[str]) -> set[str]: ...
    async def replace_intervals(
        self, children: Collection[str], intervals: Sequence[Interval]
    ) -> None: ...
    async def put_states(self, states: Sequence[SerialState]) -> None: ...
    async def clear_projection(self) -> None: ...


@dataclass(frozen=True, slots=True)
class ProjectionUpdate:
    """What one application of events changed, and what it found wrong on the way."""

    inserted: tuple[EventFacts, ...]
    states: tuple[SerialState, ...]
    findings: tuple[Finding, ...]


# Identifiers per round of store calls: bounds memory in a rebuild; a capture batch's
# serials usually fit in one round, so a batch costs a handful of store calls.
_CHUNK = 5000


class SerialStateProjection:
    """Keeps serial state, containment intervals and event facts in a :class:`ProjectionStore`."""

    def __init__(self, store: ProjectionStore) -> None:
        self._store = store

    async def apply(self, facts: Sequence[EventFacts]) -> ProjectionUpdate:
        # Awaits included: see collector_paused.
        with collector_paused():
            return await self._apply(facts)

    async def _apply(self, facts: Sequence[EventFacts]) -> ProjectionUpdate:
        # Computed from the stored facts plus this batch's, held in memory, and written at
        # the end in one store call: one sync to disk per batch.
        inserted = await self._store.new_facts(facts)
        named = {epc for f in inserted for epc in f.names()}
        affected = await self._with_descendants(named)
        ordered = sorted(affected)
        chunks = list(_chunks(ordered))
        # One loader for the whole update: facts read for the intervals serve the states too,
        # and the fresh intervals are used from memory.
        loader = _Loader(self._store, inserted)
        findings: list[Finding] = []
        written: list[str] = []
        intervals: list[Interval] = []
        for chunk in chunks:
            containment = await self._intervals_of(chunk, loader)
            written.extend(containment.changed)
            intervals.extend(containment.intervals())
            findings.extend(containment.findings)
        states: list[SerialState] = []
        for chunk in chunks:
            chunk_states, problems = await self._states_of(chunk, loader)
            states.extend(chunk_states)
            findings.extend(problems)
        await self._store.write_update(inserted, written, intervals, states)
        return ProjectionUpdate(tuple(inserted), tuple(states), tuple(findings))

    async def rebuild(self, facts: Iterable[EventFacts] | None = None) -> int:
        """Recompute everything (from ``facts`` if given, else from the stored facts)."""
        stored: list[EventFacts] = []
        if facts is None:
            epcs = await self._store.all_fact_epcs()
            for chunk in _chunks(epcs):
                for found in (await self._store.facts_for(chunk)).values():
                    stored.extend(found)
        else:
            stored = list(facts)
        await self._store.clear_projection()
        await self._store.add_facts(list({f.hash_id: f for f in stored}.values()))
        everything = sorted({epc for f in stored for epc in f.names()})
        count = 0
        # Intervals first, for all, so that states can read any ancestor's containment.
        for chunk in _chunks(everything):
            containment = await self._intervals_of(chunk, _Loader(self._store), everything=True)
            await self._store.replace_intervals(chunk, containment.intervals())
        for chunk in _chunks(everything):
            states, _ = await self._states_of(chunk, _Loader(self._store))
            await self._store.put_states(states)
            count += len(states)
        return count

    async def _with_descendants(self, epcs: set[str]) -> set[str]:
        affected = set(epcs)
        frontier = set(epcs)
        while frontier:
            children = await self._store.children_ever(frontier)
            frontier = children - affected
            affected |= frontier
        return affected

    async def _intervals_of(
        self, children: Sequence[str], loader: _Loader, *, everything: bool = False
    ) -> _Containment:
        """Containment of each child (handed to ``loader`` too), and what was wrong in it.

        Only children whose containment may differ from what is stored are in ``changed``
        (all of them with ``everything``): stored intervals are what ``intervals_for_child``
        gave for the child's relevant events when the last of them arrived (each arrival
        recomputes the child: an event listing it names it, and one emptying a container it
        was in reaches it through ``children_ever``), so a child none of whose relevant events
        is new keeps its stored intervals, and one that no aggregation lists has none. Their
        findings, about stored events only, are dropped by the caller anyway.
        """
        facts = await loader.facts(children)
        parents = {
            f.parent_id
            for child in children
            for f in facts.get(child, ())
            if f.is_aggregation() and f.parent_id and child in f.child_epcs
        }
        all_facts = {**facts, **await loader.facts(parents - set(facts))}
        result = _Containment()
        with collector_paused():
            self._containment_of(children, facts, all_facts, loader, everything, result)
        return result

    def _containment_of(
        self,
        children: Sequence[str],
        facts: dict[str, Sequence[EventFacts]],
        all_facts: dict[str, Sequence[EventFacts]],
        loader: _Loader,
        everything: bool,
        result: _Containment,
    ) -> None:
        fresh = loader.pending_hashes
        spans: dict[str, Sequence[Interval]] = {}
        empties: dict[str, list[EventFacts]] = {}
        # Children with the same relevant events (the items of one case) have the same
        # containment but for their own name: it is computed once per set of events.
        shared: dict[tuple[tuple[int, bool], ...], tuple[list[Interval], bool]] = {}
        for child in children:
            # One pass over the child's own events: whether an aggregation lists it, which of
            # them bear on its containment, and the containers they name.
            listed = False
            relevant: list[EventFacts] = []
            key_parts: list[tuple[int, bool]] = []
            containers: list[str] = []
            for f in facts.get(child, ()):
                parent = f.parent_id
                if f.event_type == "AggregationEvent":
                    named = child in f.child_epcs
                    listed = listed or named
                    if parent and (named or (f.action == "DELETE" and not f.child_epcs)):
                        relevant.append(f)
                        key_parts.append((id(f), named))
                if parent and parent != child and parent not in containers:
                    containers.append(parent)
            if not listed:
                # Only an aggregation listing the child starts or ends its containment, or is
                # wrong about it: without one there is nothing to find (the common case).
                spans[child] = ()
                if everything:
                    result.changed.append(child)
                continue
            for container in containers:
                for f in _emptyings(container, all_facts, empties):
                    relevant.append(f)
                    key_parts.append((id(f), False))
            key = tuple(key_parts)
            twin = shared.get(key)
            if twin is not None:
                found, changed = twin
                if changed:
                    spans[child] = copies = [i.for_child(child) for i in found]
                    result.changed.append(child)
                    result.by_child.append(copies)
                else:
                    # Not written: the loader reads only parents and times, which are the
                    # sibling's, so the sibling's list serves without copies.
                    spans[child] = found
                continue
            found, problems = intervals_for_child(child, relevant)
            changed = everything or any(f.hash_id in fresh for f in relevant)
            spans[child] = found
            if changed:
                result.changed.append(child)
                result.by_child.append(found)
            if problems:
                result.findings.extend(problems)  # findings name their child: not shared
            else:
                shared[key] = (found, changed)
        loader.known_intervals(spans)

    async def _states_of(
        self, epcs: Sequence[str], loader: _Loader
    ) -> tuple[list[SerialState], list[Finding]]:
        await loader.load(epcs)
        with collector_paused():
            return self._folds_of(epcs, loader)

    def _folds_of(
        self, epcs: Sequence[str], loader: _Loader
    ) -> tuple[list[SerialState], list[Finding]]:
        states: list[SerialState] = []
        findings: list[Finding] = []
        # Serials that travel together (the items of one case) have the same events and
        # containers: their fold is computed once and the others take its result.
        shared: dict[tuple[object, ...], SerialState] = {}
        for epc in epcs:
            key = loader.signature(epc)
            twin = shared.get(key) if key is not None else None
            if twin is not None:
                states.append(_with_identity(twin, epc))
                continue
            parent, top = loader.containers_now(epc)
            entries = timeline(epc, loader.facts_of, loader.intervals_of)
            state, problems = compute_state(epc, entries, parent, top)
            states.append(state)
            findings.extend(problems)
            # Findings name their serial: a fold that found anything is not shared.
            if key is not None and not problems:
                shared[key] = state
        return states, findings


def _with_identity(state: SerialState, epc: str) -> SerialState:
    """``state`` as the state of ``epc``: what the fold gives for a serial with the same events."""
    kind, gtin = _kind_and_gtin(epc)
    # Filled slot by slot instead of through the frozen dataclass's __init__, which sets each
    # of the twenty fields with object.__setattr__: that was most of the cost of a twin, and
    # the items of a case are nearly all twins. SerialState has no __post_init__ to skip.
    twin: SerialState = object.__new__(SerialState)
    _SET_EPC(twin, epc)
    _SET_KIND(twin, kind)
    _SET_GTIN(twin, gtin)
    for set_slot, get_slot in _COPIED_SLOTS:
        set_slot(twin, get_slot(state))
    return twin


_SET_EPC, _SET_KIND, _SET_GTIN = (
    getattr(SerialState, name).__set__ for name in SerialState.__slots__[:3]
)
_COPIED_SLOTS = tuple(
    (getattr(SerialState, name).__set__, getattr(SerialState, name).__get__)
    for name in SerialState.__slots__[3:]
)


class _Containment:
    """What ``_intervals_of`` found for a chunk of children: the children whose stored
    intervals are to be replaced, their intervals (a list per child, in order), findings."""

    __slots__ = ("by_child", "changed", "findings")

    def __init__(self) -> None:
        self.changed: list[str] = []
        self.by_child: list[list[Interval]] = []
        self.findings: list[Finding] = []

    def intervals(self) -> list[Interval]:
        return [i for found in self.by_child for i in found]


class _Loader:
    """Fetches, level by level, the facts and intervals of identifiers and all their ancestors;
    each identifier's facts and intervals are read once per loader."""

    def __init__(self, store: ProjectionStore, pending: Sequence[EventFacts] = ()) -> None:
        self._store = store
        self._facts: dict[str, Sequence[EventFacts]] = {}
        # Containment spans by child: only parents and times are read (a child that shares
        # its sibling's containment may hold the sibling's list).
        self._intervals: dict[str, Sequence[Interval]] = {}
        self._reached: dict[str, frozenset[str]] = {}
        # Facts of this update not yet written: read as if they were stored.
        self._pending: dict[str, list[EventFacts]] = {}
        with collector_paused():
            by_epc = self._pending
            for f in pending:
                for epc in f.names():
                    listed = by_epc.get(epc)
                    if listed is None:
                        by_epc[epc] = [f]
                    elif listed[-1] is not f:  # an event naming one identifier twice: once
                        listed.append(f)
        self.pending_hashes = frozenset(f.hash_id for f in pending)

    async def facts(self, epcs: Collection[str]) -> dict[str, Sequence[EventFacts]]:
        """The facts of ``epcs`` (only those with any), read from the store when not yet."""
        known = self._facts
        wanted = [epc for epc in epcs if epc not in known]
        if wanted:
            found = await self._store.facts_for(wanted)
            pending = self._pending
            for epc in wanted:
                # No new list where one would do: an update holds a few per serial, and the
                # cyclic collector walks every one that outlives a collection.
                stored = found.get(epc)
                fresh = pending.get(epc)
                if fresh is None:
                    known[epc] = stored if stored is not None else ()
                elif stored is None:
                    known[epc] = fresh
                else:
                    known[epc] = stored + fresh
        return {epc: listed for epc in epcs if (listed := known[epc])}

    def known_intervals(self, spans: dict[str, Sequence[Interval]]) -> None:
        """Containment just computed (and written where it changed): what reading the
        intervals back would give, but for ``child`` (see ``_intervals``)."""
        self._intervals.update(spans)

    async def load(self, epcs: Iterable[str]) -> None:
        self._reached.clear()  # containers may become known: reachability is asked again
        frontier = set(epcs)
        while frontier:
            unknown = [epc for epc in frontier if epc not in self._intervals]
            if unknown:
                found = await self._store.intervals_for_children(unknown)
                for epc in unknown:
                    self._intervals[epc] = found.get(epc, ())
            await self.facts(frontier)
            parents = {i.parent for epc in frontier for i in self._intervals[epc]}
            frontier = {p for p in parents if p not in self._facts or p not in self._intervals}

    def facts_of(self, epc: str) -> Sequence[EventFacts]:
        return self._facts.get(epc, ())

    def signature(self, epc: str) -> tuple[object, ...] | None:
        """What the fold of ``epc`` depends on besides ``epc`` itself: its events (and whether
        each lists it among its EPCs, which decides commissioning) and its intervals; None when
        ``epc`` is among its own ancestors (bad data: not shared).

        The current containers are left out: they follow from the intervals (the parent is
        the open one, the rest from the parent's own), so equal intervals give equal
        containers as long as ``epc`` is not among its ancestors, and the twin's are reused.
        """
        intervals = self._intervals.get(epc, ())
        spans = []
        for i in intervals:
            if epc in self._reach(i.parent):
                return None
            spans.append((i.parent, i.start, i.end))
        own = tuple([(f.hash_id, epc in f.epcs) for f in self._facts.get(epc, ())])
        return (own, tuple(spans))

    def _reach(self, parent: str) -> frozenset[str]:
        """``parent`` and every container it was ever in; kept, as siblings share them."""
        known = self._reached.get(parent)
        if known is not None:
            return known
        found: set[str] = set()
        frontier = [parent]
        while frontier:
            name = frontier.pop()
            if name not in found:
                found.add(name)
                frontier.extend(i.parent for i in self._intervals.get(name, ()))
        self._reached[parent] = reached = frozenset(found)
        return reached

    def intervals_of(self, epc: str) -> Sequence[Interval]:
        return self._intervals.get(epc, ())

    def containers_now(self, epc: str) -> tuple[str | None, str | None]:
        parent = _open_parent(self._intervals.get(epc, ()))
        top, seen = parent, {epc}
        while top is not None and top not in seen:
            seen.add(top)
            above = _open_parent(self._intervals.get(top, ()))
            if above is None:
                break
            top = above
        return parent, top


async def load_timeline(
    store: ProjectionStore, epc: str
) -> tuple[list[TimelineEntry], str | None, str | None]:
    """The timeline of ``epc`` and its current parent and top-level container."""
    loader = _Loader(store)
    await loader.load([epc])
    parent, top = loader.containers_now(epc)
    return timeline(epc, loader.facts_of, loader.intervals_of), parent, top


def _emptyings(
    parent: str, all_facts: dict[str, Sequence[EventFacts]], known: dict[str, list[EventFacts]]
) -> list[EventFacts]:
    """The unpackings of ``parent`` that name no children (they empty it).

    Of a container's events only these can bear on a child's containment without naming the
    child (those naming it are among the child's own), so only they are handed on to
    :func:`intervals_for_child`, which ignores the rest anyway.
    """
    found = known.get(parent)
    if found is None:
        found = known[parent] = [
            f
            for f in all_facts.get(parent, ())
            if f.is_aggregation() and f.parent_id and f.action == "DELETE" and not f.child_epcs
        ]
    return found


def _open_parent(intervals: Iterable[Interval]) -> str | None:
    for interval in intervals:
        if interval.end is None:
            return interval.parent
    return None


def _chunks(items: Sequence[str] | Collection[str]) -> Iterable[list[str]]:
    listed = list(items)
    for start in range(0, len(listed), _CHUNK):
        yield listed[start : start + _CHUNK]
