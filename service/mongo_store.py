"""The MongoDB store adapter on ``pymongo.AsyncMongoClient`` (any Motor-compatible database works).

Collections: ``documents`` (records), ``document_contents`` + ``document_chunks`` (bytes,
content-addressed), ``events`` (unique on ``hash_id``), ``capture_jobs``, ``partners``.
Every filterable identifier of an event is one string ``"<kind>\\x1f<key>"`` in its ``keys``
array (multikey index), so exact matches are index lookups and EPC patterns anchored
prefix regexes, which use the same index.

Atomic captures are not MongoDB transactions: each event carries its ``capture_id`` and a
rollback deletes that capture's events (the one place events are ever deleted, and only
before their capture commits; after a crash, ``discard_uncommitted_capture`` at the next start,
see ``service.capture_leases``). Limitations: a reader may see a capture's events before it
commits; an event that a concurrent capture counted as a duplicate of a capture that then
rolls back is stored by neither.
"""

from __future__ import annotations

import contextlib
import hashlib
import re
import uuid
from collections.abc import AsyncIterable, AsyncIterator, Mapping, Sequence
from dataclasses import asdict
from datetime import datetime
from types import TracebackType
from typing import Any, Self

from pymongo import ASCENDING, DESCENDING, AsyncMongoClient
from pymongo.errors import BulkWriteError, DuplicateKeyError, PyMongoError

from epcis.query import EpcFilter, EventQuery, QueryTooLargeError
from service.event_index import index_from_json, index_to_json
from service.store import (
    BatchResult,
    CaptureJob,
    CaptureProblem,
    DocumentRecord,
    EventIndex,
    EventRecord,
    Page,
    PageCursor,
    PageRequest,
    PartnerRecord,
    StoreError,
    Visibility,
    from_micros,
    to_micros,
)

__all__ = ["MongoCaptureSession", "MongoEventStore"]

_SEPARATOR = "\x1f"
_CHUNK_SIZE = 1 << 20
_DUPLICATE_KEY = 11000
_EPC_ROLES = ("epc:epc", "epc:child")
_ANY_ROLES = ("epc:epc", "epc:child", "epc:parent", "epc:input", "epc:output")
_NO_ID = {"_id": 0}

Database = Any  # pymongo AsyncDatabase, or a Motor-compatible stand-in (mongomock-motor)


def _key(kind: str, key: str) -> str:
    return f"{kind}{_SEPARATOR}{key}"


def _event_keys(record: EventRecord) -> list[str]:
    index = record.index
    keys = [_key(f"epc:{role}", key) for role, key in index.epcs]
    keys += [_key(f"class:{role}", key) for role, key in index.classes]
    keys += [_key(f"bt:{kind}", value) for kind, value in index.biz_transactions]
    keys += [_key(f"src:{kind}", value) for kind, value in index.sources]
    keys += [_key(f"dst:{kind}", value) for kind, value in index.destinations]
    keys += [_key("party", party) for party in index.parties]
    return list(dict.fromkeys(keys))


def _event_document(record: EventRecord, sender: str, capture_id: str) -> dict[str, Any]:
    index = record.index
    return {
        "hash_id": record.hash_id,
        "event_id": record.event_id,
        "event_type": record.event_type,
        "event_time": to_micros(record.event_time),
        "record_time": to_micros(record.record_time),
        "document_id": record.document_id,
        "sender_partner_id": sender,
        "capture_id": capture_id,
        "action": index.action,
        "biz_step": index.biz_step,
        "disposition": index.disposition,
        "read_point": index.read_point,
        "biz_location": index.biz_location,
        "lot": index.lot,
        "expiry": index.expiry.isoformat() if index.expiry else None,
        "error_declared": index.error_declared,
        "keys": _event_keys(record),
        "index": index_to_json(index),
        "body": record.body,
    }


_NO_INDEX = EventIndex()


def _event_record(document: Mapping[str, Any]) -> EventRecord:
    return EventRecord(
        hash_id=document["hash_id"],
        event_id=document["event_id"],
        event_type=document["event_type"],
        event_time=from_micros(document["event_time"]),
        record_time=from_micros(document["record_time"]),
        document_id=document["document_id"],
        body=bytes(document["body"]),
        index=index_from_json(document["index"]) if "index" in document else _NO_INDEX,
    )


