"""MongoDB adapter of the export store: ``export_requests`` and chunked ``export_bundles``."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Sequence
from pathlib import Path
from typing import Any

from pymongo import ASCENDING, AsyncMongoClient

from service.exports import ExportRequest, ExportStatus, request_from_dict, request_to_dict

__all__ = ["MongoExportStore"]

# Well under MongoDB's 16 MB document limit.
_CHUNK = 4 << 20


class MongoExportStore:
    def __init__(self, database: Any, client: Any = None) -> None:
        self._db = database
        # Closed with the store when given; a caller's own client is left open.
        self._client = client

    @classmethod
    def from_url(cls, url: str) -> MongoExportStore:
        client: AsyncMongoClient[dict[str, Any]] = AsyncMongoClient(url, tz_aware=True)
        return cls(client.get_default_database(), client=client)

    async def open(self) -> None:
        await self._db.export_requests.create_index([("export_id", ASCENDING)], unique=True)
        await self._db.export_requests.create_index([("due_at", ASCENDING)])
        await self._db.export_bundles.create_index(
            [("export_id", ASCENDING), ("n", ASCENDING)], unique=True
        )

    async def close(self) -> None:
        if self._client is not None:
            await self._client.close()

    async def put_request(self, request: ExportRequest) -> None:
        document = {
            "export_id": request.export_id,
            "due_at": request.due_at.isoformat(),
            "status": request.status.value,
            "body": request_to_dict(request),
        }
        await self._db.export_requests.replace_one(
            {"export_id": request.export_id}, document, upsert=True
        )

    async def get_request(self, export_id: str) -> ExportRequest | None:
        found = await self._db.export_requests.find_one({"export_id": export_id})
        return request_from_dict(found["body"]) if found else None

    async def list_requests(
        self, *, open_only: bool = False, limit: int = 200
    ) -> Sequence[ExportRequest]:
        match = {"status": {"$ne": ExportStatus.READY.value}} if open_only else {}
        cursor = self._db.export_requests.find(match).sort("due_at", ASCENDING).limit(limit)
        documents = await cursor.to_list(length=limit)
        return [request_from_dict(document["body"]) for document in documents]

    async def put_bundle(self, export_id: str, path: Path) -> None:
        # Chunks of an earlier, interrupted attempt go first, so the bundle is whole.
        await self._db.export_bundles.delete_many({"export_id": export_id})
        stream = await asyncio.to_thread(path.open, "rb")
        try:
            n = 0
            while chunk := await asyncio.to_thread(stream.read, _CHUNK):
                await self._db.export_bundles.insert_one(
                    {"export_id": export_id, "n": n, "data": chunk}
                )
                n += 1
        finally:
            stream.close()
        await self._db.export_bundles.insert_one({"export_id": export_id, "n": n, "end": True})

    async def open_bundle(self, export_id: str) -> AsyncIterator[bytes]:
        last = await self._db.export_bundles.find_one({"export_id": export_id, "end": True})
        if last is None:
            raise KeyError(export_id)
        for n in range(last["n"]):
            chunk = await self._db.export_bundles.find_one({"export_id": export_id, "n": n})
            if chunk is None:
                raise KeyError(f"{export_id}: chunk {n} is missing")
            yield bytes(chunk["data"])
