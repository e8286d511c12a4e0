"""The SQLite traceability store's two files: the projection alone in the configured file and the
records beside it, the move of records out of a file written before the split, writing records
while another connection holds the projection file's write lock, and the synchronous adapter of
the projection tables on a connection of its own."""

from __future__ import annotations

import asyncio
import contextlib
import sqlite3
import uuid
from collections.abc import AsyncIterator, Awaitable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, TypeVar

import pytest

from service.containment import Interval
from service.exception_records import (
    Determination,
    ExceptionRecord,
    ExceptionStatus,
    ExceptionType,
    Resolution,
)
from service.master_data import PartyRecord, ProductRecord
from service.serial_state import SerialState, SerialStateProjection, Status
from service.sqlite_traceability_store import (
    _RECORDS_SCHEMA,
    PROJECTION_SCHEMA,
    SQLiteProjectionTables,
    SQLiteRecordsReader,
    SQLiteTraceabilityStore,
    _copy_records,
    _stray_record_tables,
    connect_projection,
    records_path,
)
from service.sqlite_worker import SQLiteWorker
from service.traceability_store import ExceptionFilter, RecallRecord
from tests.service.dscsa_scenario import (
    CASES,
    ITEM_GTIN,
    ITEMS,
    MANUFACTURER,
    PALLET,
    facts,
    scenario_events,
)

T = TypeVar("T")

NOW = datetime(2026, 3, 3, tzinfo=UTC)
UNKNOWN = "urn:epc:id:sgtin:030001.0012345.999"
EPCS = (*ITEMS, *CASES, PALLET)
PROJECTION_TABLES = {"trace_facts", "trace_fact_epcs", "trace_intervals", "serial_states"}
RECORD_TABLES = {
    "trace_exceptions",
    "trace_exception_epcs",
    "trace_resolutions",
    "trace_recalls",
    "trace_recall_serials",
    "trace_recall_heads",
    "master_products",
    "master_parties",
    "pending_projections",
}
# The single file's schema before the split: the same statements, all in the main schema.
OLD_SCHEMA = PROJECTION_SCHEMA + _RECORDS_SCHEMA.replace("records.", "")


def _counts(path: Path) -> dict[str, int]:
    """Rows per table of one file, read with a plain connection."""
    with contextlib.closing(sqlite3.connect(path)) as db:
        names = [
            name
            for (name,) in db.execute(
                "SELECT name FROM sqlite_master WHERE type = 'table' AND name NOT LIKE 'sqlite%'"
            )
        ]
        return {
            name: db.execute(f"SELECT count(*) FROM {name}").fetchone()[0]  # noqa: S608
            for name in names
        }


def _rows(path: Path, table: str) -> list[tuple[Any, ...]]:
    with contextlib.closing(sqlite3.connect(path)) as db:
        return sorted(db.execute(f"SELECT * FROM {table}"))  # noqa: S608 -- our names


def _exception(key: str, epcs: tuple[str, ...]) -> ExceptionRecord:
    return ExceptionRecord(
        exception_id=uuid.uuid4().hex,
        key=key,
        type=ExceptionType.NEVER_COMMISSIONED,
        detail="test",
        created_at=NOW,
        identifiers=epcs,
    )


def _resolution(exception_id: str, note: str, **extra: Any) -> Resolution:
    return Resolution(exception_id, note, "ops", NOW, **extra)


async def _fill(store: SQLiteTraceabilityStore) -> None:
    """Projection rows from the scenario, and some of every kind of record."""
    await SerialStateProjection(store).apply(facts(scenario_events()))
    first, second = _exception("k1", (ITEMS[1],)), _exception("k2", (ITEMS[3], CASES[1]))
    await store.add_exceptions([first, second])
    await store.add_resolution(
        _resolution(first.exception_id, "looking", status=ExceptionStatus.OPEN)
    )
    await store.add_resolution(
        _resolution(first.exception_id, "fine", determination=Determination.CLEARED)
    )
    await store.add_resolution(_resolution(second.exception_id, "noted"))
    await store.add_recall(RecallRecord("r-serials", NOW, "ops", "bad", serials=(ITEMS[2],)))
    await store.add_recall(RecallRecord("r-lot", NOW, "ops", "worse", gtin=ITEM_GTIN, lot="L9"))
    await store.put_products([ProductRecord(ITEM_GTIN, "urn:epc:idpat:sgtin:030001.0012345.*")])
    await store.put_parties([PartyRecord(MANUFACTURER, "Maker")])
    await store.add_pending_projection("doc-1", "capture-1", NOW)


