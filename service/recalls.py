"""Recalls of a lot or of listed serials, the status users see, and the scope of a recall."""

from __future__ import annotations

import uuid
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime

from service.serial_state import TERMINAL, SerialState, Status, effective_status
from service.traceability_store import RecallRecord, TraceabilityStore

__all__ = [
    "CustodianScope",
    "RecallRequest",
    "RecallScope",
    "effective_statuses",
    "lot_serials",
    "recall",
]


@dataclass(frozen=True, slots=True)
class RecallRequest:
    """A lot (``gtin`` + ``lot``) or a list of serials; exactly one of the two."""

    gtin: str | None = None
    lot: str | None = None
    serials: tuple[str, ...] = ()
    reason: str | None = None

    def __post_init__(self) -> None:
        by_lot = self.gtin is not None and self.lot is not None
        if by_lot == bool(self.serials) or (self.gtin is None) != (self.lot is None):
            raise ValueError("a recall names either gtin and lot, or serials")


@dataclass(frozen=True, slots=True)
class CustodianScope:
    custodian: str | None
    location: str | None
    packages: int


@dataclass(frozen=True, slots=True)
class RecallScope:
    recall_id: str
    identifiers: int
    # Packages still in the supply chain, per custodian and where they are.
    custodians: tuple[CustodianScope, ...]
    # Already dispensed, decommissioned or destroyed: nothing left to pull back.
    ended: int


async def effective_statuses(
    store: TraceabilityStore, states: Sequence[SerialState]
) -> dict[str, Status]:
    """The status users see: event state, with recalls and open exception holds on top."""
    recalled = await store.recalled(states)
    holds = await store.holds_for([s.epc for s in states])
    return {s.epc: effective_status(s, s.epc in recalled, holds.get(s.epc, set())) for s in states}


async def lot_serials(
    store: TraceabilityStore, gtin: str, lot: str
) -> list[tuple[SerialState, Status]]:
    states = await store.states_by_lot(gtin, lot)
    statuses = await effective_statuses(store, states)
    return [(s, statuses[s.epc]) for s in states]


async def recall(store: TraceabilityStore, request: RecallRequest, by: str) -> RecallScope:
    """Record the recall and answer where the packages it covers are now."""
    if request.serials:
        states = await _with_contents(store, request.serials)
    else:
        assert request.gtin is not None
        assert request.lot is not None
        states = await store.states_by_lot(request.gtin, request.lot)
    record = RecallRecord(
        recall_id=uuid.uuid4().hex,
        created_at=datetime.now(UTC),
        created_by=by,
        reason=request.reason,
        gtin=request.gtin,
        lot=request.lot,
        serials=tuple(sorted({s.epc for s in states} | set(request.serials))),
    )
    await store.add_recall(record)
    live = [s for s in states if s.status not in TERMINAL]
    counts = Counter((s.custodian, s.location) for s in live)
    custodians = tuple(
        CustodianScope(custodian, location, packages)
        for (custodian, location), packages in sorted(counts.items(), key=lambda i: str(i[0]))
    )
    return RecallScope(record.recall_id, len(states), custodians, len(states) - len(live))


async def _with_contents(store: TraceabilityStore, serials: Sequence[str]) -> list[SerialState]:
    """The listed serials and everything inside them now, however deep."""
    found = await store.get_states(serials)
    frontier = set(found)
    while frontier:
        children = await store.children_ever(frontier) - found.keys()
        inside = {
            epc: state
            for epc, state in (await store.get_states(children)).items()
            if state.parent in frontier
        }
        found.update(inside)
        frontier = set(inside)
    return list(found.values())
