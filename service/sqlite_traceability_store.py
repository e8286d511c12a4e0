"""SQLite adapter of the traceability store: the projection in one file, records in another.

The configured file holds the projection (facts, containment intervals, serial states), which a
capture rewrites in long write transactions, possibly from another process
(``connect_projection`` and ``SQLiteProjectionTables``). Everything recorded for its own sake
(exceptions, resolutions, recalls, master data) lives in a sibling file (``records_path``),
attached to the store's connection as schema ``records``: SQLite locks a whole file for a
writer, so recalls and resolutions written while a capture projects would otherwise wait for
it. Table names are unique across both files, so statements name tables without a schema.

WAL makes a transaction atomic per file only: no write below touches both files in one
transaction (the migration copies in one and drops in the other, in that order, on purpose).
"""

from __future__ import annotations

import json
import sqlite3
from collections import defaultdict
from collections.abc import Callable, Collection, Iterator, Sequence
from datetime import datetime
from enum import Enum
from pathlib import Path
from typing import Any, Literal, TypeVar

from service.containment import EventFacts, Interval, timeline
from service.exception_records import ExceptionRecord, Hold, Resolution
from service.master_data import PartyRecord, ProductRecord
from service.serial_state import SerialState
from service.sqlite_worker import SQLiteWorker
from service.traceability_store import (
    ExceptionFilter,
    FactsCache,
    RecallRecord,
    RecallSummary,
    StateEncoder,
    TraceView,
    VerificationView,
    exception_from_dict,
    exception_to_dict,
    interval_from_row,
    memo_iso,
    recall_from_dict,
    recall_summary_from_dict,
    recall_to_dict,
    resolution_from_dict,
    resolution_to_dict,
    shipment_party_ids,
    sorted_recalls,
    state_from_dict,
)

__all__ = [
    "PROJECTION_SCHEMA",
    "SQLiteProjectionTables",
    "SQLiteRecordsReader",
    "SQLiteTraceabilityStore",
    "connect_projection",
    "records_path",
]

T = TypeVar("T")

PROJECTION_SCHEMA = """
CREATE TABLE IF NOT EXISTS trace_facts (hash_id TEXT PRIMARY KEY, body TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS trace_fact_epcs (
    epc TEXT NOT NULL, hash_id TEXT NOT NULL, PRIMARY KEY (epc, hash_id)) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS trace_intervals (
    child TEXT NOT NULL, parent TEXT NOT NULL, start_time TEXT NOT NULL, start_hash TEXT NOT NULL,
    end_time TEXT, end_hash TEXT);
CREATE INDEX IF NOT EXISTS trace_intervals_child ON trace_intervals (child);
CREATE INDEX IF NOT EXISTS trace_intervals_parent ON trace_intervals (parent);
CREATE TABLE IF NOT EXISTS serial_states (
    epc TEXT PRIMARY KEY, gtin TEXT, lot TEXT, body TEXT NOT NULL);
CREATE INDEX IF NOT EXISTS serial_states_lot ON serial_states (gtin, lot);
"""

# The records file's tables, created in the attached schema ``records`` (an index's table is
# named without a schema: it is always in the index's own).
_RECORDS_SCHEMA = """
CREATE TABLE IF NOT EXISTS records.trace_exceptions (
    exception_id TEXT PRIMARY KEY, key TEXT NOT NULL UNIQUE, type TEXT NOT NULL,
    partner_id TEXT, created_at TEXT NOT NULL, body TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS records.trace_exception_epcs (
    exception_id TEXT NOT NULL, epc TEXT NOT NULL, PRIMARY KEY (epc, exception_id));
CREATE TABLE IF NOT EXISTS records.trace_resolutions (
    seq INTEGER PRIMARY KEY AUTOINCREMENT, exception_id TEXT NOT NULL, body TEXT NOT NULL);
CREATE INDEX IF NOT EXISTS records.trace_resolutions_exception ON trace_resolutions (exception_id);
CREATE TABLE IF NOT EXISTS records.trace_recalls (
    recall_id TEXT PRIMARY KEY, gtin TEXT, lot TEXT, body TEXT NOT NULL);
-- Every verification and trace asks whether a lot recall covers its serial: a search, not a
-- scan of six years of recalls.
CREATE INDEX IF NOT EXISTS records.trace_recalls_lot ON trace_recalls (gtin, lot);
CREATE TABLE IF NOT EXISTS records.trace_recall_serials (
    epc TEXT NOT NULL, recall_id TEXT NOT NULL, PRIMARY KEY (epc, recall_id));
CREATE TABLE IF NOT EXISTS records.trace_recall_heads (
    recall_id TEXT PRIMARY KEY, body TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS records.master_products (gtin TEXT PRIMARY KEY, body TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS records.master_parties (party_id TEXT PRIMARY KEY, body TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS records.pending_projections (
    document_id TEXT PRIMARY KEY, capture_id TEXT NOT NULL, named_at TEXT NOT NULL);
"""

_SCHEMA = PROJECTION_SCHEMA + _RECORDS_SCHEMA

