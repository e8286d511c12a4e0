"""What an export covers: the identifiers in scope and, for each, its chain of custody (events
applying to it directly or through its containers) back to commissioning, as far as we know it."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import datetime

from epcis.errors import InvalidIdentifierError
from epcis.identifiers import canonical_epc
from epcis.query import EpcFilter, EventQuery
from service.containment import EventFacts, Interval, TimelineEntry, timeline
from service.exports import ExportScope, ScopeKind
from service.serial_state import SerialState
from service.store import EventRecord, EventStore, PageRequest, Visibility
from service.trace import resolve_identifier
from service.traceability_store import TraceabilityStore

__all__ = ["ScopeContents", "resolve_scope"]

_CHUNK = 500
_PAGE = 1000
_IDENTIFIER_ROLES = frozenset({"epc", "child", "parent", "input", "output"})


@dataclass(slots=True)
class ScopeContents:
    """The identifiers in scope with their timelines, and every event those name."""

    targets: list[str]
    timelines: dict[str, list[TimelineEntry]]
    states: dict[str, SerialState]
    facts: dict[str, EventFacts] = field(default_factory=dict)
    # Events that put something in scope but apply to no target (e.g. a partner's shipment of
    # goods we have no serial-level record of).
    scope_events: set[str] = field(default_factory=set)

    def ordered_events(self) -> list[EventFacts]:
        """Every event in scope, in event-time order (ties by hash)."""
        return sorted(self.facts.values(), key=lambda facts: facts.key)


async def resolve_scope(
    scope: ExportScope, events: EventStore, trace: TraceabilityStore
) -> ScopeContents:
    seeds, scope_records = await _seeds(scope, events, trace)
    targets = sorted(await _with_contents(trace, seeds))
    until = scope.date_to if scope.kind in (ScopeKind.GTIN, ScopeKind.PARTNER) else None
    contents = ScopeContents(targets=targets, timelines={}, states={})
    for start in range(0, len(targets), _CHUNK):
        chunk = targets[start : start + _CHUNK]
        await _load_chunk(trace, chunk, until, contents)
    for record in scope_records:
        if record.hash_id not in contents.facts:
            contents.scope_events.add(record.hash_id)
    contents.targets = [t for t in targets if contents.timelines.get(t)]
    return contents


async def _seeds(
    scope: ExportScope, events: EventStore, trace: TraceabilityStore
) -> tuple[set[str], list[EventRecord]]:
    if scope.kind is ScopeKind.SERIALS:
        return {resolve_identifier(serial) for serial in scope.serials}, []
    if scope.kind is ScopeKind.LOT:
        assert scope.gtin is not None
        assert scope.lot is not None
        states = await trace.states_by_lot(scope.gtin, scope.lot)
        return {state.epc for state in states}, []
    if scope.kind is ScopeKind.GTIN:
        # Every serial of the GTIN: the Digital Link key of an SGTIN starts with this.
        prefix = f"https://id.gs1.org/01/{scope.gtin}/21/"
        query = EventQuery(
            ge_event_time=scope.date_from,
            lt_event_time=scope.date_to,
            match_any_epc=EpcFilter(prefixes=(prefix,)),
        )
        records = await _all_events(events, query)
        keys = {key for r in records for role, key in r.index.epcs if key.startswith(prefix)}
        return {_canonical(key) for key in keys}, records
    query = EventQuery(ge_event_time=scope.date_from, lt_event_time=scope.date_to)
    records = [r for r in await _all_events(events, query) if _names_partner(r, scope)]
    keys = {key for r in records for role, key in r.index.epcs if role in _IDENTIFIER_ROLES}
    return {_canonical(key) for key in keys}, records


def _names_partner(record: EventRecord, scope: ExportScope) -> bool:
    gln = scope.partner_gln
    party = f"https://id.gs1.org/417/{gln}"
    location = f"https://id.gs1.org/414/{gln}"
    return any(
        key in (party, location) or key.startswith(location + "/") for key in record.index.parties
    )


def _canonical(key: str) -> str:
    try:
        return canonical_epc(key)
    except InvalidIdentifierError:
        return key


async def _all_events(events: EventStore, query: EventQuery) -> list[EventRecord]:
    found: list[EventRecord] = []
    token: str | None = None
    while True:
        page = await events.query_events(
            query, Visibility.everything(), PageRequest(per_page=_PAGE, token=token)
        )
        found.extend(page.records)
        token = page.next_token
        if token is None:
            return found


async def _with_contents(trace: TraceabilityStore, seeds: Iterable[str]) -> set[str]:
    """The seeds and everything ever packed inside them, however deep."""
    found = set(seeds)
    frontier = set(found)
    while frontier:
        children = await trace.children_ever(frontier)
        frontier = children - found
        found |= frontier
    return found


async def _load_chunk(
    trace: TraceabilityStore,
    chunk: Sequence[str],
    until: datetime | None,
    contents: ScopeContents,
) -> None:
    facts: dict[str, list[EventFacts]] = {}
    intervals: dict[str, list[Interval]] = {}
    frontier = set(chunk)
    # Level by level: the chunk, their containers, the containers' containers...
    while frontier:
        found_intervals = await trace.intervals_for_children(frontier)
        found_facts = await trace.facts_for(frontier)
        for epc in frontier:
            intervals[epc] = found_intervals.get(epc, [])
            facts[epc] = found_facts.get(epc, [])
        parents = {i.parent for epc in frontier for i in intervals[epc]}
        frontier = parents - intervals.keys()
    states = await trace.get_states(chunk)
    contents.states.update(states)
    for epc in chunk:
        entries = timeline(epc, lambda e: facts.get(e, ()), lambda e: intervals.get(e, ()))
        if until is not None:
            entries = [entry for entry in entries if entry.facts.event_time < until]
        contents.timelines[epc] = entries
        for entry in entries:
            contents.facts.setdefault(entry.facts.hash_id, entry.facts)
