"""The serial state projection: where each SGTIN and SSCC is, who owns it, and in what status.

The state of an identifier is a fold over every event that applies to it (direct, or inferred
through the containers it was in) in ``(event_time, hash_id)`` order. When events arrive, the
state of every identifier they name, and of everything ever inside those, is recomputed from
scratch, so late and out-of-order arrival gives the same state as event-time-ordered capture.
"""

from __future__ import annotations

import re
from collections.abc import Collection, Iterable, Sequence
from dataclasses import dataclass, replace
from datetime import date, datetime
from enum import StrEnum
from typing import Protocol

from service.containment import EventFacts, Interval, TimelineEntry, intervals_for_child, timeline
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
    """The status shown to users: suspect first (a dispensed serial seen again may be a
    counterfeit), then an end of life, then recall and quarantine."""
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
    match = _SGTIN.match(epc)
    if match:
        prefix, reference = match.group(1), match.group(2)
        body = reference[:1] + prefix + reference[1:]
        return body + _check_digit(body)
    dl = _DL_GTIN.search(epc)
    return dl.group(1) if dl else None


def _check_digit(digits: str) -> str:
    total = sum(int(d) * (3 if i % 2 == 0 else 1) for i, d in enumerate(reversed(digits)))
    return str((10 - total % 10) % 10)


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


def _is_commissioning(facts: EventFacts, epc: str) -> bool:
    return (
        facts.event_type == "ObjectEvent"
        and facts.action == "ADD"
        and facts.biz_step == "commissioning"
        and epc in facts.epcs
    )


class _Fold:
    """Mutable accumulator for one identifier; only :func:`compute_state` uses it."""

    def __init__(self, epc: str) -> None:
        self.state = SerialState(epc=epc, kind=_kind_of(epc), gtin=gtin_of(epc))
        self.findings: list[Finding] = []
        self.first_uncommissioned: str | None = None

    def step(self, entry: TimelineEntry) -> None:
        facts, epc = entry.facts, self.state.epc
        direct = not entry.inferred
        if direct and _is_commissioning(facts, epc):
            self._commission(facts)
            return
        if direct and self.state.commissioned_at is None and self.first_uncommissioned is None:
            self.first_uncommissioned = facts.hash_id
        if self.state.lifecycle in TERMINAL and direct and facts.action != "DELETE":
            self.findings.append(
                Finding(
                    ExceptionType.EVENT_AFTER_END_OF_LIFE,
                    f"{facts.biz_step or facts.event_type} on {epc}, "
                    f"which is {self.state.lifecycle.value}",
                    (epc,),
                    (facts.hash_id,),
                )
            )
        self._apply(facts)

    def _commission(self, facts: EventFacts) -> None:
        state = self.state
        if state.commissioned_at is not None:
            differs = (facts.lot, facts.expiry) != (state.lot, state.expiry)
            kind = (
                ExceptionType.LOT_OR_EXPIRY_MISMATCH
                if differs
                else ExceptionType.DUPLICATE_COMMISSIONING
            )
            self.findings.append(
                Finding(
                    kind,
                    f"{state.epc} commissioned again (lot {facts.lot}, expiry {facts.expiry}; "
                    f"first: lot {state.lot}, expiry {state.expiry})",
                    (state.epc,),
                    (state.commissioning_event or "", facts.hash_id),
                )
            )
            return
        commissioner = facts.biz_location or facts.read_point
        self.state = replace(
            state,
            lot=facts.lot,
            expiry=facts.expiry,
            commissioned_at=facts.event_time,
            commissioner=commissioner,
            commissioning_event=facts.hash_id,
            owner=state.owner or commissioner,
            custodian=state.custodian or commissioner,
            location=facts.biz_location or state.location,
            lifecycle=Status.COMMISSIONED if state.lifecycle is Status.UNKNOWN else state.lifecycle,
            last_event=facts.hash_id,
            last_event_time=facts.event_time,
        )

    def _apply(self, facts: EventFacts) -> None:
        state = self.state
        lifecycle = state.lifecycle
        owner, custodian, location = state.owner, state.custodian, state.location
        destination, shipment = state.destination, state.last_shipment
        if facts.biz_step == "shipping":
            lifecycle = Status.IN_TRANSIT
            owner = facts.destination("owning_party") or owner
            custodian = (
                facts.source("possessing_party") or facts.source("owning_party") or custodian
            )
            location = facts.source("location") or facts.read_point or location
            destination = facts.destination("location") or facts.destination("owning_party")
            shipment = facts.hash_id
        elif facts.biz_step == "receiving":
            lifecycle = Status.RECEIVED
            owner = facts.destination("owning_party") or owner
            custodian = (
                facts.destination("possessing_party")
                or facts.destination("owning_party")
                or facts.biz_location
                or custodian
            )
            location = facts.biz_location or facts.destination("location") or location
            destination = None
        elif facts.biz_location:
            location = facts.biz_location
        end = _END_STEPS.get(facts.biz_step or "") or _END_DISPOSITIONS.get(facts.disposition or "")
        if end is None and facts.event_type == "ObjectEvent" and facts.action == "DELETE":
            end = Status.DECOMMISSIONED
        if state.lifecycle in TERMINAL:
            lifecycle = state.lifecycle  # no way back from an end of life
        elif end is not None:
            lifecycle = end
        self.state = replace(
            state,
            lifecycle=lifecycle,
            owner=owner,
            custodian=custodian,
            location=location,
            destination=destination,
            last_shipment=shipment,
            recalled_in_data=state.recalled_in_data or facts.disposition == "recalled",
            last_event=facts.hash_id,
            last_event_time=facts.event_time,
        )

    def finish(self, parent: str | None, top: str | None) -> SerialState:
        state = self.state
        if state.commissioned_at is None and self.first_uncommissioned is not None:
            self.findings.append(
                Finding(
                    ExceptionType.NEVER_COMMISSIONED,
                    f"event on {state.epc}, which was never commissioned",
                    (state.epc,),
                    (self.first_uncommissioned,),
                )
            )
        if state.lifecycle in TERMINAL:
            status = state.lifecycle
        elif state.recalled_in_data:
            status = Status.RECALLED
        elif state.lifecycle is Status.IN_TRANSIT:
            status = Status.IN_TRANSIT
        elif parent is not None:
            status = Status.PACKED
        else:
            status = state.lifecycle
        return replace(state, parent=parent, top_container=top, status=status)


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