_PROJECTION_TABLES = ("trace_facts", "trace_fact_epcs", "trace_intervals", "serial_states")
_RECORD_TABLES = (
    "trace_exceptions",
    "trace_exception_epcs",
    "trace_resolutions",
    "trace_recalls",
    "trace_recall_serials",
    "trace_recall_heads",
    "master_products",
    "master_parties",
    "pending_projections",
)
_IN_MEMORY = ("", ":memory:")


def records_path(path: Path | str) -> Path:
    """The records file beside projection file ``path``: ``events.traceability.sqlite`` ->
    ``events.traceability.records.sqlite``. Both files make the store: back up both."""
    path = Path(path)
    return path.with_suffix(".records" + path.suffix)


def _records_file(path: Path | str) -> str:
    # An in-memory (or temporary) main database gets an in-memory records database.
    return str(path) if str(path) in _IN_MEMORY else str(records_path(path))


def connect_projection(path: Path | str, *, timeout: float = 30.0) -> sqlite3.Connection:
    """A connection to the projection file only (WAL, synchronous FULL, schema created), with
    ``isolation_level=None``: the caller runs its own BEGIN IMMEDIATE / COMMIT / ROLLBACK.

    The store holding the same file must have been opened once before (it moves records out
    of a file written before the split); this connection never touches the records file.
    """
    db = sqlite3.connect(str(path), timeout=timeout, isolation_level=None)
    try:
        db.execute("PRAGMA journal_mode=WAL")
        db.execute("PRAGMA synchronous=FULL")
        db.executescript(PROJECTION_SCHEMA)
    except BaseException:
        db.close()
        raise
    return db


# SQLite's default limit on host parameters is 999 in old builds; stay under it.
_BATCH = 900


def _placeholders(count: int) -> str:
    return ",".join("?" * count)


def _select_in(select: str, column: str, count: int, tail: str = "") -> str:
    """``select`` restricted to ``column IN (?, ...)``; only our own constant SQL goes in."""
    return f"{select} WHERE {column} IN ({_placeholders(count)}){tail}"


def _batches(items: Collection[str]) -> list[list[str]]:
    listed = list(items)
    return [listed[i : i + _BATCH] for i in range(0, len(listed), _BATCH)]


