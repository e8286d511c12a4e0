"""MongoDB verification log: insert-only collection ``verifications`` (the adapter has no
update or delete path; deny those to the service's database user for enforcement)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from pymongo import ASCENDING

from service.ledger_records import record_digest
from service.verification_log import (
    EQUALITY_FILTERS,
    LogFilter,
    entry_from_dict,
    entry_to_dict,
)
from verification.ports import VerificationLogEntry

__all__ = ["MongoVerificationLog"]


class MongoVerificationLog:
    def __init__(self, database: Any, client: Any = None) -> None:
        self._db = database
        # Closed with the log when given; a caller's own client is left open.
        self._client = client

    async def open(self) -> None:
        collection = self._db.verifications
        await collection.create_index([("entry_id", ASCENDING)], unique=True)
        await collection.create_index([("time", ASCENDING)])
        await collection.create_index([("gtin", ASCENDING), ("serial", ASCENDING)])
        await collection.create_index([("corr_uuid", ASCENDING)])

    async def close(self) -> None:
        if self._client is not None:
            await self._client.close()

    async def append(self, entry: VerificationLogEntry) -> str:
        document = entry_to_dict(entry)
        digest = record_digest(document)
        # After the digest: insert_one adds the document's ``_id`` to the dict.
        await self._db.verifications.insert_one(document)
        return digest

    async def entries(self, entry_ids: Sequence[str]) -> dict[str, VerificationLogEntry]:
        cursor = self._db.verifications.find({"entry_id": {"$in": list(entry_ids)}})
        return {doc["entry_id"]: entry_from_dict(doc) async for doc in cursor}

    async def query(self, where: LogFilter) -> list[VerificationLogEntry]:
        match: dict[str, Any] = {}
        for name in EQUALITY_FILTERS:
            value = getattr(where, name)
            if value is not None:
                match[name] = str(value)
        times: dict[str, str] = {}
        if where.since is not None:
            times["$gte"] = where.since.isoformat()
        if where.until is not None:
            times["$lt"] = where.until.isoformat()
        if times:
            match["time"] = times
        # Insertion order: ObjectIds grow with time on one server.
        cursor = self._db.verifications.find(match, {"_id": 0}).sort("_id", ASCENDING)
        documents = await cursor.limit(where.limit).to_list(length=where.limit)
        return [entry_from_dict(document) for document in documents]