def _plain(record: object) -> dict[str, Any]:
    return asdict(record)  # type: ignore[call-overload,no-any-return]


def _document_record(state: Mapping[str, Any]) -> DocumentRecord:
    values = dict(state)
    values["sbdh_receivers"] = tuple(values["sbdh_receivers"])
    values["received_at"] = _aware(values["received_at"])
    return DocumentRecord(**values)


def _capture_job(state: Mapping[str, Any]) -> CaptureJob:
    values = dict(state)
    values["created_at"] = _aware(values["created_at"])
    values["finished_at"] = _aware(values["finished_at"])
    values["errors"] = tuple(CaptureProblem(**problem) for problem in values["errors"])
    return CaptureJob(**values)


def _partner(state: Mapping[str, Any]) -> PartnerRecord:
    values = dict(state)
    values["identifiers"] = tuple(values["identifiers"])
    values["created_at"] = _aware(values["created_at"])
    values["revoked_at"] = _aware(values["revoked_at"])
    return PartnerRecord(**values)


def _aware(value: Any) -> Any:
    # Times are stored as ISO strings: BSON dates lose microseconds and the offset.
    return datetime.fromisoformat(value) if isinstance(value, str) else value


def _stored_times(state: dict[str, Any]) -> dict[str, Any]:
    return {
        name: value.isoformat() if isinstance(value, datetime) else value
        for name, value in state.items()
    }


# --- query -> filter ------------------------------------------------------------------------


def _keys_filter(kinds: Sequence[str], epc_filter: EpcFilter) -> dict[str, Any]:
    alternatives: list[dict[str, Any]] = []
    if epc_filter.exact:
        exact = [_key(kind, key) for kind in kinds for key in sorted(epc_filter.exact)]
        alternatives.append({"keys": {"$in": exact}})
    for prefix in epc_filter.prefixes:
        for kind in kinds:
            alternatives.append({"keys": {"$regex": "^" + re.escape(_key(kind, prefix))}})
    if not alternatives:
        return {"_id": {"$exists": False}}
    return alternatives[0] if len(alternatives) == 1 else {"$or": alternatives}


def _filter(query: EventQuery, visibility: Visibility) -> dict[str, Any]:
    terms: list[dict[str, Any]] = []
    for field, values in (
        ("event_type", query.event_types),
        ("action", query.actions),
        ("biz_step", query.biz_steps),
        ("disposition", query.dispositions),
        ("read_point", query.read_points),
        ("biz_location", query.biz_locations),
        ("event_id", query.event_ids),
        ("lot", query.lots),
    ):
        if values is not None:
            terms.append({field: {"$in": sorted(values)}})
    if query.expiry_dates is not None:
        terms.append({"expiry": {"$in": sorted(day.isoformat() for day in query.expiry_dates)}})
    for field, ge, lt in (
        ("event_time", query.ge_event_time, query.lt_event_time),
        ("record_time", query.ge_record_time, query.lt_record_time),
    ):
        bounds = {
            operator: to_micros(moment)
            for operator, moment in (("$gte", ge), ("$lt", lt))
            if moment is not None
        }
        if bounds:
            terms.append({field: bounds})
    if query.error_declared is not None:
        terms.append({"error_declared": query.error_declared})
    for epc_filter, kinds in (
        (query.match_epc, _EPC_ROLES),
        (query.match_parent_id, ("epc:parent",)),
        (query.match_any_epc, _ANY_ROLES),
        (query.match_epc_class, ("class:epc", "class:child")),
    ):
        if epc_filter is not None:
            terms.append(_keys_filter(kinds, epc_filter))
    for prefix, criteria in (
        ("bt", query.biz_transactions),
        ("src", query.sources),
        ("dst", query.destinations),
    ):
        for kind, values in criteria:
            terms.append(_keys_filter((f"{prefix}:{kind}",), EpcFilter(exact=values)))
    visible = _visibility_filter(visibility)
    if visible:
        terms.append(visible)
    return {"$and": terms} if terms else {}


def _visibility_filter(visibility: Visibility) -> dict[str, Any]:
    if visibility.all:
        return {}
    alternatives: list[dict[str, Any]] = [{"sender_partner_id": visibility.partner_id}]
    if visibility.identifiers:
        parties = [_key("party", party) for party in sorted(visibility.identifiers)]
        alternatives.append({"keys": {"$in": parties}})
    return {"$or": alternatives}