class SQLiteTraceabilityStore:
    """Traceability store on two SQLite files: the projection at ``path`` and the records at
    ``records_path(path)`` (``":memory:"`` keeps both in memory, for tests)."""

    def __init__(self, path: Path | str) -> None:
        self._worker = SQLiteWorker(
            path, _SCHEMA, name="trace-sqlite", attach={"records": _records_file(path)}
        )
        # Only touched on the worker thread, like the connection.
        self._cache = FactsCache()
        self._view_reader = _ViewReader(path)

    async def _run(self, work: Callable[[sqlite3.Connection], T]) -> T:
        return await self._worker.run(work)

    async def _tables(self, work: Callable[[SQLiteProjectionTables], T]) -> T:
        return await self._run(lambda db: work(SQLiteProjectionTables(db, self._cache)))

    async def open(self) -> None:
        await self._worker.open()
        # Before anything reads: until then a table name still finds the old copy first.
        stray = await self._run(_stray_record_tables)
        if stray:
            await self._run(lambda db: _copy_records(db, stray))
            await self._run(lambda db: _drop_records(db, stray))

    async def close(self) -> None:
        self._view_reader.close()
        await self._worker.close()

    # --- projection ------------------------------------------------------------------

    async def add_facts(self, facts: Sequence[EventFacts]) -> list[EventFacts]:
        return await self._tables(lambda tables: tables.add_facts(facts))

    async def new_facts(self, facts: Sequence[EventFacts]) -> list[EventFacts]:
        return await self._tables(lambda tables: tables.new_facts(facts))

    async def write_update(
        self,
        facts: Sequence[EventFacts],
        children: Collection[str],
        intervals: Sequence[Interval],
        states: Sequence[SerialState],
    ) -> None:
        await self._tables(lambda tables: tables.write_update(facts, children, intervals, states))

    async def facts_for(self, epcs: Collection[str]) -> dict[str, list[EventFacts]]:
        return await self._tables(lambda tables: tables.facts_for(epcs))

    async def all_fact_epcs(self) -> list[str]:
        return await self._tables(lambda tables: tables.all_fact_epcs())

    async def intervals_for_children(self, children: Collection[str]) -> dict[str, list[Interval]]:
        return await self._tables(lambda tables: tables.intervals_for_children(children))

    async def children_ever(self, parents: Collection[str]) -> set[str]:
        return await self._tables(lambda tables: tables.children_ever(parents))

    async def replace_intervals(
        self, children: Collection[str], intervals: Sequence[Interval]
    ) -> None:
        await self._tables(lambda tables: tables.replace_intervals(children, intervals))

    async def put_states(self, states: Sequence[SerialState]) -> None:
        await self._tables(lambda tables: tables.put_states(states))

    async def clear_projection(self) -> None:
        await self._tables(lambda tables: tables.clear())

    async def get_states(self, epcs: Collection[str]) -> dict[str, SerialState]:
        return await self._run(lambda db: _states(db, epcs))

    async def states_by_lot(self, gtin: str, lot: str) -> list[SerialState]:
        def work(db: sqlite3.Connection) -> list[SerialState]:
            rows = db.execute(
                "SELECT body FROM serial_states WHERE gtin = ? AND lot = ? ORDER BY epc",
                (gtin, lot),
            )
            return [state_from_dict(json.loads(body)) for (body,) in rows]

        return await self._run(work)

    # --- exceptions ------------------------------------------------------------------

    async def add_exceptions(self, records: Sequence[ExceptionRecord]) -> list[ExceptionRecord]:
        def work(db: sqlite3.Connection) -> list[ExceptionRecord]:
            inserted: list[ExceptionRecord] = []
            for record in records:
                cursor = db.execute(
                    "INSERT OR IGNORE INTO trace_exceptions (exception_id, key, type, partner_id, "
                    "created_at, body) VALUES (?, ?, ?, ?, ?, ?)",
                    (
                        record.exception_id,
                        record.key,
                        record.type.value,
                        record.partner_id,
                        record.created_at.isoformat(),
                        json.dumps(exception_to_dict(record)),
                    ),
                )
                if cursor.rowcount:
                    inserted.append(record)
                    db.executemany(
                        "INSERT OR IGNORE INTO trace_exception_epcs (exception_id, epc) "
                        "VALUES (?, ?)",
                        [(record.exception_id, epc) for epc in set(record.identifiers)],
                    )
            return inserted

        return await self._run(work)

    async def add_resolution(self, resolution: Resolution) -> ExceptionRecord | None:
        def work(db: sqlite3.Connection) -> bool:
            exists = db.execute(
                "SELECT 1 FROM trace_exceptions WHERE exception_id = ?",
                (resolution.exception_id,),
            ).fetchone()
            if exists:
                db.execute(
                    "INSERT INTO trace_resolutions (exception_id, body) VALUES (?, ?)",
                    (resolution.exception_id, json.dumps(resolution_to_dict(resolution))),
                )
            return exists is not None

        if not await self._run(work):
            return None
        return await self.get_exception(resolution.exception_id)

    async def get_exception(self, exception_id: str) -> ExceptionRecord | None:
        found = await self._exceptions("exception_id = ?", [exception_id], 1)
        return found[0] if found else None

    async def list_exceptions(self, query: ExceptionFilter) -> list[ExceptionRecord]:
        clauses: list[str] = []
        params: list[str] = []
        if query.type is not None:
            clauses.append("type = ?")
            params.append(query.type.value)
        if query.partner_id is not None:
            clauses.append("partner_id = ?")
            params.append(query.partner_id)
        if query.identifier is not None:
            clauses.append(
                "exception_id IN (SELECT exception_id FROM trace_exception_epcs WHERE epc = ?)"
            )
            params.append(query.identifier)
        where = " AND ".join(clauses) or "1 = 1"
        # Status and determination derive from resolutions: filtered after loading them.
        limit = None if query.derived else query.limit
        records = await self._exceptions(where, params, limit)
        if query.derived:
            records = [r for r in records if query.keeps(r)][: query.limit]
        return records

    async def _exceptions(
        self, where: str, params: Sequence[str], limit: int | None
    ) -> list[ExceptionRecord]:
        return await self._run(lambda db: _exceptions(db, where, params, limit))

    async def holds_for(self, epcs: Collection[str]) -> dict[str, set[Hold]]:
        return await self._run(lambda db: _holds(db, epcs))

    # --- recalls ---------------------------------------------------------------------

    async def add_recall(self, recall: RecallRecord) -> None:
        def work(db: sqlite3.Connection) -> None:
            db.execute(
                "INSERT INTO trace_recalls (recall_id, gtin, lot, body) VALUES (?, ?, ?, ?)",
                (recall.recall_id, recall.gtin, recall.lot, json.dumps(recall_to_dict(recall))),
            )
            db.executemany(
                "INSERT OR IGNORE INTO trace_recall_serials (epc, recall_id) VALUES (?, ?)",
                [(epc, recall.recall_id) for epc in recall.serials],
            )
            # The recall without its serials, so a trace reads a few bytes, not the lot's list.
            head = {k: v for k, v in recall_to_dict(recall).items() if k != "serials"}
            db.execute(
                "INSERT INTO trace_recall_heads (recall_id, body) VALUES (?, ?)",
                (recall.recall_id, json.dumps(head)),
            )

        await self._run(work)

    async def get_recall(self, recall_id: str) -> RecallRecord | None:
        def work(db: sqlite3.Connection) -> RecallRecord | None:
            row = db.execute(
                "SELECT body FROM trace_recalls WHERE recall_id = ?", (recall_id,)
            ).fetchone()
            return recall_from_dict(json.loads(row[0])) if row else None

        return await self._run(work)

    async def recalled(self, states: Sequence[SerialState]) -> set[str]:
        return await self._run(lambda db: _recalled(db, states))

    async def recalls_of(self, state: SerialState) -> list[RecallSummary]:
        return await self._run(lambda db: _recalls_of(db, state))

    async def verification_view(self, *spellings: str) -> VerificationView | None:
        # Read on the caller's thread (the event loop) through a read-only connection: the
        # one indexed point lookup costs ~10-30 us with its pages cached, while a hop to the
        # worker thread and back costs the loop ~100 us (future, self-pipe wake-up, GIL
        # hand-over) and the worker's thread as much again. WAL lets it read beside the
        # writer. The worker reads instead when the reader cannot (an in-memory store,
        # SQLite busy) or when the serial has exception records (their holds take more
        # statements, read in one transaction there).
        view = self._view_reader.view(*spellings)
        if view is not _Reader.ON_WORKER:
            return view
        return await self._run(lambda db: _verification_view(db, spellings))

    # --- trace ---------------------------------------------------------------------

    async def trace_view(self, epc: str) -> TraceView:
        # One worker-thread call: a trace used to take about eleven, each a hop between the
        # event loop and this thread, and the hops made its tail latency.
        return await self._run(lambda db: _trace_view(db, self._cache, epc))

    # --- master data -----------------------------------------------------------------

    async def put_products(self, products: Sequence[ProductRecord]) -> None:
        await self._put("master_products", "gtin", [(p.gtin, p.to_dict()) for p in products])

    async def put_parties(self, parties: Sequence[PartyRecord]) -> None:
        await self._put("master_parties", "party_id", [(p.party_id, p.to_dict()) for p in parties])

    async def _put(self, table: str, column: str, rows: list[tuple[str, dict[str, Any]]]) -> None:
        def work(db: sqlite3.Connection) -> None:
            # Newest master data wins: a sender's later document corrects its earlier one.
            db.executemany(
                f"INSERT OR REPLACE INTO {table} ({column}, body) VALUES (?, ?)",  # noqa: S608
                [(key, json.dumps(body)) for key, body in rows],
            )

        await self._run(work)

    async def add_pending_projection(self, document_id: str, capture_id: str, at: datetime) -> None:
        await self._run(
            lambda db: db.execute(
                "INSERT OR IGNORE INTO records.pending_projections "
                "(document_id, capture_id, named_at) VALUES (?, ?, ?)",
                (document_id, capture_id, at.isoformat()),
            )
        )

    async def pending_projections(self) -> list[tuple[str, str]]:
        rows = await self._run(
            lambda db: db.execute(
                "SELECT document_id, capture_id FROM records.pending_projections "
                "ORDER BY named_at, document_id"
            ).fetchall()
        )
        return [(document_id, capture_id) for document_id, capture_id in rows]

    async def clear_pending_projections(self, document_ids: Collection[str]) -> None:
        def work(db: sqlite3.Connection) -> None:
            for batch in _batches(document_ids):
                db.execute(
                    _select_in(
                        "DELETE FROM records.pending_projections", "document_id", len(batch)
                    ),
                    batch,
                )

        await self._run(work)

    async def get_products(self, gtins: Collection[str]) -> dict[str, ProductRecord]:
        rows = await self._get("master_products", "gtin", gtins)
        return {key: ProductRecord(**body) for key, body in rows.items()}

    async def get_parties(self, party_ids: Collection[str]) -> dict[str, PartyRecord]:
        rows = await self._get("master_parties", "party_id", party_ids)
        return {key: PartyRecord(**body) for key, body in rows.items()}

    async def _get(
        self, table: str, column: str, keys: Collection[str]
    ) -> dict[str, dict[str, Any]]:
        return await self._run(lambda db: _get(db, table, column, keys))


