"""SQLite verification log: one append-only table; triggers refuse every UPDATE and DELETE."""

from __future__ import annotations

import asyncio
import json
import sqlite3
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any, TypeVar

from service.verification_log import EQUALITY_FILTERS, LogFilter, entry_from_dict, entry_to_dict
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


class SQLiteVerificationLog:
    def __init__(self, path: Path) -> None:
        self._path = path
        self._db: sqlite3.Connection | None = None
        # One thread owns the connection: sqlite3 calls never block the event loop.
        self._executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="vrs-log")

    async def _run(self, call: Callable[[sqlite3.Connection], T]) -> T:
        def bound() -> T:
            assert self._db is not None, "open() the log first"
            return call(self._db)

        return await asyncio.get_running_loop().run_in_executor(self._executor, bound)

    async def open(self) -> None:
        def connect() -> None:
            db = sqlite3.connect(self._path, check_same_thread=False, isolation_level=None)
            db.execute("PRAGMA journal_mode=WAL")
            db.execute("PRAGMA synchronous=FULL")
            db.executescript(_SCHEMA)
            self._db = db

        await asyncio.get_running_loop().run_in_executor(self._executor, connect)

    async def close(self) -> None:
        def disconnect() -> None:
            if self._db is not None:
                self._db.close()
                self._db = None

        await asyncio.get_running_loop().run_in_executor(self._executor, disconnect)
        self._executor.shutdown(wait=True)

    async def append(self, entry: VerificationLogEntry) -> None:
        data = entry_to_dict(entry)
        row = (
            entry.entry_id,
            data["time"],
            data["direction"],
            entry.requestor,
            entry.req_gln,
            entry.corr_uuid,
            entry.gtin,
            entry.serial,
            entry.lot,
            json.dumps(data, separators=(",", ":")),
        )
        await self._run(
            lambda db: db.execute(
                "INSERT INTO verifications (entry_id, time, direction, requestor, req_gln,"
                " corr_uuid, gtin, serial, lot, body) VALUES (?,?,?,?,?,?,?,?,?,?)",
                row,
            )
        )

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
