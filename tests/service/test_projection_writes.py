"""What the projection writes per update against writing everything it recomputed, and how it
runs (the cyclic collector paused for an update and a committed batch, resumed after).

An update replaces the stored intervals only of children whose containment may have changed
(a relevant event is new); the others keep theirs. Differential: the same arrival orders and
batches through the projection as it is and through one forced to rewrite every child (what
it did before), comparing stored intervals and states after every batch, and both against a
recomputation from nothing.
"""

from __future__ import annotations

import asyncio
import gc
from collections.abc import Collection, Sequence
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from service.containment import EventFacts, Interval
from service.dscsa_checks import facts_committed
from service.master_data import ProductRecord
from service.serial_state import (
    SerialState,
    SerialStateProjection,
    _Containment,
    _Loader,
)
from service.sqlite_traceability_store import SQLiteTraceabilityStore
from tests.service.test_projection_fast_paths import (
    _CASES,
    _PALLET,
    _SERIALS,
    _UNIVERSE,
    _all_intervals,
    _history,
    _make,
    _recompute_all,
    _with_full_cases,
)


class _RewriteAll(SerialStateProjection):
    """The projection before the fast path: every recomputed child's intervals rewritten."""

    async def _intervals_of(
        self, children: Sequence[str], loader: _Loader, *, everything: bool = False
    ) -> _Containment:
        return await super()._intervals_of(children, loader, everything=True)


class _Recording(SQLiteTraceabilityStore):
    """Remembers which children each ``write_update`` replaced the intervals of."""

    def __init__(self) -> None:
        super().__init__(":memory:")
        self.replaced: list[list[str]] = []

    async def write_update(
        self,
        facts: Sequence[EventFacts],
        children: Collection[str],
        intervals: Sequence[Interval],
        states: Sequence[SerialState],
    ) -> None:
        self.replaced.append(list(children))
        assert {i.child for i in intervals} <= set(children)
        await super().write_update(facts, children, intervals, states)


Snapshot = tuple[dict[str, list[Interval]], dict[str, SerialState]]


async def _snapshots(
    projection_type: type[SerialStateProjection], batches: list[list[EventFacts]]
) -> list[Snapshot]:
    store = SQLiteTraceabilityStore(":memory:")
    await store.open()
    try:
        projection = projection_type(store)
        taken: list[Snapshot] = []
        for batch in batches:
            await projection.apply(batch)
            intervals = await store.intervals_for_children(_UNIVERSE)
            taken.append(
                ({c: i for c, i in intervals.items() if i}, await store.get_states(_UNIVERSE))
            )
        return taken
    finally:
        await store.close()


def _batches(history: list[EventFacts], rng: Any) -> list[list[EventFacts]]:
    shuffled = list(history)
    rng.shuffle(shuffled)
    batches: list[list[EventFacts]] = []
    while shuffled:
        size = rng.randint(1, 4)
        batches.append(shuffled[:size])
        shuffled = shuffled[size:]
    return batches


@settings(max_examples=60, deadline=None)
@given(_history(), st.randoms(use_true_random=False), st.booleans())
def test_rewriting_only_changed_containment_stores_what_rewriting_everything_did(
    history: list[EventFacts], rng: Any, full_cases: bool
) -> None:
    if full_cases:
        history = _with_full_cases(history)
    batches = _batches(history, rng)
    fast = asyncio.run(_snapshots(SerialStateProjection, batches))
    slow = asyncio.run(_snapshots(_RewriteAll, batches))
    assert fast == slow
    intervals, states = fast[-1]
    assert intervals == _all_intervals(history)
    assert states == _recompute_all(history)[0]


def _pack(n: int, minute: int, parent: str, children: tuple[str, ...]) -> EventFacts:
    return _make(
        n,
        minute,
        event_type="AggregationEvent",
        action="ADD",
        biz_step="packing",
        parent_id=parent,
        child_epcs=children,
    )