class SQLiteProjectionTables:
    """The projection's tables on a connection to the projection file, synchronous: the
    store's worker thread uses it, and so does a process projecting a capture on its own
    connection (``connect_projection``).

    No method begins, commits or rolls back: the caller owns the transaction, so a whole
    capture's projection can be one transaction committed after the capture's.
    """

    def __init__(self, db: sqlite3.Connection, cache: FactsCache | None = None) -> None:
        self._db = db
        self._cache = cache if cache is not None else FactsCache()

    def new_facts(self, facts: Sequence[EventFacts]) -> list[EventFacts]:
        return _new_facts(self._db, facts)

    def add_facts(self, facts: Sequence[EventFacts]) -> list[EventFacts]:
        return _add_facts(self._db, self._cache, facts)

    def write_update(
        self,
        facts: Sequence[EventFacts],
        children: Collection[str],
        intervals: Sequence[Interval],
        states: Sequence[SerialState],
    ) -> None:
        # In the caller's one transaction: one sync to disk per capture batch, not three.
        _add_facts(self._db, self._cache, facts)
        _replace_intervals(self._db, children, intervals)
        _put_states(self._db, states)

    def facts_for(self, epcs: Collection[str]) -> dict[str, list[EventFacts]]:
        return _facts_for(self._db, self._cache, epcs)

    def all_fact_epcs(self) -> list[str]:
        return [row[0] for row in self._db.execute("SELECT DISTINCT epc FROM trace_fact_epcs")]

    def intervals_for_children(self, children: Collection[str]) -> dict[str, list[Interval]]:
        return _intervals(self._db, "child", children)

    def children_ever(self, parents: Collection[str]) -> set[str]:
        return _children_ever(self._db, parents)

    def replace_intervals(self, children: Collection[str], intervals: Sequence[Interval]) -> None:
        _replace_intervals(self._db, children, intervals)

    def put_states(self, states: Sequence[SerialState]) -> None:
        _put_states(self._db, states)

    def clear(self) -> None:
        for table in _PROJECTION_TABLES:
            self._db.execute(f"DELETE FROM {table}")  # noqa: S608 -- fixed table names
        self._cache.clear()


