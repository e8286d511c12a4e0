"""Serial state projection: aggregation inference, and arrival order not mattering."""

from __future__ import annotations

import asyncio
from datetime import date

from hypothesis import given, settings
from hypothesis import strategies as st

from epcis.model import Action, ObjectEvent
from service.containment import EventFacts
from service.exception_records import ExceptionType
from service.serial_state import SerialState, SerialStateProjection, Status
from service.sqlite_traceability_store import SQLiteTraceabilityStore
from tests.service.dscsa_scenario import (
    CASES,
    ITEM_GTIN,
    ITEMS,
    MANUFACTURER,
    PALLET,
    PHARMACY,
    WHOLESALER,
    WHOLESALER_DC,
    aggregate,
    commission,
    facts,
    scenario_events,
    ship,
)

ALL = (*ITEMS, *CASES, PALLET)


async def _project(batches: list[list[EventFacts]]) -> dict[str, SerialState]:
    store = SQLiteTraceabilityStore(":memory:")
    await store.open()
    try:
        projection = SerialStateProjection(store)
        for batch in batches:
            await projection.apply(batch)
        incremental = await store.get_states(ALL)
        await projection.rebuild()
        rebuilt = await store.get_states(ALL)
        assert rebuilt == incremental
        return incremental
    finally:
        await store.close()


def _in_order() -> dict[str, SerialState]:
    return asyncio.run(_project([facts(scenario_events())]))


def test_item_state_follows_its_containers_to_the_pharmacy() -> None:
    states = _in_order()
    dispensed = states[ITEMS[0]]
    assert dispensed.status is Status.DISPENSED
    assert (dispensed.lot, dispensed.expiry) == ("L1", date(2027, 6, 30))
    assert dispensed.gtin == ITEM_GTIN
    assert dispensed.commissioner == MANUFACTURER
    assert dispensed.owner == PHARMACY
    assert dispensed.parent is None


def test_unpacked_item_left_at_wholesaler_is_received_there() -> None:
    item = _in_order()[ITEMS[1]]
    # Received only through the pallet it was in (inference), then its case was unpacked.
    assert item.status is Status.RECEIVED
    assert (item.owner, item.custodian, item.location) == (WHOLESALER, WHOLESALER, WHOLESALER_DC)


def test_item_still_in_case_is_packed_with_top_container() -> None:
    states = _in_order()
    assert states[ITEMS[2]].status is Status.PACKED
    assert states[ITEMS[2]].parent == CASES[1]
    # The pallet was unpacked, so the case is its own top container now.
    assert states[ITEMS[2]].top_container == CASES[1]
    assert states[CASES[1]].parent is None


async def test_in_transit_items_three_levels_deep_see_the_shipment() -> None:
    store = SQLiteTraceabilityStore(":memory:")
    await store.open()
    projection = SerialStateProjection(store)
    await projection.apply(facts(scenario_events()[:7]))
    states = await store.get_states(ALL)
    await store.close()
    assert states[ITEMS[3]].status is Status.IN_TRANSIT
    assert states[ITEMS[3]].top_container == PALLET
    assert states[ITEMS[3]].parent == CASES[1]
    assert states[ITEMS[3]].owner == WHOLESALER


async def test_findings_for_double_packing_and_unpacking_from_the_wrong_case() -> None:
    store = SQLiteTraceabilityStore(":memory:")
    await store.open()
    projection = SerialStateProjection(store)
    events = [
        commission(0, ITEMS),
        commission(1, CASES),
        aggregate(3, CASES[0], ITEMS[:1]),
        aggregate(4, CASES[1], ITEMS[:1]),
        aggregate(5, CASES[0], ITEMS[1:2], Action.DELETE),
        ship(6, ("urn:epc:id:sgtin:030001.0012345.99",), 1),
    ]
    update = await projection.apply(facts(events))
    await store.close()
    kinds = {f.type for f in update.findings}
    assert kinds == {
        ExceptionType.ALREADY_IN_CONTAINER,
        ExceptionType.NOT_IN_CONTAINER,
        ExceptionType.NEVER_COMMISSIONED,
    }


@settings(max_examples=25, deadline=None)
@given(st.permutations(range(13)), st.lists(st.integers(1, 5), min_size=1, max_size=13))
def test_any_arrival_order_gives_the_event_time_order_state(
    order: list[int], sizes: list[int]
) -> None:
    all_facts = facts(scenario_events())
    shuffled = [all_facts[i] for i in order]
    batches: list[list[EventFacts]] = []
    position = 0
    for size in sizes:
        if position < len(shuffled):
            batches.append(shuffled[position : position + size])
            position += size
    if position < len(shuffled):
        batches.append(shuffled[position:])
    assert asyncio.run(_project(batches)) == _in_order()


def test_a_recaptured_commissioning_is_no_duplicate_but_other_ones_are() -> None:
    first = commission(0, ITEMS[:2])
    copy = commission(0, ITEMS[:1])  # a reduced copy: same time, place, lot and expiry
    later = commission(30, ITEMS[:1])
    other_lot = commission(0, ITEMS[:1], lot="L9")

    async def findings(events: list[ObjectEvent]) -> tuple[set[ExceptionType], str | None]:
        store = SQLiteTraceabilityStore(":memory:")
        await store.open()
        try:
            update = await SerialStateProjection(store).apply(facts(events))
            state = (await store.get_states([ITEMS[0]]))[ITEMS[0]]
            return {f.type for f in update.findings}, state.lot
        finally:
            await store.close()

    assert asyncio.run(findings([first, copy])) == (set(), "L1")
    assert asyncio.run(findings([copy, first])) == (set(), "L1")
    assert asyncio.run(findings([first, later])) == ({ExceptionType.DUPLICATE_COMMISSIONING}, "L1")
    kinds, _ = asyncio.run(findings([first, other_lot]))
    assert kinds == {ExceptionType.LOT_OR_EXPIRY_MISMATCH}