_CHUNK = 500


class SerialStateProjection:
    """Keeps serial state, containment intervals and event facts in a :class:`ProjectionStore`."""

    def __init__(self, store: ProjectionStore) -> None:
        self._store = store

    async def apply(self, facts: Sequence[EventFacts]) -> ProjectionUpdate:
        inserted = await self._store.add_facts(facts)
        named = {epc for f in inserted for epc in f.names()}
        affected = await self._with_descendants(named)
        states, findings = await self._recompute(affected)
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
            await self._recompute_intervals(chunk)
        for chunk in _chunks(everything):
            states, _ = await self._recompute_states(chunk)
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

    async def _recompute(self, affected: set[str]) -> tuple[list[SerialState], list[Finding]]:
        findings: list[Finding] = []
        states: list[SerialState] = []
        ordered = sorted(affected)
        for chunk in _chunks(ordered):
            findings.extend(await self._recompute_intervals(chunk))
        for chunk in _chunks(ordered):
            chunk_states, chunk_findings = await self._recompute_states(chunk)
            states.extend(chunk_states)
            findings.extend(chunk_findings)
        return states, findings

    async def _recompute_intervals(self, children: Sequence[str]) -> list[Finding]:
        facts = await self._store.facts_for(children)
        parents = {
            f.parent_id
            for child in children
            for f in facts.get(child, ())
            if f.is_aggregation() and f.parent_id and child in f.child_epcs
        }
        parent_facts = await self._store.facts_for(parents - set(facts))
        all_facts = {**facts, **parent_facts}
        intervals: list[Interval] = []
        findings: list[Finding] = []
        for child in children:
            own = facts.get(child, [])
            relevant = list(own)
            for parent in {f.parent_id for f in own if f.parent_id and f.parent_id != child}:
                relevant.extend(all_facts.get(parent, ()))
            found, problems = intervals_for_child(child, relevant)
            intervals.extend(found)
            findings.extend(problems)
        await self._store.replace_intervals(children, intervals)
        return findings

    async def _recompute_states(
        self, epcs: Sequence[str]
    ) -> tuple[list[SerialState], list[Finding]]:
        loader = _Loader(self._store)
        await loader.load(epcs)
        states: list[SerialState] = []
        findings: list[Finding] = []
        for epc in epcs:
            parent, top = loader.containers_now(epc)
            entries = timeline(epc, loader.facts_of, loader.intervals_of)
            state, problems = compute_state(epc, entries, parent, top)
            states.append(state)
            findings.extend(problems)
        await self._store.put_states(states)
        return states, findings


class _Loader:
    """Fetches, level by level, the facts and intervals of identifiers and all their ancestors."""

    def __init__(self, store: ProjectionStore) -> None:
        self._store = store
        self._facts: dict[str, list[EventFacts]] = {}
        self._intervals: dict[str, list[Interval]] = {}

    async def load(self, epcs: Iterable[str]) -> None:
        frontier = set(epcs)
        while frontier:
            found = await self._store.intervals_for_children(frontier)
            facts = await self._store.facts_for(frontier)
            for epc in frontier:
                self._intervals[epc] = found.get(epc, [])
                self._facts[epc] = facts.get(epc, [])
            parents = {i.parent for epc in frontier for i in self._intervals[epc]}
            frontier = parents - self._intervals.keys()

    def facts_of(self, epc: str) -> Sequence[EventFacts]:
        return self._facts.get(epc, ())

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


def _open_parent(intervals: Iterable[Interval]) -> str | None:
    return next((i.parent for i in intervals if i.end is None), None)


def _chunks(items: Sequence[str] | Collection[str]) -> Iterable[list[str]]:
    listed = list(items)
    for start in range(0, len(listed), _CHUNK):
        yield listed[start : start + _CHUNK]