# --- moving records out of a projection file written before the split ----------------------


def _stray_record_tables(db: sqlite3.Connection) -> list[str]:
    """The record tables still in the projection file (main schema), in the order copied."""
    rows = db.execute(
        "SELECT name FROM main.sqlite_master WHERE type = 'table' AND name IN "  # noqa: S608
        f"({_placeholders(len(_RECORD_TABLES))})",
        _RECORD_TABLES,
    )
    present = {name for (name,) in rows}
    return [table for table in _RECORD_TABLES if table in present]


def _copy_records(db: sqlite3.Connection, tables: Sequence[str]) -> None:
    """Every row of ``tables`` into the records file, in one transaction that writes only it.

    INSERT OR IGNORE makes a repeat after a crash before ``_drop_records`` a no-op for rows
    already copied; ``trace_resolutions.seq`` is copied as is, as the ledger names
    resolutions by it. The projection's own tables are never copied.
    """
    for table in tables:
        columns = ", ".join(row[1] for row in db.execute(f"PRAGMA records.table_info({table})"))
        db.execute(
            f"INSERT OR IGNORE INTO records.{table} ({columns}) "  # noqa: S608 -- our names
            f"SELECT {columns} FROM main.{table}"
        )


def _drop_records(db: sqlite3.Connection, tables: Sequence[str]) -> None:
    """Drop the copied tables from the projection file, in one transaction that writes only
    it, committed after the copy's: a crash in between leaves both, and the next open copies
    (ignoring every row) and drops again."""
    db.execute("BEGIN")
    for table in tables:
        db.execute(f"DROP TABLE main.{table}")


# --- work run on the worker thread (shared by single calls and combined ones) ---------------


def _new_facts(db: sqlite3.Connection, facts: Sequence[EventFacts]) -> list[EventFacts]:
    """The facts not stored yet, in order, the first of equal hashes (as inserting one by one
    with INSERT OR IGNORE reported them). One query: a statement per fact cost more than the
    rest of storing it."""
    seen = set(_existing(db, [f.hash_id for f in facts]))
    fresh: list[EventFacts] = []
    for item in facts:
        if item.hash_id not in seen:
            seen.add(item.hash_id)
            fresh.append(item)
    return fresh


def _add_facts(
    db: sqlite3.Connection, cache: FactsCache, facts: Sequence[EventFacts]
) -> list[EventFacts]:
    inserted = _new_facts(db, facts)
    # Rows from generators, made as SQLite takes them: a list of every row of a batch kept
    # tens of thousands of tuples alive at once, which set off cyclic collections that walk
    # the whole heap (so do the other writers below).
    db.executemany(
        "INSERT OR IGNORE INTO trace_facts (hash_id, body) VALUES (?, ?)",
        ((item.hash_id, item.to_json()) for item in inserted),
    )
    for item in inserted:
        cache.put(item)
    db.executemany(
        "INSERT OR IGNORE INTO trace_fact_epcs (epc, hash_id) VALUES (?, ?)",
        ((epc, item.hash_id) for item in inserted for epc in set(item.names())),
    )
    return inserted


def _replace_intervals(
    db: sqlite3.Connection, children: Collection[str], intervals: Sequence[Interval]
) -> None:
    for batch in _batches(children):
        db.execute(_select_in("DELETE FROM trace_intervals", "child", len(batch)), batch)
    db.executemany(
        "INSERT INTO trace_intervals (child, parent, start_time, start_hash, end_time, "
        "end_hash) VALUES (?, ?, ?, ?, ?, ?)",
        _interval_rows(intervals),
    )


def _interval_rows(
    intervals: Sequence[Interval],
) -> Iterator[tuple[str, str, str | None, str, str | None, str | None]]:
    # Positional rows, not interval_to_row's dicts: binding by name looked up every value.
    iso = memo_iso()
    for i in intervals:
        end = i.end
        if end is None:
            yield (i.child, i.parent, iso(i.start[0]), i.start[1], None, None)
        else:
            yield (i.child, i.parent, iso(i.start[0]), i.start[1], iso(end[0]), end[1])


def _put_states(db: sqlite3.Connection, states: Sequence[SerialState]) -> None:
    encoder = StateEncoder()
    db.executemany(
        "INSERT OR REPLACE INTO serial_states (epc, gtin, lot, body) VALUES (?, ?, ?, ?)",
        ((s.epc, s.gtin, s.lot, encoder.encode(s)) for s in states),
    )


