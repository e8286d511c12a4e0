"""MongoDB adapter of the ledger store (``pymongo.AsyncMongoClient`` database)."""

from __future__ import annotations

from collections.abc import AsyncIterator, Sequence
from datetime import datetime
from typing import Any

from pymongo import ASCENDING, DESCENDING
from pymongo.errors import BulkWriteError

from service.checkpoints import Checkpoint
from service.ledger import LedgerEntry

__all__ = ["MongoLedgerStore"]

_APPEND_ATTEMPTS = 5


def _entry(doc: dict[str, Any]) -> LedgerEntry:
    appended_at = doc["appended_at"]
    if isinstance(appended_at, str):
        appended_at = datetime.fromisoformat(appended_at)
    return LedgerEntry(doc["_id"], doc["kind"], doc["record_id"], doc["digest"], appended_at)


class MongoLedgerStore:
    """Collections ``ledger_leaves`` (``_id`` = leaf index) and ``ledger_checkpoints``.

    Indexes come from the highest stored one, and the ``_id`` uniqueness makes a concurrent
    appender from another replica fail and retry instead of interleaving: a counter document
    would be simpler but leaves a gap in the tree if the process dies between the two writes.
    """

    def __init__(self, database: Any) -> None:
        self._leaves = database["ledger_leaves"]
        self._checkpoints = database["ledger_checkpoints"]

    async def open(self) -> None:
        await self._leaves.create_index([("record_id", ASCENDING), ("kind", ASCENDING)])

    async def close(self) -> None:
        return None

    async def append(
        self, records: Sequence[tuple[str, str, str]], at: datetime
    ) -> Sequence[LedgerEntry]:
        for _attempt in range(_APPEND_ATTEMPTS):
            start = await self.size()
            docs = self._leaf_documents(start, records, at)
            try:
                await self._leaves.insert_many(docs, ordered=True)
            except BulkWriteError as err:
                if err.details.get("nInserted", 0):
                    raise
                continue
            return [_entry(doc) for doc in docs]
        raise RuntimeError("could not append to the ledger: too many concurrent appenders")

    @staticmethod
    def _leaf_documents(
        start: int, records: Sequence[tuple[str, str, str]], at: datetime
    ) -> list[dict[str, Any]]:
        return [
            {
                "_id": start + offset,
                "kind": kind,
                "record_id": record_id,
                "digest": digest,
                "appended_at": at.isoformat(),
            }
            for offset, (kind, record_id, digest) in enumerate(records)
        ]

    async def iter_entries(self, start: int = 0) -> AsyncIterator[LedgerEntry]:
        cursor = self._leaves.find({"_id": {"$gte": start}}).sort("_id", ASCENDING)
        async for doc in cursor:
            yield _entry(doc)

    async def find(self, kind: str, record_id: str) -> LedgerEntry | None:
        cursor = self._leaves.find({"record_id": record_id, "kind": kind}).sort("_id", ASCENDING)
        async for doc in cursor.limit(1):
            return _entry(doc)
        return None

    async def size(self) -> int:
        cursor = self._leaves.find({}, {"_id": 1}).sort("_id", DESCENDING).limit(1)
        async for doc in cursor:
            return int(doc["_id"]) + 1
        return 0

    async def add_checkpoint(self, checkpoint: Checkpoint) -> None:
        await self._checkpoints.insert_one({"size": checkpoint.size, **checkpoint.to_json()})

    async def checkpoints(self) -> Sequence[Checkpoint]:
        found: list[Checkpoint] = []
        order = [("size", ASCENDING), ("timestamp", ASCENDING)]
        async for doc in self._checkpoints.find({}, {"_id": 0}).sort(order):
            found.append(Checkpoint.from_json(doc))
        return found
