"""Recalls by lot and by serial list, and the status they give."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest

from service.recalls import RecallRequest, lot_serials, recall
from service.serial_state import SerialStateProjection, Status
from service.sqlite_traceability_store import SQLiteTraceabilityStore
from service.trace import trace
from tests.service.dscsa_scenario import (
    CASES,
    ITEM_GTIN,
    ITEMS,
    MANUFACTURER,
    WHOLESALER,
    WHOLESALER_DC,
    facts,
    scenario_events,
)


@pytest.fixture
async def store() -> AsyncIterator[SQLiteTraceabilityStore]:
    backend = SQLiteTraceabilityStore(":memory:")
    await backend.open()
    await SerialStateProjection(backend).apply(facts(scenario_events()))
    yield backend
    await backend.close()


async def test_lot_recall_answers_where_the_packages_are(store: SQLiteTraceabilityStore) -> None:
    scope = await recall(store, RecallRequest(gtin=ITEM_GTIN, lot="L1", reason="sterility"), "ops")
    assert scope.identifiers == 4
    assert scope.ended == 1  # item 1 was dispensed
    assert [(c.custodian, c.location, c.packages) for c in scope.custodians] == [
        (WHOLESALER, WHOLESALER_DC, 3)
    ]
    statuses = {s.epc: status for s, status in await lot_serials(store, ITEM_GTIN, "L1")}
    assert statuses == {
        ITEMS[0]: Status.DISPENSED,
        ITEMS[1]: Status.RECALLED,
        ITEMS[2]: Status.RECALLED,
        ITEMS[3]: Status.RECALLED,
    }
    assert (await trace(store, ITEMS[2])).status == "recalled"


async def test_serial_recall_covers_what_is_inside(store: SQLiteTraceabilityStore) -> None:
    scope = await recall(store, RecallRequest(serials=(CASES[1],)), "ops")
    assert scope.identifiers == 3  # the case and its two items
    assert (await trace(store, ITEMS[3])).status == "recalled"
    assert (await trace(store, ITEMS[1])).status == "received"
    assert MANUFACTURER not in {c.custodian for c in scope.custodians}


def test_recall_request_names_a_lot_or_serials() -> None:
    with pytest.raises(ValueError, match="either"):
        RecallRequest(gtin=ITEM_GTIN)
    with pytest.raises(ValueError, match="either"):
        RecallRequest(gtin=ITEM_GTIN, lot="L1", serials=(ITEMS[0],))