def _after(field: str, cursor: PageCursor, descending: bool) -> dict[str, Any]:
    beyond = "$lt" if descending else "$gt"
    return {
        "$or": [
            {field: {beyond: cursor.sort_value}},
            {field: cursor.sort_value, "hash_id": {beyond: cursor.hash_id}},
        ]
    }


# --- the store ------------------------------------------------------------------------------


class MongoEventStore:
    """An :class:`~service.store.EventStore` on one MongoDB database."""

    def __init__(self, database: Database, *, client: Any = None) -> None:
        self._database = database
        self._client = client
        self._events = database["events"]
        self._documents = database["documents"]
        self._contents = database["document_contents"]
        self._chunks = database["document_chunks"]
        self._jobs = database["capture_jobs"]
        self._partners = database["partners"]

    @classmethod
    def from_url(cls, url: str) -> MongoEventStore:
        """``mongodb://host[:port]/database``; the database name is required."""
        client: AsyncMongoClient[dict[str, Any]] = AsyncMongoClient(url, tz_aware=True)
        database = client.get_default_database()
        return cls(database, client=client)

    @property
    def events(self) -> Any:
        return self._events

    @property
    def database(self) -> Database:
        """The database, for adapters of other ports kept beside the events (ledger, state)."""
        return self._database

    async def open(self) -> None:
        await self._events.create_index("hash_id", unique=True)
        await self._events.create_index("event_id")
        await self._events.create_index("keys")
        await self._events.create_index("capture_id")
        await self._events.create_index("sender_partner_id")
        for field in ("event_time", "record_time"):
            await self._events.create_index([(field, ASCENDING), ("hash_id", ASCENDING)])
        await self._documents.create_index("document_id", unique=True)
        await self._documents.create_index("capture_id")
        await self._contents.create_index("sha256", unique=True)
        await self._chunks.create_index([("upload_id", ASCENDING), ("n", ASCENDING)], unique=True)
        await self._jobs.create_index("capture_id", unique=True)
        await self._jobs.create_index([("partner_id", ASCENDING), ("created_at", DESCENDING)])
        await self._partners.create_index("partner_id", unique=True)
        await self._partners.create_index("token_hash", unique=True)

    async def close(self) -> None:
        if self._client is not None:
            await self._client.close()

    async def ping(self) -> bool:
        try:
            reply = await self._database.command("ping")
        except PyMongoError:
            return False
        return bool(reply.get("ok"))

    # --- document content -------------------------------------------------------------------

    async def put_document_content(self, sha256: str, chunks: AsyncIterable[bytes]) -> None:
        if await self._contents.find_one({"sha256": sha256}, _NO_ID) is not None:
            return
        upload_id = uuid.uuid4().hex
        digest = hashlib.sha256()
        buffer = bytearray()
        count = size = 0
        async for chunk in chunks:
            digest.update(chunk)
            buffer += chunk
            size += len(chunk)
            while len(buffer) >= _CHUNK_SIZE:
                await self._chunks.insert_one(
                    {"upload_id": upload_id, "n": count, "data": bytes(buffer[:_CHUNK_SIZE])}
                )
                del buffer[:_CHUNK_SIZE]
                count += 1
        if buffer:
            await self._chunks.insert_one(
                {"upload_id": upload_id, "n": count, "data": bytes(buffer)}
            )
            count += 1
        if digest.hexdigest() != sha256:
            await self._chunks.delete_many({"upload_id": upload_id})
            raise StoreError(f"document content does not hash to {sha256}")
        marker = {"sha256": sha256, "upload_id": upload_id, "size": size, "chunks": count}
        try:
            # The marker makes the chunks visible; a concurrent upload of the same bytes loses.
            await self._contents.insert_one(marker)
        except DuplicateKeyError:
            await self._chunks.delete_many({"upload_id": upload_id})

    async def open_document_content(self, sha256: str) -> AsyncIterator[bytes]:
        marker = await self._contents.find_one({"sha256": sha256}, _NO_ID)
        if marker is None:
            raise KeyError(sha256)
        for n in range(marker["chunks"]):
            chunk = await self._chunks.find_one({"upload_id": marker["upload_id"], "n": n})
            if chunk is None:
                raise StoreError(f"document {sha256} lacks chunk {n}")
            yield bytes(chunk["data"])

    async def get_document(self, document_id: str) -> DocumentRecord | None:
        found = await self._documents.find_one({"document_id": document_id}, _NO_ID)
        return _document_record(found) if found else None

    async def insert_document(self, document: DocumentRecord) -> None:
        # Idempotent: the same record may have been stored by an earlier batch or commit.
        with contextlib.suppress(DuplicateKeyError):
            await self._documents.insert_one(_stored_times(_plain(document)))

    async def discard_uncommitted_capture(self, capture_id: str) -> int:
        """After a crash: the events of an atomic capture that never committed (its document
        record, written by the commit, is missing), removed; how many."""
        if await self._documents.find_one({"capture_id": capture_id}, {"_id": 1}) is not None:
            return 0
        result = await self._events.delete_many({"capture_id": capture_id})
        return int(result.deleted_count)

    async def delete_capture(self, capture_id: str, document_id: str) -> None:
        """Compensate an uncommitted capture (see the module docstring)."""
        await self._events.delete_many({"capture_id": capture_id})
        await self._documents.delete_one({"document_id": document_id})

    # --- events -----------------------------------------------------------------------------

    def begin_capture(
        self, document: DocumentRecord, *, atomic: bool = True
    ) -> MongoCaptureSession:
        return MongoCaptureSession(self, document, atomic=atomic)

    async def get_event(self, event_id_or_hash: str, visibility: Visibility) -> EventRecord | None:
        visible = _visibility_filter(visibility)
        for field in ("hash_id", "event_id"):
            found = await self._events.find_one(
                {"$and": [{field: event_id_or_hash}, visible]}, _NO_ID
            )
            if found is not None:
                return _event_record(found)
        return None

    async def query_events(
        self, query: EventQuery, visibility: Visibility, page: PageRequest
    ) -> Page:
        fingerprint = query.fingerprint()
        cursor = PageCursor.decode(page.token, fingerprint) if page.token else None
        served = cursor.served if cursor else 0
        size = page.per_page
        if query.event_count_limit is not None:
            size = min(size, query.event_count_limit - served)
        if size <= 0:
            return Page((), None)
        criteria = _filter(query, visibility)
        if cursor is None and query.max_event_count is not None:
            found = await self._events.count_documents(criteria, limit=query.max_event_count + 1)
            if found > query.max_event_count:
                raise QueryTooLargeError(
                    f"more than maxEventCount={query.max_event_count} events match the query"
                )
        field = "event_time" if query.sort_field == "eventTime" else "record_time"
        if cursor is not None:
            criteria = {"$and": [criteria, _after(field, cursor, query.descending)]}
        direction = DESCENDING if query.descending else ASCENDING
        found_events = (
            self._events.find(criteria, _NO_ID)
            .sort([(field, direction), ("hash_id", direction)])
            .limit(size + 1)
        )
        rows = [row async for row in found_events]
        records = tuple(_event_record(row) for row in rows[:size])
        more = len(rows) > size
        if query.event_count_limit is not None:
            more = more and served + size < query.event_count_limit
        if not more or not records:
            return Page(records, None)
        sort_value = rows[size - 1][field]
        next_cursor = PageCursor(fingerprint, sort_value, records[-1].hash_id, served + size)
        return Page(records, next_cursor.encode())

    async def count_events(self) -> int:
        return int(await self._events.count_documents({}))

    async def event_bodies(self, hash_ids: Sequence[str]) -> dict[str, bytes]:
        found: dict[str, bytes] = {}
        projection = {"_id": 0, "hash_id": 1, "body": 1}
        for start in range(0, len(hash_ids), 1000):
            chunk = list(hash_ids[start : start + 1000])
            async for document in self._events.find({"hash_id": {"$in": chunk}}, projection):
                found[document["hash_id"]] = bytes(document["body"])
        return found

    async def event_records(self, hash_ids: Sequence[str]) -> dict[str, EventRecord]:
        found: dict[str, EventRecord] = {}
        projection = {"_id": 0, "keys": 0, "index": 0}
        for start in range(0, len(hash_ids), 1000):
            chunk = list(hash_ids[start : start + 1000])
            async for document in self._events.find({"hash_id": {"$in": chunk}}, projection):
                found[document["hash_id"]] = _event_record(document)
        return found

    # --- capture jobs -----------------------------------------------------------------------

    async def put_capture_job(self, job: CaptureJob) -> None:
        state = _stored_times(_plain(job))
        await self._jobs.replace_one({"capture_id": job.capture_id}, state, upsert=True)

    async def get_capture_job(self, capture_id: str) -> CaptureJob | None:
        found = await self._jobs.find_one({"capture_id": capture_id}, _NO_ID)
        return _capture_job(found) if found else None

    async def list_capture_jobs(
        self, partner_id: str | None = None, limit: int = 100
    ) -> Sequence[CaptureJob]:
        criteria = {"partner_id": partner_id} if partner_id else {}
        found = (
            self._jobs.find(criteria, _NO_ID)
            .sort([("created_at", DESCENDING), ("capture_id", DESCENDING)])
            .limit(limit)
        )
        return [_capture_job(row) async for row in found]

    # --- partners ---------------------------------------------------------------------------

    async def add_partner(self, partner: PartnerRecord) -> None:
        try:
            await self._partners.insert_one(_stored_times(_plain(partner)))
        except DuplicateKeyError as error:
            raise StoreError(f"partner exists: {partner.partner_id}") from error

    async def get_partner(self, partner_id: str) -> PartnerRecord | None:
        found = await self._partners.find_one({"partner_id": partner_id}, _NO_ID)
        return _partner(found) if found else None

    async def get_partner_by_token_hash(self, token_hash: str) -> PartnerRecord | None:
        found = await self._partners.find_one({"token_hash": token_hash}, _NO_ID)
        return _partner(found) if found else None

    async def list_partners(self) -> Sequence[PartnerRecord]:
        found = self._partners.find({}, _NO_ID).sort([("partner_id", ASCENDING)])
        return [_partner(row) async for row in found]

    async def revoke_partner(self, partner_id: str, at: datetime) -> bool:
        result = await self._partners.update_one(
            {"partner_id": partner_id, "revoked_at": None},
            {"$set": {"revoked_at": at.isoformat()}},
        )
        return bool(result.modified_count)