def _facts_for(
    db: sqlite3.Connection, cache: FactsCache, epcs: Collection[str], *, joined: bool = False
) -> dict[str, list[EventFacts]]:
    """Facts by identifier; bodies are decoded only for facts not in ``cache``.

    ``joined`` reads the bodies with the index rows in one statement (a trace: few rows,
    mostly not cached); otherwise bodies are read in a second statement for the misses only
    (the projection: many rows, mostly cached).
    """
    rows: list[tuple[str, str, str | None]] = []
    select = (
        "SELECT e.epc, e.hash_id, f.body FROM trace_fact_epcs e "
        "JOIN trace_facts f ON f.hash_id = e.hash_id"
        if joined
        else "SELECT epc, hash_id, NULL FROM trace_fact_epcs"
    )
    for batch in _batches(epcs):
        rows.extend(
            db.execute(_select_in(select, "epc" if not joined else "e.epc", len(batch)), batch)
        )
    # Hits are taken first: decoding misses puts them in the cache, which may evict a hit.
    known: dict[str, EventFacts] = {}
    bodies: dict[str, str | None] = {}
    for _, hash_id, body in rows:
        hit = cache.get(hash_id)
        if hit is None:
            bodies[hash_id] = body
        else:
            known[hash_id] = hit
    if not joined:
        bodies.update(_fact_bodies(db, list(bodies)))
    for hash_id, body in bodies.items():
        if body is not None:
            known[hash_id] = decoded = EventFacts.from_json(body)
            cache.put(decoded)
    found: dict[str, list[EventFacts]] = defaultdict(list)
    for epc, hash_id, _ in rows:
        item = known.get(hash_id)
        if item is not None:  # as an inner join: an index row without facts is skipped
            found[epc].append(item)
    return dict(found)


def _existing(db: sqlite3.Connection, hash_ids: list[str]) -> list[str]:
    found: list[str] = []
    for batch in _batches(hash_ids):
        rows = db.execute(
            _select_in("SELECT hash_id FROM trace_facts", "hash_id", len(batch)), batch
        )
        found.extend(hash_id for (hash_id,) in rows)
    return found


def _fact_bodies(db: sqlite3.Connection, hash_ids: list[str]) -> dict[str, str]:
    found: dict[str, str] = {}
    for batch in _batches(hash_ids):
        found.update(
            db.execute(
                _select_in("SELECT hash_id, body FROM trace_facts", "hash_id", len(batch)), batch
            )
        )
    return found


def _states(db: sqlite3.Connection, epcs: Collection[str]) -> dict[str, SerialState]:
    found: dict[str, SerialState] = {}
    for batch in _batches(epcs):
        rows = db.execute(_select_in("SELECT body FROM serial_states", "epc", len(batch)), batch)
        for (body,) in rows:
            state = state_from_dict(json.loads(body))
            found[state.epc] = state
    return found


def _exceptions(
    db: sqlite3.Connection, where: str, params: Sequence[str], limit: int | None
) -> list[ExceptionRecord]:
    sql = f"SELECT body FROM trace_exceptions WHERE {where} ORDER BY created_at, key"  # noqa: S608
    if limit is not None:
        sql += f" LIMIT {int(limit)}"
    bodies = [json.loads(body) for (body,) in db.execute(sql, params)]
    ids = [body["exception_id"] for body in bodies]
    resolutions: dict[str, list[Resolution]] = defaultdict(list)
    for batch in _batches(ids):
        rows = db.execute(
            _select_in(
                "SELECT body FROM trace_resolutions", "exception_id", len(batch), " ORDER BY seq"
            ),
            batch,
        )
        for (body,) in rows:
            resolution = resolution_from_dict(json.loads(body))
            resolutions[resolution.exception_id].append(resolution)
    return [exception_from_dict(b, resolutions[b["exception_id"]]) for b in bodies]


def _holds(db: sqlite3.Connection, epcs: Collection[str]) -> dict[str, set[Hold]]:
    by_epc: dict[str, list[str]] = defaultdict(list)
    for batch in _batches(epcs):
        rows = db.execute(
            _select_in("SELECT epc, exception_id FROM trace_exception_epcs", "epc", len(batch)),
            batch,
        )
        for epc, exception_id in rows:
            by_epc[epc].append(exception_id)
    ids = {i for found in by_epc.values() for i in found}
    records = {
        r.exception_id: r
        for batch in _batches(ids)
        for r in _exceptions(db, f"exception_id IN ({_placeholders(len(batch))})", batch, None)
    }
    holds: dict[str, set[Hold]] = {}
    for epc, exception_ids in by_epc.items():
        kinds = {records[i].hold for i in exception_ids if i in records} - {Hold.NONE}
        if kinds:
            holds[epc] = kinds
    return holds


def _recalled_one(db: sqlite3.Connection, state: SerialState) -> bool:
    """``_recalled(db, [state])`` in one statement, without reading every lot recall."""
    row = db.execute(
        "SELECT EXISTS (SELECT 1 FROM trace_recalls WHERE lot IS NOT NULL AND gtin IS ? "
        "AND lot = ?) OR EXISTS (SELECT 1 FROM trace_recall_serials WHERE epc = ?)",
        (state.gtin, state.lot, state.epc),
    ).fetchone()
    return bool(row[0])