async def _answers(store: SQLiteTraceabilityStore) -> dict[str, Any]:
    """Everything the store answers about the filled data."""
    states = await store.get_states(EPCS)
    return {
        "exceptions": await store.list_exceptions(ExceptionFilter(limit=1000)),
        "recalls": [await store.get_recall(r) for r in ("r-serials", "r-lot")],
        "recalled": await store.recalled(list(states.values())),
        "recalls_of": [await store.recalls_of(s) for s in states.values()],
        "holds": await store.holds_for(EPCS),
        "products": await store.get_products([ITEM_GTIN]),
        "parties": await store.get_parties([MANUFACTURER]),
        "states": states,
        "lot": await store.states_by_lot(ITEM_GTIN, "L1"),
        "facts": await store.facts_for(EPCS),
        "intervals": await store.intervals_for_children(EPCS),
        "views": [await store.verification_view(epc) for epc in (*EPCS, UNKNOWN)],
        "traces": [await store.trace_view(epc) for epc in EPCS],
    }


@contextlib.asynccontextmanager
async def _opened(path: Path | str) -> AsyncIterator[SQLiteTraceabilityStore]:
    store = SQLiteTraceabilityStore(path)
    await store.open()
    try:
        yield store
    finally:
        await store.close()


async def _reference(directory: Path) -> tuple[Path, dict[str, Any]]:
    """A store filled in the new layout, and its answers."""
    path = directory / "reference.traceability.sqlite"
    async with _opened(path) as store:
        await _fill(store)
        return path, await _answers(store)


def _old_layout(reference: Path, path: Path) -> None:
    """``path`` as written before the split: the reference's rows of both files in one."""
    with contextlib.closing(sqlite3.connect(path)) as db:
        db.executescript(OLD_SCHEMA)
        db.execute("ATTACH DATABASE ? AS ref", (str(reference),))
        db.execute("ATTACH DATABASE ? AS ref_records", (str(records_path(reference)),))
        for table in PROJECTION_TABLES:
            db.execute(f"INSERT INTO main.{table} SELECT * FROM ref.{table}")  # noqa: S608
        for table in RECORD_TABLES:
            db.execute(f"INSERT INTO main.{table} SELECT * FROM ref_records.{table}")  # noqa: S608
        db.commit()


async def _soon(call: Awaitable[T]) -> T:
    # The store waits up to 5 s for a locked file: an answer within 1 s means it never waited.
    return await asyncio.wait_for(call, 1.0)


# --- the layout ------------------------------------------------------------------------


def test_records_path_is_a_sibling_with_records_before_the_suffix(tmp_path: Path) -> None:
    assert records_path("x/events.traceability.sqlite") == Path(
        "x/events.traceability.records.sqlite"
    )
    assert records_path(tmp_path / "t.partial") == tmp_path / "t.records.partial"


async def test_records_and_projection_land_in_their_own_files(tmp_path: Path) -> None:
    path = tmp_path / "events.traceability.sqlite"
    async with _opened(path) as store:
        await _fill(store)
    projection, records = _counts(path), _counts(records_path(path))
    assert set(projection) == PROJECTION_TABLES
    assert set(records) == RECORD_TABLES
    assert projection["trace_facts"] == len(scenario_events())
    assert all(projection[t] > 0 for t in PROJECTION_TABLES), projection
    assert projection["serial_states"] == len(EPCS)
    assert records == {
        "trace_exceptions": 2,
        "trace_exception_epcs": 3,
        "trace_resolutions": 3,
        "trace_recalls": 2,
        "trace_recall_serials": 1,
        "trace_recall_heads": 2,
        "master_products": 1,
        "master_parties": 1,
        "pending_projections": 1,
    }


async def test_both_files_are_wal_with_full_sync(tmp_path: Path) -> None:
    async with _opened(tmp_path / "t.sqlite") as store:
        modes = await store._run(
            lambda db: [
                (
                    db.execute(f"PRAGMA {s}.journal_mode").fetchone()[0],
                    db.execute(f"PRAGMA {s}.synchronous").fetchone()[0],
                )
                for s in ("main", "records")
            ]
        )
    assert modes == [("wal", 2), ("wal", 2)]


async def test_in_memory_store_keeps_its_records_in_memory(tmp_path: Path) -> None:
    async with _opened(":memory:") as store:
        await _fill(store)
        files = await store._run(lambda db: db.execute("PRAGMA database_list").fetchall())
        assert await store.get_recall("r-lot") is not None
        assert len(await store.list_exceptions(ExceptionFilter())) == 2
    assert [(name, file) for _, name, file in files] == [("main", ""), ("records", "")]


