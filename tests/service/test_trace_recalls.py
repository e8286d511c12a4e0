"""Recall records in a trace, read from the SQLite store's recall heads (and without them)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import UTC, datetime
from typing import Any

import pytest

from service.serial_state import SerialStateProjection
from service.sqlite_traceability_store import SQLiteTraceabilityStore
from service.trace import trace
from service.traceability_store import RecallRecord, RecallSummary
from tests.service.dscsa_scenario import ITEM_GTIN, ITEMS, facts, scenario_events

NOW = datetime(2026, 3, 3, tzinfo=UTC)


@pytest.fixture
async def store(tmp_path: Any) -> AsyncIterator[SQLiteTraceabilityStore]:
    backend = SQLiteTraceabilityStore(tmp_path / "trace.sqlite")
    await backend.open()
    await SerialStateProjection(backend).apply(facts(scenario_events()))
    yield backend
    await backend.close()


async def test_recalls_stored_before_heads_were_kept_are_still_read(
    store: SQLiteTraceabilityStore,
) -> None:
    await store.add_recall(RecallRecord("old", NOW, "ops", "label", gtin=ITEM_GTIN, lot="L1"))
    await store.add_recall(RecallRecord("new", NOW, "ops", "seal", serials=(ITEMS[1],)))
    expected = [
        RecallSummary("new", NOW, "ops", "seal"),
        RecallSummary("old", NOW, "ops", "label", ITEM_GTIN, "L1"),
    ]
    state = (await store.get_states([ITEMS[1]]))[ITEMS[1]]
    assert await store.recalls_of(state) == expected

    def forget_head(db: Any) -> None:
        db.execute("DELETE FROM trace_recall_heads WHERE recall_id = 'old'")

    await store._run(forget_head)
    assert await store.recalls_of(state) == expected


async def test_a_lot_recall_is_summarised_without_its_serial_list(
    store: SQLiteTraceabilityStore,
) -> None:
    serials = tuple(f"urn:epc:id:sgtin:030001.0012345.{n}" for n in range(2000))
    await store.add_recall(RecallRecord("lot", NOW, "ops", None, ITEM_GTIN, "L1", serials))

    def head(db: Any) -> str:
        row = db.execute("SELECT body FROM trace_recall_heads").fetchone()
        return str(row[0])

    assert "serials" not in await store._run(head)
    result = await trace(store, ITEMS[3])
    assert result.status == "recalled"
    assert [(r.recall_id, r.scope, r.reason) for r in result.recalls] == [("lot", "lot", None)]
