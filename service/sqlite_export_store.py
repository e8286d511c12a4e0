"""SQLite adapter of the export store: requests in a small SQLite file, bundles as files."""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import shutil
import sqlite3
import tempfile
from collections.abc import AsyncIterator, Callable, Sequence
from pathlib import Path
from typing import TypeVar

from service.exports import ExportRequest, ExportStatus, request_from_dict, request_to_dict
from service.sqlite_worker import SQLiteWorker

__all__ = ["SQLiteExportStore"]

T = TypeVar("T")

_SCHEMA = """
CREATE TABLE IF NOT EXISTS export_requests (
    export_id TEXT PRIMARY KEY,
    due_at TEXT NOT NULL,
    status TEXT NOT NULL,
    body TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS export_requests_due ON export_requests (due_at);
"""
_CHUNK = 1 << 20


class SQLiteExportStore:
    def __init__(self, path: Path, bundle_dir: Path) -> None:
        self._path = path
        self._bundles = bundle_dir
        self._worker = SQLiteWorker(path, _SCHEMA, name="exports-sqlite", timeout=30)

    async def _run(self, work: Callable[[sqlite3.Connection], T]) -> T:
        return await self._worker.run(work)

    async def open(self) -> None:
        def folders() -> None:
            self._path.parent.mkdir(parents=True, exist_ok=True)
            self._bundles.mkdir(parents=True, exist_ok=True)

        await asyncio.to_thread(folders)
        await self._worker.open()

    async def close(self) -> None:
        await self._worker.close()

    async def put_request(self, request: ExportRequest) -> None:
        row = (
            request.export_id,
            request.due_at.isoformat(),
            request.status.value,
            json.dumps(request_to_dict(request)),
        )

        def work(db: sqlite3.Connection) -> None:
            db.execute("INSERT OR REPLACE INTO export_requests VALUES (?, ?, ?, ?)", row)

        await self._run(work)

    async def get_request(self, export_id: str) -> ExportRequest | None:
        def work(db: sqlite3.Connection) -> str | None:
            found = db.execute(
                "SELECT body FROM export_requests WHERE export_id = ?", (export_id,)
            ).fetchone()
            return found[0] if found else None

        body = await self._run(work)
        return request_from_dict(json.loads(body)) if body else None

    async def list_requests(
        self, *, open_only: bool = False, limit: int = 200
    ) -> Sequence[ExportRequest]:
        def work(db: sqlite3.Connection) -> list[str]:
            where = "WHERE status != ?" if open_only else "WHERE ? IS NOT NULL"
            rows = db.execute(
                f"SELECT body FROM export_requests {where} ORDER BY due_at LIMIT ?",  # noqa: S608
                (ExportStatus.READY.value, limit),
            ).fetchall()
            return [body for (body,) in rows]

        return [request_from_dict(json.loads(body)) for body in await self._run(work)]

    def _bundle_path(self, export_id: str) -> Path:
        if not export_id.isalnum():
            raise KeyError(export_id)
        return self._bundles / f"{export_id}.zip"

    async def put_bundle(self, export_id: str, path: Path) -> None:
        target = self._bundle_path(export_id)

        def copy() -> None:
            # Copied to a temporary name, synced, then renamed: never a half-written bundle.
            handle, temporary = tempfile.mkstemp(dir=self._bundles, prefix=".incoming-")
            try:
                with os.fdopen(handle, "wb") as out, path.open("rb") as source:
                    shutil.copyfileobj(source, out, _CHUNK)
                    out.flush()
                    os.fsync(out.fileno())
                os.replace(temporary, target)
            finally:
                with contextlib.suppress(FileNotFoundError):
                    os.unlink(temporary)

        await asyncio.to_thread(copy)

    async def open_bundle(self, export_id: str) -> AsyncIterator[bytes]:
        path = self._bundle_path(export_id)
        try:
            stream = await asyncio.to_thread(path.open, "rb")
        except FileNotFoundError:
            raise KeyError(export_id) from None
        try:
            while chunk := await asyncio.to_thread(stream.read, _CHUNK):
                yield chunk
        finally:
            stream.close()