def test_worker_refuses_a_schema_name_that_is_not_an_identifier() -> None:
    for name in ("x; DROP TABLE t", "main", "1st"):
        with pytest.raises(ValueError, match="cannot attach"):
            SQLiteWorker(":memory:", "", name="t", attach={name: ":memory:"})


# --- moving records out of an old single file --------------------------------------------


async def test_an_old_single_file_store_keeps_every_row_and_answer(tmp_path: Path) -> None:
    reference, expected = await _reference(tmp_path)
    path = tmp_path / "old.traceability.sqlite"
    _old_layout(reference, path)
    assert set(_counts(path)) == PROJECTION_TABLES | RECORD_TABLES

    async with _opened(path) as store:
        assert await _answers(store) == expected
    assert set(_counts(path)) == PROJECTION_TABLES
    assert _counts(records_path(path)) == _counts(records_path(reference))
    for table in RECORD_TABLES:  # seq of resolutions included: the ledger names them by it
        assert _rows(records_path(path), table) == _rows(records_path(reference), table)
    for table in PROJECTION_TABLES:
        assert _rows(path, table) == _rows(reference, table)

    # Opened again: nothing left to move, nothing changes; new resolutions follow the old seq.
    async with _opened(path) as store:
        assert await _answers(store) == expected
        first = expected["exceptions"][0].exception_id
        await store.add_resolution(_resolution(first, "again"))
    seqs = [row[0] for row in _rows(records_path(path), "trace_resolutions")]
    assert seqs == [1, 2, 3, 4]


async def test_a_move_interrupted_after_the_copy_finishes_at_the_next_open(
    tmp_path: Path,
) -> None:
    reference, expected = await _reference(tmp_path)
    path = tmp_path / "old.traceability.sqlite"
    _old_layout(reference, path)
    # The copy committed, the process died before the drop: every record row in both files.
    with contextlib.closing(sqlite3.connect(path)) as db:
        db.execute("ATTACH DATABASE ? AS records", (str(records_path(path)),))
        db.executescript(_RECORDS_SCHEMA)
        _copy_records(db, _stray_record_tables(db))
        db.commit()
    assert set(_counts(path)) == PROJECTION_TABLES | RECORD_TABLES
    assert _counts(records_path(path)) == _counts(records_path(reference))

    async with _opened(path) as store:
        assert await _answers(store) == expected
    assert set(_counts(path)) == PROJECTION_TABLES
    assert _counts(records_path(path)) == _counts(records_path(reference))  # no duplicates
    for table in RECORD_TABLES:
        assert _rows(records_path(path), table) == _rows(records_path(reference), table)


# --- another connection writing the projection file ---------------------------------------


async def test_records_and_reads_go_on_while_another_connection_writes_the_projection(
    tmp_path: Path,
) -> None:
    path = tmp_path / "events.traceability.sqlite"
    async with _opened(path) as store:
        await _fill(store)
        held_state = (await store.get_states([ITEMS[1]]))[ITEMS[1]]
        other = connect_projection(path)
        try:
            other.execute("BEGIN IMMEDIATE")
            uncommitted = SerialState(
                epc=UNKNOWN, kind="sgtin", gtin=ITEM_GTIN, lot="L1", lifecycle=Status.COMMISSIONED
            )
            tables = SQLiteProjectionTables(other)
            tables.put_states([uncommitted])
            tables.add_facts(facts(scenario_events())[:1])  # already stored: ignored
            tables.replace_intervals([UNKNOWN], [Interval(UNKNOWN, PALLET, (NOW, "h-x"), None)])

            await _soon(store.add_recall(RecallRecord("r-new", NOW, "ops", serials=(ITEMS[3],))))
            added = await _soon(store.add_exceptions([_exception("k3", (ITEMS[2],))]))
            assert len(added) == 1
            resolved = await _soon(store.add_resolution(_resolution(added[0].exception_id, "seen")))
            assert resolved is not None
            assert len(resolved.resolutions) == 1
            await _soon(store.put_products([ProductRecord("00300010000001", "urn:x")]))
            await _soon(store.put_parties([PartyRecord("urn:epc:id:sgln:030001.000000.0")]))

            assert await _soon(store.get_states([UNKNOWN, ITEMS[1]])) == {ITEMS[1]: held_state}
            assert await _soon(store.verification_view(UNKNOWN)) is None
            recalled = await _soon(store.verification_view(ITEMS[3]))
            assert recalled is not None
            assert recalled.recalled  # the recall just written, beside the locked projection
            unknown = await _soon(store.trace_view(UNKNOWN))
            assert unknown.state is None
            assert unknown.entries == ()
            trace = await _soon(store.trace_view(ITEMS[3]))
            assert trace.recalled
            assert await _soon(store.get_recall("r-new")) is not None
            assert other.in_transaction
        finally:
            other.execute("ROLLBACK")
            other.close()
        assert await store.get_states([UNKNOWN]) == {}
        assert await store.intervals_for_children([UNKNOWN]) == {}
    assert _counts(records_path(path))["trace_recalls"] == 3