# State, recall and whether exception records exist, in one statement (one snapshot).
_VIEW = (
    "SELECT s.body, EXISTS (SELECT 1 FROM trace_recalls r WHERE r.lot IS NOT NULL"
    " AND r.gtin IS s.gtin AND r.lot = s.lot)"
    " OR EXISTS (SELECT 1 FROM trace_recall_serials WHERE epc = ?1),"
    " EXISTS (SELECT 1 FROM trace_exception_epcs WHERE epc = ?1)"
    " FROM serial_states s WHERE s.epc = ?1"
)


class _Reader(Enum):
    # What the read-only reader answers when the worker thread must read instead.
    ON_WORKER = "on worker"


def _first_stored(db: sqlite3.Connection, spellings: Sequence[str]) -> str | None:
    """The first of ``spellings`` that has state."""
    if len(spellings) == 1:
        return spellings[0]  # _VIEW answers no row for it if it has none
    stored = {
        epc
        for (epc,) in db.execute(
            _select_in("SELECT epc FROM serial_states", "epc", len(spellings)), list(spellings)
        )
    }
    return next((s for s in spellings if s in stored), None)


def _verification_view(db: sqlite3.Connection, spellings: Sequence[str]) -> VerificationView | None:
    epc = _first_stored(db, spellings)
    row = db.execute(_VIEW, (epc,)).fetchone() if epc is not None else None
    if row is None or epc is None:
        return None
    holds = frozenset(_holds(db, [epc]).get(epc, ())) if row[2] else frozenset[Hold]()
    return _view_of(row[0], row[1], holds)


def _view_of(body: str, recalled: int, holds: frozenset[Hold]) -> VerificationView:
    state = state_from_dict(json.loads(body))
    return VerificationView(state, bool(recalled) or state.recalled_in_data, holds)


_READER_MMAP_BYTES = 1 << 30


class _ViewReader:
    """A read-only connection to the store's files for ``verification_view`` on the caller's
    thread; opened at the first use (the worker has made the schema and moved old records
    out of the projection file by then)."""

    def __init__(self, path: Path | str) -> None:
        # An in-memory database is private to the worker's connection.
        self._path = None if str(path) in _IN_MEMORY else Path(path)
        self._db: sqlite3.Connection | None = None

    def view(self, *spellings: str) -> VerificationView | Literal[_Reader.ON_WORKER] | None:
        db = self._db or self._connect()
        if db is None:
            return _Reader.ON_WORKER
        try:
            epc = _first_stored(db, spellings)
            # fetchall steps the statement to its end, which ends its read transaction at
            # once: a statement left open would pin an old snapshot of the file.
            rows = db.execute(_VIEW, (epc,)).fetchall() if epc is not None else []
        except sqlite3.OperationalError:
            # timeout=0: busy answers at once; the worker waits for the lock instead.
            return _Reader.ON_WORKER
        if not rows:
            return None
        row = rows[0]
        if row[2]:
            return _Reader.ON_WORKER
        return _view_of(row[0], row[1], frozenset())

    def _connect(self) -> sqlite3.Connection | None:
        if self._path is None:
            return None
        uri = _read_only_uri(self._path)
        records = _read_only_uri(records_path(self._path))
        try:
            db = sqlite3.connect(uri, uri=True, timeout=0, check_same_thread=False)
            # The view reads recalls and exception records beside the state.
            db.execute("ATTACH DATABASE ? AS records", (records,))
            db.execute("PRAGMA query_only=1")
            # Random serials touch random B-tree pages: mapped pages are read in place, with
            # no read() call and copy per page (measured ~25 -> ~18 us per look-up at 1M).
            db.execute(f"PRAGMA mmap_size={_READER_MMAP_BYTES}")
        except sqlite3.Error:
            self._path = None
            return None
        self._db = db
        return db

    def close(self) -> None:
        if self._db is not None:
            self._db.close()
            self._db = None


def _read_only_uri(path: Path) -> str:
    return f"{path.resolve().as_uri()}?mode=ro"


class SQLiteRecordsReader:
    """The records file of the store at projection file ``path``, read-only on the caller's
    thread: what the projection worker's checks look up while its transaction is open (master
    data stored earlier, which serials have exception records). Opened at the first look-up:
    the store makes the file when it opens, which may be after the reader is made."""

    def __init__(self, path: Path | str) -> None:
        self._path = records_path(path)
        self._db: sqlite3.Connection | None = None

    async def get_products(self, gtins: Collection[str]) -> dict[str, dict[str, Any]]:
        return _get(self._connection(), "master_products", "gtin", gtins)

    async def get_parties(self, party_ids: Collection[str]) -> dict[str, dict[str, Any]]:
        return _get(self._connection(), "master_parties", "party_id", party_ids)

    def with_exceptions(self, epcs: Collection[str]) -> set[str]:
        """Those of ``epcs`` that exception records name."""
        db = self._connection()
        found: set[str] = set()
        for batch in _batches(epcs):
            rows = db.execute(
                _select_in("SELECT DISTINCT epc FROM trace_exception_epcs", "epc", len(batch)),
                batch,
            )
            found.update(epc for (epc,) in rows)
        return found

    def close(self) -> None:
        if self._db is not None:
            self._db.close()
            self._db = None

    def _connection(self) -> sqlite3.Connection:
        if self._db is None:
            self._db = sqlite3.connect(_read_only_uri(self._path), uri=True)
        return self._db


