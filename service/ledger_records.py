"""The current digests of kept records, recomputed from the event store for ledger verification."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping, Sequence
from typing import Any

from service.ledger_verification import RecordDigests
from service.store import EventStore, Visibility

__all__ = [
    "CANONICAL_JSON",
    "StoreRecordDigests",
    "canonical_digest",
    "event_digest",
    "record_digest",
]

# The canonical form of a kept record that is not an event or a document (a verification log
# entry, a resolution, a recall): sorted keys, no spaces, UTF-8 as is.
CANONICAL_JSON = json.JSONEncoder(sort_keys=True, separators=(",", ":"), ensure_ascii=False)


def event_digest(body: bytes) -> str:
    """What an event's ledger leaf commits to: the SHA-256 of its stored JSON."""
    return hashlib.sha256(body).hexdigest()


def canonical_digest(text: str) -> str:
    """What such a record's ledger leaf commits to: the SHA-256 of its canonical JSON text."""
    return hashlib.sha256(text.encode()).hexdigest()


def record_digest(stored: Mapping[str, Any]) -> str:
    """:func:`canonical_digest` of a record's stored form."""
    return canonical_digest(CANONICAL_JSON.encode(stored))


class StoreRecordDigests:
    """Digests of events (their stored JSON) and documents (their stored bytes)."""

    def __init__(self, store: EventStore, extra: Mapping[str, RecordDigests] | None = None) -> None:
        self._store = store
        self._extra = dict(extra or {})

    async def digests(self, kind: str, record_ids: Sequence[str]) -> Mapping[str, str]:
        if kind == "event":
            return await self._events(record_ids)
        if kind == "document":
            return await self._documents(record_ids)
        if kind in self._extra:
            return await self._extra[kind].digests(kind, record_ids)
        return {}

    async def _events(self, hash_ids: Sequence[str]) -> dict[str, str]:
        found: dict[str, str] = {}
        everything = Visibility.everything()
        for hash_id in hash_ids:
            record = await self._store.get_event(hash_id, everything)
            if record is not None and record.hash_id == hash_id:
                found[hash_id] = event_digest(record.body)
        return found

    async def _documents(self, document_ids: Sequence[str]) -> dict[str, str]:
        found: dict[str, str] = {}
        for document_id in document_ids:
            document = await self._store.get_document(document_id)
            if document is None:
                continue
            digest = hashlib.sha256()
            try:
                async for chunk in self._store.open_document_content(document.sha256):
                    digest.update(chunk)
            except KeyError:
                continue
            found[document_id] = digest.hexdigest()
        return found
