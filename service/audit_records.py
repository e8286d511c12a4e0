"""Ledger leaves for the kept records that are not events or documents: verification log
entries, exception resolutions and recalls, appended as they are stored and recomputed when the
ledger is verified.

A resolution's record ID is ``<exception id>/<position>``: resolutions are only ever appended
to their exception, so the position names one for good. A leaf's digest is the SHA-256 of the
record's stored form (the dict the stores keep) as canonical JSON, so editing any stored field
behind the service's back changes the digest ``dscsa ledger verify`` recomputes.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable, Mapping, Sequence
from typing import Any

from service.exception_records import ExceptionRecord, Resolution
from service.ledger import Ledger
from service.ledger_records import record_digest
from service.traceability_store import (
    RecallRecord,
    TraceabilityStore,
    recall_to_dict,
    resolution_to_dict,
)
from service.verification_log import LogFilter, VerificationLog, entry_digest
from verification.ports import VerificationLogEntry

__all__ = [
    "LeafQueue",
    "LedgeredTraceabilityStore",
    "LedgeredVerificationLog",
    "TraceabilityRecordDigests",
    "VerificationRecordDigests",
    "recall_leaf",
    "resolution_leaf",
    "verification_leaf",
]

RESOLUTION = "exception_resolution"
RECALL = "recall"
VERIFICATION = "verification"

Leaf = tuple[str, str, str]

logger = logging.getLogger(__name__)


def resolution_leaf(
    exception_id: str, position: int, resolution: Resolution
) -> tuple[str, str, str]:
    return (RESOLUTION, f"{exception_id}/{position}", record_digest(resolution_to_dict(resolution)))


def recall_leaf(recall: RecallRecord) -> tuple[str, str, str]:
    return (RECALL, recall.recall_id, record_digest(recall_to_dict(recall)))


def verification_leaf(entry: VerificationLogEntry) -> tuple[str, str, str]:
    return (VERIFICATION, entry.entry_id, entry_digest(entry))


def _position(record: ExceptionRecord, resolution: Resolution) -> int:
    # The store answers the record read back after the insert: ours is the last equal one.
    for position in range(len(record.resolutions) - 1, -1, -1):
        if record.resolutions[position] == resolution:
            return position
    return len(record.resolutions) - 1


class LedgeredTraceabilityStore:
    """A traceability store whose resolutions and recalls get their ledger leaves once stored.

    Every writer of those records (HTTP, pages, scheduled grace-period checks, capture hooks)
    goes through the app's one store, so wrapping it here leaves none of them unledgered.
    Everything else is the wrapped store's own method.
    """

    def __init__(self, store: TraceabilityStore, ledger: Ledger) -> None:
        self.store = store
        self._ledger = ledger

    def __getattr__(self, name: str) -> Any:
        value = getattr(self.store, name)
        if callable(value):
            # Methods are kept on the instance: the next look-up (hot paths such as
            # verification_view) is an ordinary attribute read, not another __getattr__ call.
            setattr(self, name, value)
        return value

    async def add_resolution(self, resolution: Resolution) -> ExceptionRecord | None:
        record = await self.store.add_resolution(resolution)
        if record is not None:
            position = _position(record, resolution)
            leaf = resolution_leaf(record.exception_id, position, record.resolutions[position])
            await self._ledger.append([leaf])
        return record

    async def add_recall(self, recall: RecallRecord) -> None:
        await self.store.add_recall(recall)
        await self._ledger.append([recall_leaf(recall)])


class TraceabilityRecordDigests:
    """Current digests of stored resolutions and recalls, for ``dscsa ledger verify``."""

    def __init__(self, store: TraceabilityStore) -> None:
        self._store = store

    async def digests(self, kind: str, record_ids: Sequence[str]) -> Mapping[str, str]:
        if kind == RESOLUTION:
            return await self._resolutions(record_ids)
        if kind == RECALL:
            return await self._recalls(record_ids)
        return {}

    async def _resolutions(self, record_ids: Sequence[str]) -> dict[str, str]:
        found: dict[str, str] = {}
        records: dict[str, ExceptionRecord | None] = {}
        for record_id in record_ids:
            exception_id, _, position_text = record_id.rpartition("/")
            if not position_text.isdigit():
                continue
            if exception_id not in records:
                records[exception_id] = await self._store.get_exception(exception_id)
            record, position = records[exception_id], int(position_text)
            if record is not None and position < len(record.resolutions):
                found[record_id] = resolution_leaf(
                    exception_id, position, record.resolutions[position]
                )[2]
        return found

    async def _recalls(self, record_ids: Sequence[str]) -> dict[str, str]:
        found: dict[str, str] = {}
        for recall_id in record_ids:
            recall = await self._store.get_recall(recall_id)
            if recall is not None:
                found[recall_id] = recall_leaf(recall)[2]
        return found


class LeafQueue:
    """Leaves appended in groups: one ledger append per group, not per record.

    Records that arrive while a group is being appended (its transaction and fsync take
    milliseconds) form the next group, so a busy responder pays for a ledger transaction per
    group of verifications. ``drain`` waits until every queued leaf is appended.
    """

    def __init__(
        self, append: Callable[[Sequence[Leaf]], Awaitable[object]], *, linger: float = 0.0
    ) -> None:
        self._append = append
        # How long a group waits for more records before it is appended: a busy responder
        # then pays one ledger transaction (thread hop, tree update, commit) per many
        # verifications instead of per few. Nobody waits on a leaf, so only drain sees it.
        self._linger = linger
        self._pending: list[Leaf] = []
        self._task: asyncio.Task[None] | None = None

    def add(self, leaf: Leaf) -> None:
        self._pending.append(leaf)
        if self._task is None:
            self._task = asyncio.get_running_loop().create_task(self._flush())

    async def _flush(self) -> None:
        try:
            # The records of this turn of the loop (and of the linger) join the group.
            await asyncio.sleep(self._linger)
            while self._pending:
                group, self._pending = self._pending, []
                try:
                    await self._append(group)
                except Exception:
                    # The records themselves are stored; only their leaves are missing, and
                    # `dscsa ledger verify` cannot vouch for them. Say so loudly, go on.
                    logger.exception("could not ledger %d records", len(group))
        finally:
            self._task = None

    async def drain(self) -> None:
        while self._task is not None:
            await asyncio.shield(self._task)


class LedgeredVerificationLog:
    """A verification log whose entries get their ledger leaves, in groups, once stored."""

    def __init__(self, log: VerificationLog, leaves: LeafQueue) -> None:
        self.log = log
        self._leaves = leaves

    async def open(self) -> None:
        await self.log.open()

    async def close(self) -> None:
        await self.drain()
        await self.log.close()

    async def drain(self) -> None:
        """Wait until every stored entry's leaf is in the ledger."""
        await self._leaves.drain()

    async def append(self, entry: VerificationLogEntry) -> str:
        # The log answers the digest of what it stored (serialized once, on its own thread).
        digest = await self.log.append(entry)
        self._leaves.add((VERIFICATION, entry.entry_id, digest))
        return digest

    async def query(self, where: LogFilter) -> list[VerificationLogEntry]:
        return await self.log.query(where)

    async def entries(self, entry_ids: Sequence[str]) -> dict[str, VerificationLogEntry]:
        return await self.log.entries(entry_ids)


class VerificationRecordDigests:
    """Current digests of stored verification log entries, for ``dscsa ledger verify``."""

    def __init__(self, log: VerificationLog) -> None:
        self._log = log

    async def digests(self, kind: str, record_ids: Sequence[str]) -> Mapping[str, str]:
        if kind != VERIFICATION:
            return {}
        stored = await self._log.entries(record_ids)
        return {entry_id: verification_leaf(entry)[2] for entry_id, entry in stored.items()}
