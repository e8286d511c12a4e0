"""The SQLite store's read-only reader for ``verification_view`` (on the caller's thread) against
the worker thread's read of the same statement, and when it hands the read to the worker."""

from __future__ import annotations

import sqlite3
import uuid
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from service.exception_records import ExceptionRecord, ExceptionType, Hold
from service.serial_state import SerialState, SerialStateProjection, Status
from service.sqlite_traceability_store import (
    _VIEW,
    SQLiteTraceabilityStore,
    _Reader,
    _verification_view,
)
from service.traceability_store import RecallRecord, VerificationView
from tests.service.dscsa_scenario import CASES, ITEM_GTIN, ITEMS, PALLET, facts, scenario_events

NOW = datetime(2026, 3, 3, tzinfo=UTC)
UNKNOWN = "urn:epc:id:sgtin:030001.0012345.999"
EPCS = (*ITEMS, *CASES, PALLET, UNKNOWN)


@pytest.fixture
async def store(tmp_path: Path) -> AsyncIterator[SQLiteTraceabilityStore]:
    backend = SQLiteTraceabilityStore(tmp_path / "trace.sqlite")
    await backend.open()
    await SerialStateProjection(backend).apply(facts(scenario_events()))
    yield backend
    await backend.close()


async def _on_worker(store: SQLiteTraceabilityStore, epc: str) -> VerificationView | None:
    return await store._run(lambda db: _verification_view(db, (epc,)))


def _exception(key: str, epcs: tuple[str, ...]) -> ExceptionRecord:
    return ExceptionRecord(
        exception_id=uuid.uuid4().hex,
        key=key,
        type=ExceptionType.NEVER_COMMISSIONED,
        detail="test",
        created_at=NOW,
        identifiers=epcs,
    )


async def test_reader_answers_what_the_worker_reads(store: SQLiteTraceabilityStore) -> None:
    await store.add_recall(RecallRecord("r1", NOW, "ops", serials=(ITEMS[2],)))
    await store.add_exceptions([_exception("k1", (ITEMS[0],))])
    read_here = {epc: store._view_reader.view(epc) for epc in EPCS}
    # A serial with exception records is read on the worker (its holds take more statements).
    assert read_here[ITEMS[0]] is _Reader.ON_WORKER
    assert read_here[UNKNOWN] is None
    for epc in EPCS:
        worker = await _on_worker(store, epc)
        assert await store.verification_view(epc) == worker
        if epc != ITEMS[0]:
            assert read_here[epc] == worker
    recalled = read_here[ITEMS[2]]
    assert isinstance(recalled, VerificationView)
    assert recalled.recalled
    held = await store.verification_view(ITEMS[0])
    assert held is not None
    assert held.holds == {Hold.SUSPECT}


async def test_reader_sees_each_later_commit(store: SQLiteTraceabilityStore) -> None:
    before = store._view_reader.view(ITEMS[1])
    assert isinstance(before, VerificationView)
    assert not before.recalled
    # A lot recall committed by the worker after the reader's first read: no stale snapshot.
    await store.add_recall(RecallRecord("r2", NOW, "ops", gtin=ITEM_GTIN, lot="L1"))
    after = store._view_reader.view(ITEMS[1])
    assert isinstance(after, VerificationView)
    assert after.recalled
    changed = SerialState(
        epc=ITEMS[1], kind="sgtin", gtin=ITEM_GTIN, lot="L9", lifecycle=Status.DISPENSED
    )
    await store.put_states([changed])
    latest = store._view_reader.view(ITEMS[1])
    assert isinstance(latest, VerificationView)
    assert latest.state == changed


async def test_a_recall_in_the_data_counts(store: SQLiteTraceabilityStore) -> None:
    state = SerialState(epc=ITEMS[3], kind="sgtin", gtin=ITEM_GTIN, lot="L9", recalled_in_data=True)
    await store.put_states([state])
    assert store._view_reader.view(ITEMS[3]) == VerificationView(state, True, frozenset())


async def test_busy_reader_hands_the_read_to_the_worker(
    store: SQLiteTraceabilityStore, monkeypatch: pytest.MonkeyPatch
) -> None:
    expected = await _on_worker(store, ITEMS[1])
    assert store._view_reader.view(ITEMS[1]) == expected

    class Busy:
        def execute(self, *_: Any) -> Any:
            raise sqlite3.OperationalError("database is locked")

        def close(self) -> None:
            pass

    monkeypatch.setattr(store._view_reader, "_db", Busy())
    assert store._view_reader.view(ITEMS[1]) is _Reader.ON_WORKER
    assert await store.verification_view(ITEMS[1]) == expected


async def test_reader_is_read_only(store: SQLiteTraceabilityStore) -> None:
    store._view_reader.view(ITEMS[1])
    db = store._view_reader._db
    assert db is not None
    with pytest.raises(sqlite3.OperationalError):
        db.execute("DELETE FROM serial_states")


async def test_in_memory_store_reads_on_the_worker() -> None:
    store = SQLiteTraceabilityStore(":memory:")
    await store.open()
    try:
        await SerialStateProjection(store).apply(facts(scenario_events()))
        assert store._view_reader.view(ITEMS[1]) is _Reader.ON_WORKER
        view = await store.verification_view(ITEMS[1])
        assert view is not None
        assert view.state.epc == ITEMS[1]
    finally:
        await store.close()


async def test_close_closes_the_reader(tmp_path: Path) -> None:
    store = SQLiteTraceabilityStore(tmp_path / "trace.sqlite")
    await store.open()
    assert store._view_reader.view(ITEMS[1]) is None
    assert store._view_reader._db is not None
    await store.close()
    assert store._view_reader._db is None


async def test_the_first_stored_spelling_is_viewed(store: SQLiteTraceabilityStore) -> None:
    # Other spellings of one package's URN: the view is of the first that has state, on the
    # event loop's reader and on the worker alike.
    missing = "urn:epc:id:sgtin:0000000.000000.none"
    for spellings in ((UNKNOWN, ITEMS[1]), (missing, ITEMS[1], ITEMS[2]), (ITEMS[2], ITEMS[1])):
        expected = await _on_worker(
            store, next(s for s in spellings if s != missing and s != UNKNOWN)
        )
        assert store._view_reader.view(*spellings) == expected
        assert await store._run(lambda db, s=spellings: _verification_view(db, s)) == expected
        assert await store.verification_view(*spellings) == expected
    assert store._view_reader.view(UNKNOWN, missing) is None
    assert await store._run(lambda db: _verification_view(db, (UNKNOWN, missing))) is None


async def test_the_lot_recall_check_is_an_index_search(store: SQLiteTraceabilityStore) -> None:
    plan = await store._run(
        lambda db: db.execute("EXPLAIN QUERY PLAN " + _VIEW, (ITEMS[1],)).fetchall()
    )
    details = [row[-1] for row in plan]
    assert any("trace_recalls_lot" in d for d in details), details
    assert not any(d.startswith("SCAN") for d in details), details