def _recalls_of(db: sqlite3.Connection, state: SerialState) -> list[RecallSummary]:
    ids = [
        recall_id
        for (recall_id,) in db.execute(
            "SELECT recall_id FROM trace_recalls WHERE lot IS NOT NULL AND gtin IS ? AND lot = ? "
            "UNION SELECT recall_id FROM trace_recall_serials WHERE epc = ?",
            (state.gtin, state.lot, state.epc),
        )
    ]
    if not ids:
        return []  # most traces: one statement, as the recall check before it
    heads = dict(
        db.execute(
            _select_in("SELECT recall_id, body FROM trace_recall_heads", "recall_id", len(ids)),
            ids,
        )
    )
    missing = [i for i in ids if i not in heads]
    if missing:
        # Recalls recorded before heads were kept: their whole body, read once per trace.
        heads.update(
            db.execute(
                _select_in("SELECT recall_id, body FROM trace_recalls", "recall_id", len(missing)),
                missing,
            )
        )
    return sorted_recalls([recall_summary_from_dict(json.loads(b)) for b in heads.values()])


def _recalled(db: sqlite3.Connection, states: Sequence[SerialState]) -> set[str]:
    lots = {
        (gtin, lot)
        for gtin, lot in db.execute("SELECT gtin, lot FROM trace_recalls WHERE lot IS NOT NULL")
    }
    hit = {s.epc for s in states if (s.gtin, s.lot) in lots}
    for batch in _batches([s.epc for s in states]):
        rows = db.execute(
            _select_in("SELECT DISTINCT epc FROM trace_recall_serials", "epc", len(batch)), batch
        )
        hit.update(epc for (epc,) in rows)
    return hit


def _intervals(
    db: sqlite3.Connection, column: str, keys: Collection[str]
) -> dict[str, list[Interval]]:
    db.row_factory = sqlite3.Row
    found: dict[str, list[Interval]] = defaultdict(list)
    try:
        for batch in _batches(keys):
            rows = db.execute(
                "SELECT * FROM trace_intervals "  # noqa: S608 -- column is ours
                f"WHERE {column} IN ({_placeholders(len(batch))})",
                batch,
            )
            for row in rows:
                found[row[column]].append(interval_from_row(dict(row)))
    finally:
        db.row_factory = None
    return dict(found)


def _children_ever(db: sqlite3.Connection, parents: Collection[str]) -> set[str]:
    # The children only: decoding whole intervals to take their child was most of the cost.
    found: set[str] = set()
    for batch in _batches(parents):
        rows = db.execute(
            _select_in("SELECT child FROM trace_intervals", "parent", len(batch)), batch
        )
        found.update(child for (child,) in rows)
    return found


def _get(
    db: sqlite3.Connection, table: str, column: str, keys: Collection[str]
) -> dict[str, dict[str, Any]]:
    found: dict[str, dict[str, Any]] = {}
    for batch in _batches(keys):
        rows = db.execute(
            f"SELECT {column}, body FROM {table} "  # noqa: S608
            f"WHERE {column} IN ({_placeholders(len(batch))})",
            batch,
        )
        found.update((key, json.loads(body)) for key, body in rows)
    return found


def _trace_view(db: sqlite3.Connection, cache: FactsCache, epc: str) -> TraceView:
    """What ``gather_trace_view`` reads, on the worker thread: the timeline's facts and
    intervals level by level up the containers, then state, recall, holds, master data."""
    facts: dict[str, list[EventFacts]] = {}
    intervals: dict[str, list[Interval]] = {}
    frontier = {epc}
    while frontier:
        found = _intervals(db, "child", frontier)
        found_facts = _facts_for(db, cache, frontier, joined=True)
        for name in frontier:
            intervals[name] = found.get(name, [])
            facts[name] = found_facts.get(name, [])
        parents = {i.parent for name in frontier for i in intervals[name]}
        frontier = parents - intervals.keys()
    entries = timeline(epc, lambda e: facts.get(e, ()), lambda e: intervals.get(e, ()))
    state = _states(db, [epc]).get(epc)
    recalls = tuple(_recalls_of(db, state)) if state is not None else ()
    holds = frozenset(_holds(db, [epc]).get(epc, ()))
    parties = _get(db, "master_parties", "party_id", shipment_party_ids(entries))
    gtin = state.gtin if state is not None else None
    products = _get(db, "master_products", "gtin", [gtin] if gtin else [])
    return TraceView(
        entries=tuple(entries),
        state=state,
        recalled=bool(recalls),
        holds=holds,
        parties={key: PartyRecord(**body) for key, body in parties.items()},
        products={key: ProductRecord(**body) for key, body in products.items()},
        recalls=recalls,
    )
