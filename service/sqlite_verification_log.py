"""SQLite verification log: one append-only table; triggers refuse every UPDATE and DELETE;
concurrent appends are committed in groups, each caller answered once its entry is durable."""

from __future__ import annotations

import asyncio
import json
import sqlite3
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any, TypeVar

from service.ledger_records import CANONICAL_JSON, canonical_digest
from service.verification_log import EQUALITY_FILTERS, LogFilter, entry_from_dict
from verification.ports import VerificationLogEntry

__all__ = ["SQLiteVerificationLog"]

T = TypeVar("T")

_SCHEMA = """
CREATE TABLE IF NOT EXISTS verifications (
    seq INTEGER PRIMARY KEY AUTOINCREMENT,
    entry_id TEXT NOT NULL UNIQUE,
    time TEXT NOT NULL,
    direction TEXT NOT NULL,
    requestor TEXT NOT NULL,
    req_gln TEXT,
    corr_uuid TEXT,
    gtin TEXT,
    serial TEXT,
    lot TEXT,
    body TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS verifications_time ON verifications (time);
CREATE INDEX IF NOT EXISTS verifications_product ON verifications (gtin, serial);
CREATE INDEX IF NOT EXISTS verifications_corr ON verifications (corr_uuid);
CREATE TRIGGER IF NOT EXISTS verifications_no_update BEFORE UPDATE ON verifications
BEGIN SELECT RAISE(ABORT, 'the verification log is append-only'); END;
CREATE TRIGGER IF NOT EXISTS verifications_no_delete BEFORE DELETE ON verifications
BEGIN SELECT RAISE(ABORT, 'the verification log is append-only'); END;
"""

_INSERT = (
    "INSERT INTO verifications (entry_id, time, direction, requestor, req_gln,"
    " corr_uuid, gtin, serial, lot, body) VALUES (?,?,?,?,?,?,?,?,?,?)"
)

Row = tuple[Any, ...]


def _row(entry: VerificationLogEntry) -> tuple[Row, str]:
    """The columns, with the body (``entry_to_dict`` in its canonical JSON), and the body's
    SHA-256: one serialization gives both what is stored and what the ledger leaf commits to.
    Written out field by field in the dataclass's order: one per verification (a
    differential test keeps the body equal to ``entry_to_dict``'s)."""
    moment = entry.time.isoformat()
    reason = entry.failure_reason
    info = entry.additional_info
    body = {
        "entry_id": entry.entry_id,
        "direction": entry.direction.value,
        "time": moment,
        "requestor": entry.requestor,
        "responder": entry.responder,
        "req_gln": entry.req_gln,
        "corr_uuid": entry.corr_uuid,
        "gtin": entry.gtin,
        "serial": entry.serial,
        "lot": entry.lot,
        "expiry": entry.expiry,
        "context": entry.context,
        "status": entry.status,
        "verified": entry.verified,
        "failure_reason": str(reason) if reason is not None else None,
        "additional_info": str(info) if info is not None else None,
        "latency_ms": entry.latency_ms,
        "answer": entry.answer,
        "error": entry.error,
        "extras": entry.extras,
    }
    text = CANONICAL_JSON.encode(body)
    row = (
        entry.entry_id,
        moment,
        body["direction"],
        entry.requestor,
        entry.req_gln,
        entry.corr_uuid,
        entry.gtin,
        entry.serial,
        entry.lot,
        text,
    )
    return row, canonical_digest(text)


def _insert(db: sqlite3.Connection, rows: Sequence[Row]) -> None:
    db.execute("BEGIN IMMEDIATE")
    try:
        db.executemany(_INSERT, rows)
    except BaseException:
        db.execute("ROLLBACK")
        raise
    # synchronous=FULL: COMMIT returns once the WAL is fsynced, i.e. the rows are durable.
    db.execute("COMMIT")


def _write_group(db: sqlite3.Connection, rows: Sequence[Row]) -> list[BaseException | None]:
    """Each row's outcome. One transaction (one fsync) for the group; if it fails, the rows
    are written one by one so a bad entry (a repeated id) fails only its own caller."""
    try:
        _insert(db, rows)
    except sqlite3.Error:
        if len(rows) == 1:
            raise
    else:
        return [None] * len(rows)
    outcomes: list[BaseException | None] = []
    for row in rows:
        try:
            _insert(db, [row])
        except sqlite3.Error as error:
            outcomes.append(error)
        else:
            outcomes.append(None)
    return outcomes


Outcome = BaseException | str  # a failure, or the stored entry's digest


def _write_entries(
    db: sqlite3.Connection, entries: Sequence[VerificationLogEntry]
) -> list[Outcome]:
    """Each entry's outcome: the rows are made here, on the log's thread, not on the event
    loop per request; an entry that cannot be made into a row (its answer is not JSON)
    fails alone."""
    rows: list[Row] = []
    made: list[Outcome] = []
    for entry in entries:
        try:
            row, digest = _row(entry)
        except (TypeError, ValueError) as error:
            made.append(error)
        else:
            rows.append(row)
            made.append(digest)
    written = iter(_write_group(db, rows) if rows else [])
    outcomes: list[Outcome] = []
    for made_one in made:
        if isinstance(made_one, BaseException):
            outcomes.append(made_one)
            continue
        failure = next(written)
        outcomes.append(made_one if failure is None else failure)
    return outcomes


