"""One SQLite connection on one worker thread: how the smaller SQLite stores run off the loop."""

from __future__ import annotations

import asyncio
import sqlite3
from collections.abc import Callable, Mapping
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import TypeVar

__all__ = ["SQLiteWorker"]

T = TypeVar("T")


class SQLiteWorker:
    """Runs each piece of work in one transaction on the connection's own thread (WAL, FULL).

    ``attach`` names further database files attached to the connection (schema name -> file),
    each in WAL with synchronous FULL like the main one, before ``schema`` runs, so the schema
    may create tables in them as ``name.table``. A transaction is atomic per file only in WAL:
    work that writes should write to one of them.
    """

    def __init__(
        self,
        path: Path | str,
        schema: str,
        *,
        name: str,
        timeout: float = 5.0,
        attach: Mapping[str, Path | str] | None = None,
    ) -> None:
        self._path = str(path)
        self._schema = schema
        self._timeout = timeout
        self._name = name
        self._attach = {schema_name: str(file) for schema_name, file in (attach or {}).items()}
        for schema_name in self._attach:
            if not schema_name.isidentifier() or schema_name.lower() in ("main", "temp"):
                raise ValueError(f"cannot attach a database as {schema_name!r}")
        self._executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix=name)
        self._db: sqlite3.Connection | None = None

    async def run(self, work: Callable[[sqlite3.Connection], T]) -> T:
        def call() -> T:
            if self._db is None:
                raise RuntimeError(f"{self._name} store is not open")
            with self._db:
                return work(self._db)

        return await asyncio.get_running_loop().run_in_executor(self._executor, call)

    async def open(self) -> None:
        def connect() -> None:
            db = sqlite3.connect(self._path, check_same_thread=False, timeout=self._timeout)
            for schema_name, file in self._attach.items():
                # The name is checked to be an identifier in __init__; the file is bound.
                db.execute(f"ATTACH DATABASE ? AS {schema_name}", (file,))
            for schema_name in ("main", *self._attach):
                db.execute(f"PRAGMA {schema_name}.journal_mode=WAL")
                db.execute(f"PRAGMA {schema_name}.synchronous=FULL")
            db.executescript(self._schema)
            self._db = db

        await asyncio.get_running_loop().run_in_executor(self._executor, connect)

    async def close(self) -> None:
        def disconnect() -> None:
            if self._db is not None:
                self._db.close()
                self._db = None

        await asyncio.get_running_loop().run_in_executor(self._executor, disconnect)
        self._executor.shutdown(wait=True)
