"""SQLite adapter of the ledger store: leaves and checkpoints beside the events."""

from __future__ import annotations

import json
import sqlite3
from collections.abc import AsyncIterator, Callable, Sequence
from datetime import datetime
from pathlib import Path
from typing import TypeVar

from service.checkpoints import Checkpoint
from service.ledger import LedgerEntry
from service.sqlite_worker import SQLiteWorker

__all__ = ["SQLiteLedgerStore"]

T = TypeVar("T")

_SCHEMA = """
CREATE TABLE IF NOT EXISTS ledger_leaves (
    leaf_index INTEGER PRIMARY KEY,
    kind TEXT NOT NULL,
    record_id TEXT NOT NULL,
    digest TEXT NOT NULL,
    appended_at TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS ledger_leaves_record ON ledger_leaves (record_id, kind);
CREATE TABLE IF NOT EXISTS ledger_checkpoints (
    tree_size INTEGER NOT NULL,
    body TEXT NOT NULL
);
"""
_PAGE = 10_000


def _entry(row: tuple[int, str, str, str, str]) -> LedgerEntry:
    return LedgerEntry(row[0], row[1], row[2], row[3], datetime.fromisoformat(row[4]))


class SQLiteLedgerStore:
    """Ledger tables in a SQLite file (usually the event store's file)."""

    def __init__(self, path: Path | str) -> None:
        self._worker = SQLiteWorker(path, _SCHEMA, name="ledger-sqlite", timeout=30)

    async def _run(self, work: Callable[[sqlite3.Connection], T]) -> T:
        return await self._worker.run(work)

    async def open(self) -> None:
        await self._worker.open()

    async def close(self) -> None:
        await self._worker.close()

    async def append(
        self, records: Sequence[tuple[str, str, str]], at: datetime
    ) -> Sequence[LedgerEntry]:
        stamp = at.isoformat()

        def work(db: sqlite3.Connection) -> list[LedgerEntry]:
            # BEGIN IMMEDIATE takes the write lock before reading the next index, so two
            # processes appending at once cannot both claim it.
            db.execute("BEGIN IMMEDIATE")
            (start,) = db.execute(
                "SELECT COALESCE(MAX(leaf_index) + 1, 0) FROM ledger_leaves"
            ).fetchone()
            rows = [
                (start + offset, kind, record_id, digest, stamp)
                for offset, (kind, record_id, digest) in enumerate(records)
            ]
            db.executemany("INSERT INTO ledger_leaves VALUES (?, ?, ?, ?, ?)", rows)
            # ``at`` is what _entry would parse back from ``stamp``, once per batch.
            return [LedgerEntry(row[0], row[1], row[2], row[3], at) for row in rows]

        return await self._run(work)

    async def iter_entries(self, start: int = 0) -> AsyncIterator[LedgerEntry]:
        position = start
        while True:

            def page(db: sqlite3.Connection, after: int = position) -> list[LedgerEntry]:
                rows = db.execute(
                    "SELECT leaf_index, kind, record_id, digest, appended_at FROM ledger_leaves"
                    " WHERE leaf_index >= ? ORDER BY leaf_index LIMIT ?",
                    (after, _PAGE),
                ).fetchall()
                return [_entry(row) for row in rows]

            entries = await self._run(page)
            for entry in entries:
                yield entry
            if len(entries) < _PAGE:
                return
            position = entries[-1].index + 1

    async def find(self, kind: str, record_id: str) -> LedgerEntry | None:
        def work(db: sqlite3.Connection) -> LedgerEntry | None:
            row = db.execute(
                "SELECT leaf_index, kind, record_id, digest, appended_at FROM ledger_leaves"
                " WHERE record_id = ? AND kind = ? ORDER BY leaf_index LIMIT 1",
                (record_id, kind),
            ).fetchone()
            return _entry(row) if row else None

        return await self._run(work)

    async def size(self) -> int:
        def work(db: sqlite3.Connection) -> int:
            (count,) = db.execute(
                "SELECT COALESCE(MAX(leaf_index) + 1, 0) FROM ledger_leaves"
            ).fetchone()
            return int(count)

        return await self._run(work)

    async def add_checkpoint(self, checkpoint: Checkpoint) -> None:
        body = json.dumps(checkpoint.to_json())

        def work(db: sqlite3.Connection) -> None:
            db.execute("INSERT INTO ledger_checkpoints VALUES (?, ?)", (checkpoint.size, body))

        await self._run(work)

    async def checkpoints(self) -> Sequence[Checkpoint]:
        def work(db: sqlite3.Connection) -> list[Checkpoint]:
            rows = db.execute("SELECT body FROM ledger_checkpoints ORDER BY rowid").fetchall()
            return [Checkpoint.from_json(json.loads(body)) for (body,) in rows]

        return await self._run(work)