# --- the synchronous adapter ---------------------------------------------------------------


async def _projected(directory: Path) -> dict[str, Any]:
    """What the scenario's projection writes, read from a store that ran it."""
    async with _opened(directory / "source.traceability.sqlite") as source:
        await SerialStateProjection(source).apply(facts(scenario_events()))
        intervals = await source.intervals_for_children(EPCS)
        return {
            "facts": facts(scenario_events()),
            "intervals": [i for found in intervals.values() for i in found],
            "states": list((await source.get_states(EPCS)).values()),
            "traces": [await source.trace_view(epc) for epc in EPCS],
        }


def _write(tables: SQLiteProjectionTables, projected: dict[str, Any]) -> None:
    tables.write_update(projected["facts"], EPCS, projected["intervals"], projected["states"])


async def test_adapter_writes_nothing_until_its_caller_commits(tmp_path: Path) -> None:
    projected = await _projected(tmp_path)
    path = tmp_path / "events.traceability.sqlite"
    async with _opened(path) as store:
        await store.add_recall(RecallRecord("r", NOW, "ops", serials=(ITEMS[2],)))
        db = connect_projection(path)
        try:
            assert db.isolation_level is None
            tables = SQLiteProjectionTables(db)
            db.execute("BEGIN IMMEDIATE")
            _write(tables, projected)
            assert tables.new_facts(projected["facts"]) == []
            assert sorted(tables.all_fact_epcs()) == sorted(EPCS)
            assert set(tables.facts_for([PALLET])[PALLET]) <= set(projected["facts"])
            assert tables.children_ever([PALLET]) == set(CASES)
            assert tables.intervals_for_children([ITEMS[0]])
            assert db.in_transaction  # no method committed
            db.execute("ROLLBACK")
            assert await store.all_fact_epcs() == []
            assert await store.get_states(EPCS) == {}
            assert _counts(path)["trace_intervals"] == 0

            db.execute("BEGIN IMMEDIATE")
            assert len(tables.add_facts(projected["facts"])) == len(projected["facts"])
            tables.replace_intervals(EPCS, projected["intervals"])
            tables.put_states(projected["states"])
            assert db.in_transaction
            db.execute("COMMIT")
        finally:
            db.close()
        traces = [await store.trace_view(epc) for epc in EPCS]
        # The recall is this store's own: timelines and states are the projection's.
        assert [(t.entries, t.state) for t in traces] == [
            (t.entries, t.state) for t in projected["traces"]
        ]
        assert [t.recalled for t in traces] == [epc == ITEMS[2] for epc in EPCS]
        assert await store.get_recall("r") is not None

        db = connect_projection(path)
        try:
            db.execute("BEGIN IMMEDIATE")
            SQLiteProjectionTables(db).clear()
            assert db.in_transaction
            db.execute("COMMIT")
        finally:
            db.close()
        assert await store.all_fact_epcs() == []
        assert await store.get_recall("r") is not None  # clearing the projection keeps records


def test_connect_projection_makes_only_the_projection_tables(tmp_path: Path) -> None:
    path = tmp_path / "fresh.traceability.sqlite"
    db = connect_projection(path)
    try:
        assert db.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
        assert db.execute("PRAGMA synchronous").fetchone()[0] == 2
    finally:
        db.close()
    assert set(_counts(path)) == PROJECTION_TABLES
    assert not records_path(path).exists()


async def test_records_reader_answers_what_the_store_answers(tmp_path: Path) -> None:
    path = tmp_path / "trace.sqlite"
    reader = SQLiteRecordsReader(path)  # made before the store makes the file
    async with _opened(path) as store:
        await _fill(store)
        try:
            assert await reader.get_products([ITEM_GTIN, "00000000000000"]) == {
                ITEM_GTIN: (await store.get_products([ITEM_GTIN]))[ITEM_GTIN].to_dict()
            }
            assert set(await reader.get_parties([MANUFACTURER, "urn:x"])) == {MANUFACTURER}
            assert reader.with_exceptions([*EPCS, UNKNOWN]) == {ITEMS[1], ITEMS[3], CASES[1]}
        finally:
            reader.close()
