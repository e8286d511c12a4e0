"""The retention job: purge raw documents and events older than the retention period.

DSCSA requires six years of records, so the period is never less than six calendar years,
whatever is configured, and nothing younger is ever purged: an event goes only when both its
event time and its record (capture) time are older than the cutoff; a document only when it
was received before the cutoff and none of its events remain. Ledger leaves are kept, so old
checkpoints and inclusion proofs stay checkable; each purge is written to a JSON-lines log
(``data_dir/retention/purged.jsonl``) naming every purged record and the digest its leaf holds.

The event store port has no delete (events are append-only for everyone else), so the purge
lives here, in one adapter per store, reaching the store's tables through the adapters'
documented plumbing (SQLite: ``write()`` on the writer thread; MongoDB: its ``database``).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import os
import sqlite3
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, Protocol

from aiohttp import web

from service.store import EventStore, to_micros

__all__ = [
    "MINIMUM_YEARS",
    "RETENTION_YEARS_VARIABLE",
    "MongoPurger",
    "PurgeResult",
    "Purger",
    "SQLitePurger",
    "purger_for",
    "retention_cutoff",
    "retention_job",
    "retention_years",
    "run_retention",
]

logger = logging.getLogger(__name__)

MINIMUM_YEARS = 6
RETENTION_YEARS_VARIABLE = "DSCSA_RETENTION_YEARS"
_CHUNK = 500


@dataclass(slots=True)
class PurgeResult:
    cutoff: datetime
    events: list[tuple[str, str]] = field(default_factory=list)  # (hash_id, body SHA-256)
    documents: list[tuple[str, str]] = field(default_factory=list)  # (document_id, sha256)
    contents_removed: int = 0


class Purger(Protocol):
    async def purge_before(self, cutoff: datetime) -> PurgeResult: ...


def retention_years(configured: float | None = None) -> float:
    """The configured period in years (DSCSA_RETENTION_YEARS), never below six."""
    if configured is None:
        raw = os.environ.get(RETENTION_YEARS_VARIABLE)
        configured = float(raw) if raw else MINIMUM_YEARS
    if configured < MINIMUM_YEARS:
        logger.warning(
            "retention of %s years is below the DSCSA minimum; keeping %d years",
            configured,
            MINIMUM_YEARS,
        )
    return max(float(configured), float(MINIMUM_YEARS))


def retention_cutoff(now: datetime, years: float) -> datetime:
    """``now`` minus ``years`` calendar years (whole years first, then days for a fraction);
    29 February falls back to the 28th."""
    whole = int(years)
    year = now.year - whole
    try:
        cutoff = now.replace(year=year)
    except ValueError:
        cutoff = now.replace(year=year, day=28)
    fraction = years - whole
    if fraction:
        cutoff -= timedelta(days=round(fraction * 365.25))
    return min(cutoff, _six_years_before(now))


def _six_years_before(now: datetime) -> datetime:
    try:
        return now.replace(year=now.year - MINIMUM_YEARS)
    except ValueError:
        return now.replace(year=now.year - MINIMUM_YEARS, day=28)


async def run_retention(
    purger: Purger,
    *,
    now: datetime | None = None,
    years: float | None = None,
    log_dir: Path | None = None,
) -> PurgeResult:
    moment = (now or datetime.now(UTC)).astimezone(UTC)
    cutoff = retention_cutoff(moment, retention_years(years))
    result = await purger.purge_before(cutoff)
    if log_dir is not None and (result.events or result.documents):
        await asyncio.to_thread(_write_log, log_dir, moment, result)
    logger.info(
        "retention: purged %d events and %d documents older than %s",
        len(result.events),
        len(result.documents),
        cutoff.isoformat(),
    )
    return result


def _write_log(log_dir: Path, moment: datetime, result: PurgeResult) -> None:
    log_dir.mkdir(parents=True, exist_ok=True)
    with (log_dir / "purged.jsonl").open("a", encoding="utf-8") as log:
        for kind, items in (("event", result.events), ("document", result.documents)):
            for record_id, digest in items:
                entry = {
                    "purged_at": moment.isoformat(),
                    "cutoff": result.cutoff.isoformat(),
                    "kind": kind,
                    "record_id": record_id,
                    "digest": digest,
                }
                log.write(json.dumps(entry) + "\n")
        log.flush()
        os.fsync(log.fileno())


# --- SQLite -----------------------------------------------------------------------------------


class SQLitePurger:
    """Purges from :class:`service.sqlite_store.SQLiteEventStore` tables and content files."""

    def __init__(self, store: Any, documents_dir: Path) -> None:
        self._store = store
        self._documents = documents_dir

    async def purge_before(self, cutoff: datetime) -> PurgeResult:
        result = PurgeResult(cutoff)
        micros = to_micros(cutoff)
        # One capture transaction at a time on the events file; the purge is one too.
        async with self._store.write_lock:
            removed = await self._store.write(lambda db: _sqlite_purge(db, micros, cutoff))
        result.events, result.documents, orphans = removed
        for sha256 in orphans:
            path = self._documents / sha256[:2] / sha256
            with contextlib.suppress(FileNotFoundError):
                await asyncio.to_thread(path.unlink)
                result.contents_removed += 1
        return result


def _sqlite_purge(
    db: sqlite3.Connection, micros: int, cutoff: datetime
) -> tuple[list[tuple[str, str]], list[tuple[str, str]], list[str]]:
    import hashlib

    db.execute("BEGIN IMMEDIATE")
    try:
        rows = db.execute(
            "SELECT rowid, hash_id, body FROM events WHERE event_time < ? AND record_time < ?",
            (micros, micros),
        ).fetchall()
        events = [(hash_id, hashlib.sha256(body).hexdigest()) for _, hash_id, body in rows]
        rowids = [rowid for rowid, _, _ in rows]
        for start in range(0, len(rowids), _CHUNK):
            chunk = rowids[start : start + _CHUNK]
            marks = ",".join("?" * len(chunk))
            db.execute(f"DELETE FROM event_keys WHERE event_rowid IN ({marks})", chunk)  # noqa: S608
            db.execute(f"DELETE FROM events WHERE rowid IN ({marks})", chunk)  # noqa: S608
        documents = _sqlite_old_documents(db, cutoff)
        for document_id, _ in documents:
            db.execute("DELETE FROM documents WHERE document_id = ?", (document_id,))
        orphans = [
            sha256
            for sha256 in {sha for _, sha in documents}
            if db.execute("SELECT 1 FROM documents WHERE sha256 = ?", (sha256,)).fetchone() is None
        ]
        db.execute("COMMIT")
    except BaseException:
        db.execute("ROLLBACK")
        raise
    return events, documents, orphans


def _sqlite_old_documents(db: sqlite3.Connection, cutoff: datetime) -> list[tuple[str, str]]:
    old: list[tuple[str, str]] = []
    for document_id, sha256, record in db.execute(
        "SELECT d.document_id, d.sha256, d.record FROM documents d WHERE NOT EXISTS "
        "(SELECT 1 FROM events e WHERE e.document_id = d.document_id)"
    ).fetchall():
        received = datetime.fromisoformat(json.loads(record)["received_at"])
        if received.tzinfo is None:
            received = received.replace(tzinfo=UTC)
        if received < cutoff:
            old.append((document_id, sha256))
    return old


# --- MongoDB ----------------------------------------------------------------------------------


class MongoPurger:
    """Purges from :class:`service.mongo_store.MongoEventStore` collections."""

    def __init__(self, database: Any) -> None:
        self._db = database

    async def purge_before(self, cutoff: datetime) -> PurgeResult:
        import hashlib

        result = PurgeResult(cutoff)
        micros = to_micros(cutoff)
        old = {"event_time": {"$lt": micros}, "record_time": {"$lt": micros}}
        async for document in self._db.events.find(old, {"hash_id": 1, "body": 1}):
            result.events.append(
                (document["hash_id"], hashlib.sha256(bytes(document["body"])).hexdigest())
            )
        hash_ids = [hash_id for hash_id, _ in result.events]
        for start in range(0, len(hash_ids), _CHUNK):
            await self._db.events.delete_many(
                {"hash_id": {"$in": hash_ids[start : start + _CHUNK]}}
            )
        async for document in self._db.documents.find(
            {}, {"document_id": 1, "sha256": 1, "received_at": 1}
        ):
            received = _aware(document["received_at"])
            if received >= cutoff:
                continue
            if await self._db.events.find_one({"document_id": document["document_id"]}) is not None:
                continue
            result.documents.append((document["document_id"], document["sha256"]))
        for document_id, _ in result.documents:
            await self._db.documents.delete_one({"document_id": document_id})
        for sha256 in {sha for _, sha in result.documents}:
            if await self._db.documents.find_one({"sha256": sha256}) is not None:
                continue
            marker = await self._db.document_contents.find_one({"sha256": sha256})
            if marker is not None:
                await self._db.document_chunks.delete_many({"upload_id": marker["upload_id"]})
                await self._db.document_contents.delete_one({"sha256": sha256})
                result.contents_removed += 1
        return result


def _aware(value: Any) -> datetime:
    moment = datetime.fromisoformat(value) if isinstance(value, str) else value
    assert isinstance(moment, datetime)
    return moment if moment.tzinfo is not None else moment.replace(tzinfo=UTC)


def purger_for(store: EventStore, data_dir: Path) -> Purger:
    from service.mongo_store import MongoEventStore
    from service.sqlite_store import SQLiteEventStore

    if isinstance(store, SQLiteEventStore):
        return SQLitePurger(store, data_dir / "documents")
    if isinstance(store, MongoEventStore):
        return MongoPurger(store.database)
    raise TypeError(f"no retention purge for {type(store).__name__}")


async def retention_job(app: web.Application) -> None:
    """The scheduled job (e.g. daily): purge what is older than the retention period."""
    from service.state import SETTINGS, STORE

    settings = app[SETTINGS]
    await run_retention(
        purger_for(app[STORE], settings.data_dir), log_dir=settings.data_dir / "retention"
    )
