"""The verification log port: every inbound and outbound verification, append-only, with CSV."""

from __future__ import annotations

import csv
import io
import json
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, fields
from datetime import datetime
from typing import TYPE_CHECKING, Any, Protocol

from service.ledger_records import record_digest
from verification.ports import Direction, VerificationLogEntry

if TYPE_CHECKING:
    from service.settings import Settings

__all__ = [
    "CSV_COLUMNS",
    "EQUALITY_FILTERS",
    "LogFilter",
    "VerificationLog",
    "entry_digest",
    "entry_from_dict",
    "entry_to_dict",
    "matches",
    "open_verification_log",
    "to_csv",
]


@dataclass(frozen=True, slots=True)
class LogFilter:
    """``None`` means not filtered; ``since`` inclusive, ``until`` exclusive."""

    direction: Direction | None = None
    gtin: str | None = None
    serial: str | None = None
    lot: str | None = None
    req_gln: str | None = None
    corr_uuid: str | None = None
    requestor: str | None = None
    since: datetime | None = None
    until: datetime | None = None
    limit: int = 1000


# The equality filters and the entry field each one compares.
EQUALITY_FILTERS = ("direction", "gtin", "serial", "lot", "req_gln", "corr_uuid", "requestor")


class VerificationLog(Protocol):
    """Entries are only ever appended; adapters refuse updates and deletes."""

    async def open(self) -> None: ...
    async def close(self) -> None: ...
    async def append(self, entry: VerificationLogEntry) -> str:
        """Store ``entry``; answer :func:`entry_digest` of it once it is durable (adapters
        compute it where they serialize the entry anyway)."""
        ...

    async def query(self, where: LogFilter) -> list[VerificationLogEntry]:
        """Matching entries in the order they were appended, at most ``where.limit``."""
        ...

    async def entries(self, entry_ids: Sequence[str]) -> dict[str, VerificationLogEntry]:
        """The stored entries with these IDs (ledger verification reads them back)."""
        ...


_FIELDS = tuple(f.name for f in fields(VerificationLogEntry))


def entry_to_dict(entry: VerificationLogEntry) -> dict[str, Any]:
    data = {name: getattr(entry, name) for name in _FIELDS}
    data["direction"] = entry.direction.value
    data["time"] = entry.time.isoformat()
    for name in ("failure_reason", "additional_info"):
        data[name] = str(data[name]) if data[name] is not None else None
    return data


def entry_digest(entry: VerificationLogEntry) -> str:
    """SHA-256 (hex) of the entry's canonical stored form (``record_digest``)."""
    return record_digest(entry_to_dict(entry))


def entry_from_dict(data: dict[str, Any]) -> VerificationLogEntry:
    values: dict[str, Any] = {f.name: data.get(f.name) for f in fields(VerificationLogEntry)}
    values["direction"] = Direction(data["direction"])
    values["time"] = datetime.fromisoformat(data["time"])
    values["extras"] = dict(data.get("extras") or {})
    return VerificationLogEntry(**values)


CSV_COLUMNS = (
    "time",
    "direction",
    "requestor",
    "responder",
    "req_gln",
    "corr_uuid",
    "gtin",
    "serial",
    "lot",
    "expiry",
    "context",
    "status",
    "verified",
    "failure_reason",
    "additional_info",
    "latency_ms",
    "error",
    "extras",
)


def to_csv(entries: Iterable[VerificationLogEntry]) -> str:
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\r\n")
    writer.writerow(CSV_COLUMNS)
    for entry in entries:
        data = entry_to_dict(entry)
        data["latency_ms"] = f"{entry.latency_ms:.3f}"
        data["extras"] = json.dumps(entry.extras, sort_keys=True) if entry.extras else ""
        writer.writerow(["" if data[c] is None else _cell(data[c]) for c in CSV_COLUMNS])
    return out.getvalue()


def _cell(value: object) -> str:
    text = str(value).lower() if isinstance(value, bool) else str(value)
    # Spreadsheets run cells that start with these as formulas (CSV injection).
    return "'" + text if text[:1] in ("=", "+", "-", "@") and not _number(text) else text


def _number(text: str) -> bool:
    try:
        float(text)
    except ValueError:
        return False
    return True


def open_verification_log(settings: Settings) -> VerificationLog:
    """The adapter for the configured store (not yet opened): a SQLite file beside the event
    store's (``events.sqlite`` -> ``events.verifications.sqlite``), or the same MongoDB."""
    if settings.store_scheme == "sqlite":
        from service.sqlite_verification_log import SQLiteVerificationLog

        path = settings.sqlite_path.with_suffix(".verifications.sqlite")
        path.parent.mkdir(parents=True, exist_ok=True)
        return SQLiteVerificationLog(path)
    from pymongo import AsyncMongoClient

    from service.mongo_verification_log import MongoVerificationLog

    client: AsyncMongoClient[dict[str, Any]] = AsyncMongoClient(settings.store.get_secret_value())
    return MongoVerificationLog(client.get_default_database(), client=client)


def matches(entry: VerificationLogEntry, where: LogFilter) -> bool:
    """Reference semantics of a filter (the adapters translate it to their queries)."""
    for name in EQUALITY_FILTERS:
        wanted = getattr(where, name)
        if wanted is not None and getattr(entry, name) != wanted:
            return False
    if where.since is not None and entry.time < where.since:
        return False
    return where.until is None or entry.time < where.until