class SQLiteVerificationLog:
    """Group commit: an append queues its entry; while one group is being committed (its fsync
    takes milliseconds) the next appends queue up and are committed together after it, so
    throughput is not capped at one fsync per verification. Every caller still returns only
    after the transaction holding its own row has committed. The log's thread turns a
    group's entries into rows, so the event loop only queues the entry and waits."""

    def __init__(self, path: Path) -> None:
        self._path = path
        self._db: sqlite3.Connection | None = None
        # One thread owns the connection: sqlite3 calls never block the event loop.
        self._executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="vrs-log")
        self._queued: list[tuple[VerificationLogEntry, asyncio.Future[str]]] = []
        self._writing: asyncio.Future[list[Outcome]] | None = None
        self._starting = False

    async def _run(self, call: Callable[[sqlite3.Connection], T]) -> T:
        return await asyncio.get_running_loop().run_in_executor(self._executor, self._bound(call))

    def _bound(self, call: Callable[[sqlite3.Connection], T]) -> Callable[[], T]:
        def bound() -> T:
            if self._db is None:
                raise RuntimeError("the verification log is not open")
            return call(self._db)

        return bound

    async def open(self) -> None:
        def connect() -> None:
            db = sqlite3.connect(self._path, check_same_thread=False, isolation_level=None)
            db.execute("PRAGMA journal_mode=WAL")
            db.execute("PRAGMA synchronous=FULL")
            db.executescript(_SCHEMA)
            self._db = db

        await asyncio.get_running_loop().run_in_executor(self._executor, connect)

    async def close(self) -> None:
        # Appends already queued are written before the connection goes.
        while self._writing is not None or self._queued:
            if self._writing is None:
                self._write_queued(asyncio.get_running_loop())
            assert self._writing is not None
            await asyncio.wait([self._writing])

        def disconnect() -> None:
            if self._db is not None:
                self._db.close()
                self._db = None

        await asyncio.get_running_loop().run_in_executor(self._executor, disconnect)
        self._executor.shutdown(wait=True)

    async def append(self, entry: VerificationLogEntry) -> str:
        loop = asyncio.get_running_loop()
        durable: asyncio.Future[str] = loop.create_future()
        self._queued.append((entry, durable))
        if self._writing is None and not self._starting:
            # Started once the loop has run what is ready now: the other requests being
            # handled in this turn of the loop join the group instead of each waiting for
            # the next one (a group costs a thread hop, a transaction and an fsync).
            self._starting = True
            loop.call_soon(self._start, loop)
        return await durable

    def _start(self, loop: asyncio.AbstractEventLoop) -> None:
        self._starting = False
        if self._writing is None and self._queued:
            self._write_queued(loop)

    def _write_queued(self, loop: asyncio.AbstractEventLoop) -> None:
        group, self._queued = self._queued, []
        entries = [entry for entry, _ in group]
        writing = loop.run_in_executor(
            self._executor, self._bound(lambda db: _write_entries(db, entries))
        )
        self._writing = writing
        writing.add_done_callback(lambda done: self._written(loop, done, group))

    def _written(
        self,
        loop: asyncio.AbstractEventLoop,
        done: asyncio.Future[list[Outcome]],
        group: list[tuple[VerificationLogEntry, asyncio.Future[str]]],
    ) -> None:
        self._writing = None
        if done.cancelled():
            outcomes: list[Outcome] = [asyncio.CancelledError()] * len(group)
        elif (failure := done.exception()) is not None:
            outcomes = [failure] * len(group)
        else:
            outcomes = done.result()
        for (_, durable), outcome in zip(group, outcomes, strict=True):
            # A caller that was cancelled meanwhile has nobody to tell; its row was written.
            if durable.done():
                continue
            if isinstance(outcome, str):
                durable.set_result(outcome)
            elif isinstance(outcome, asyncio.CancelledError):
                durable.cancel()
            else:
                durable.set_exception(outcome)
        if self._queued:
            self._write_queued(loop)

    async def entries(self, entry_ids: Sequence[str]) -> dict[str, VerificationLogEntry]:
        def work(db: sqlite3.Connection) -> dict[str, VerificationLogEntry]:
            found: dict[str, VerificationLogEntry] = {}
            ids = list(entry_ids)
            for start in range(0, len(ids), 500):
                chunk = ids[start : start + 500]
                # Only "?" placeholders are formatted in; the IDs are bound parameters.
                marks = ",".join("?" * len(chunk))
                sql = f"SELECT entry_id, body FROM verifications WHERE entry_id IN ({marks})"  # noqa: S608
                for entry_id, body in db.execute(sql, chunk):
                    found[entry_id] = entry_from_dict(json.loads(body))
            return found

        return await self._run(work)

    async def query(self, where: LogFilter) -> list[VerificationLogEntry]:
        clauses: list[str] = []
        params: list[Any] = []
        for name in EQUALITY_FILTERS:
            value = getattr(where, name)
            if value is not None:
                # Column names come from the fixed tuple above, never from the request.
                clauses.append(f"{name} = ?")
                params.append(str(value))
        if where.since is not None:
            clauses.append("time >= ?")
            params.append(where.since.isoformat())
        if where.until is not None:
            clauses.append("time < ?")
            params.append(where.until.isoformat())
        sql = "SELECT body FROM verifications"
        if clauses:
            sql += " WHERE " + " AND ".join(clauses)
        sql += " ORDER BY seq LIMIT ?"
        params.append(where.limit)
        rows = await self._run(lambda db: db.execute(sql, params).fetchall())
        return [entry_from_dict(json.loads(body)) for (body,) in rows]
