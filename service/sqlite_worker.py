"""One SQLite connection on one worker thread: how the smaller SQLite stores run off the loop."""

from __future__ import annotations

import asyncio
import sqlite3
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import TypeVar

__all__ = ["SQLiteWorker"]

T = TypeVar("T")


class SQLiteWorker:
    """Runs each piece of work in one transaction on the connection's own thread (WAL, FULL)."""

    def __init__(self, path: Path | str, schema: str, *, name: str, timeout: float = 5.0) -> None:
        self._path = str(path)
        self._schema = schema
        self._timeout = timeout
        self._name = name
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
            db.execute("PRAGMA journal_mode=WAL")
            db.execute("PRAGMA synchronous=FULL")
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