async def test_an_update_that_leaves_containment_alone_replaces_no_intervals() -> None:
    store = _Recording()
    await store.open()
    try:
        projection = SerialStateProjection(store)
        await projection.apply([_pack(1, 0, _CASES[0], _SERIALS)])
        # Shipping the case recomputes its items' states, not their containment.
        shipped = _make(2, 5, biz_step="shipping", epcs=(_CASES[0],), biz_location=None)
        update = await projection.apply([shipped])
        # Emptying the case changes every item's containment.
        emptied = _make(3, 9, event_type="AggregationEvent", action="DELETE", parent_id=_CASES[0])
        await projection.apply([emptied])
        intervals = await store.intervals_for_children(_SERIALS)
    finally:
        await store.close()
    # The case is no aggregation's child: it has no intervals to replace.
    assert sorted(store.replaced[0]) == sorted(_SERIALS)
    assert {s.epc for s in update.states} == {*_SERIALS, _CASES[0]}
    assert store.replaced[1] == []
    assert sorted(store.replaced[2]) == sorted(_SERIALS)
    assert {c: [(i.parent, i.end) for i in found] for c, found in intervals.items()} == {
        s: [(_CASES[0], emptied.key)] for s in _SERIALS
    }


@pytest.mark.parametrize("facts_given", [True, False])
async def test_rebuild_writes_the_containment_of_every_identifier(facts_given: bool) -> None:
    history = [_pack(1, 0, _CASES[0], _SERIALS), _pack(2, 1, _PALLET, _CASES)]
    store = SQLiteTraceabilityStore(":memory:")
    await store.open()
    try:
        projection = SerialStateProjection(store)
        await projection.apply(history)
        await projection.rebuild(history if facts_given else None)
        stored = await store.intervals_for_children(_UNIVERSE)
    finally:
        await store.close()
    assert {c: i for c, i in stored.items() if i} == _all_intervals(history)


def test_an_interval_for_another_child_equals_the_dataclass_built_one() -> None:
    assert not hasattr(Interval, "__post_init__")
    start = _make(1, 0).key
    for interval in (
        Interval(_CASES[0], _SERIALS[0], start, None),
        Interval(_PALLET, _CASES[1], start, _make(2, 3).key),
    ):
        copy = interval.for_child(_SERIALS[2])
        expected = Interval(interval.parent, _SERIALS[2], interval.start, interval.end)
        assert copy == expected
        assert hash(copy) == hash(expected)
        assert repr(copy) == repr(expected)


class _Failing(_Recording):
    """Records whether the collector ran during the write, then fails it."""

    async def write_update(
        self,
        facts: Sequence[EventFacts],
        children: Collection[str],
        intervals: Sequence[Interval],
        states: Sequence[SerialState],
    ) -> None:
        self.collecting = gc.isenabled()
        raise OSError("disk full")


async def test_an_update_pauses_the_collector_until_it_ends_even_when_it_fails() -> None:
    store = _Recording()
    failing = _Failing()
    await store.open()
    await failing.open()
    try:
        await SerialStateProjection(store).apply([_pack(1, 0, _CASES[0], _SERIALS)])
        assert gc.isenabled()
        with pytest.raises(OSError, match="disk full"):
            await SerialStateProjection(failing).apply([_pack(1, 0, _CASES[0], _SERIALS)])
        assert failing.collecting is False
        assert gc.isenabled()
    finally:
        await store.close()
        await failing.close()


class _MasterDataSpy(SQLiteTraceabilityStore):
    """Records whether the collector ran when master data was written (before the update)."""

    async def put_products(self, products: Sequence[ProductRecord]) -> None:
        self.collecting = gc.isenabled()
        await super().put_products(products)


async def test_a_committed_batch_runs_with_the_collector_paused_throughout() -> None:
    store = _MasterDataSpy(":memory:")
    await store.open()
    try:
        outcome = await facts_committed(store, [_pack(1, 0, _CASES[0], _SERIALS)])
    finally:
        await store.close()
    assert store.collecting is False
    assert gc.isenabled()
    assert outcome.states_updated == len(_SERIALS) + 1