class MongoCaptureSession:
    """One capture; ``insert_many(ordered=False)`` with duplicate-key errors as duplicates."""

    def __init__(self, store: MongoEventStore, document: DocumentRecord, *, atomic: bool) -> None:
        self._store = store
        self._document = document
        self._atomic = atomic
        self._seen: set[str] = set()
        self._open = False

    async def __aenter__(self) -> Self:
        self._open = True
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        if self._open:
            await self.rollback()

    async def add_events(self, records: Sequence[EventRecord]) -> BatchResult:
        if not self._open:
            raise StoreError("add_events outside an open capture session")
        fresh: list[EventRecord] = []
        duplicates: list[str] = []
        for record in records:
            if record.hash_id in self._seen:
                duplicates.append(record.hash_id)
            else:
                fresh.append(record)
            self._seen.add(record.hash_id)
        if not fresh:
            return BatchResult((), tuple(duplicates))
        if not self._atomic:
            await self._store.insert_document(self._document)
        document = self._document
        rows = [
            _event_document(record, document.sender_partner_id, document.capture_id)
            for record in fresh
        ]
        rejected = await self._insert(rows)
        inserted = tuple(r.hash_id for n, r in enumerate(fresh) if n not in rejected)
        duplicates += [fresh[n].hash_id for n in sorted(rejected)]
        return BatchResult(inserted, tuple(duplicates))

    async def _insert(self, rows: list[dict[str, Any]]) -> set[int]:
        """Insert; the indexes of rows refused as duplicates (any other error is raised)."""
        try:
            await self._store.events.insert_many(rows, ordered=False)
        except BulkWriteError as error:
            errors = error.details.get("writeErrors", [])
            if any(item.get("code") != _DUPLICATE_KEY for item in errors):
                raise StoreError(f"event insert failed: {errors[:3]}") from error
            return {int(item["index"]) for item in errors}
        return set()

    async def commit(self) -> None:
        if not self._open:
            raise StoreError("commit outside an open capture session")
        await self._store.insert_document(self._document)
        self._open = False

    async def rollback(self) -> None:
        if not self._open:
            return
        self._open = False
        if self._atomic:
            await self._store.delete_capture(self._document.capture_id, self._document.document_id)
