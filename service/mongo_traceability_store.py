"""MongoDB adapter of the traceability store, on a database object the caller creates."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Collection, Sequence
from datetime import datetime
from typing import Any

from pymongo import ASCENDING
from pymongo.errors import BulkWriteError, DuplicateKeyError

from service.containment import EventFacts, Interval
from service.exception_records import ExceptionRecord, Hold, Resolution
from service.master_data import PartyRecord, ProductRecord
from service.serial_state import SerialState
from service.traceability_store import (
    ExceptionFilter,
    RecallRecord,
    RecallSummary,
    TraceView,
    VerificationView,
    exception_from_dict,
    exception_to_dict,
    gather_trace_view,
    interval_from_row,
    interval_to_row,
    memo_iso,
    recall_from_dict,
    recall_summary_from_dict,
    recall_to_dict,
    resolution_from_dict,
    resolution_to_dict,
    sorted_recalls,
    state_from_dict,
    state_to_dict,
)

__all__ = ["MongoTraceabilityStore"]


class MongoTraceabilityStore:
    """Traceability store in one MongoDB database; ``database`` is created by the caller."""

    def __init__(self, database: Any, client: Any = None) -> None:
        self._db = database
        # Closed with the store when given; a test's or caller's own client is left open.
        self._client = client

    async def open(self) -> None:
        db = self._db
        await db.trace_facts.create_index([("epcs", ASCENDING)])
        await db.trace_intervals.create_index([("child", ASCENDING)])
        await db.trace_intervals.create_index([("parent", ASCENDING)])
        await db.serial_states.create_index([("gtin", ASCENDING), ("lot", ASCENDING)])
        await db.trace_exceptions.create_index([("key", ASCENDING)], unique=True)
        await db.trace_exceptions.create_index([("identifiers", ASCENDING)])
        await db.trace_resolutions.create_index([("exception_id", ASCENDING), ("seq", ASCENDING)])
        await db.trace_recalls.create_index([("serials", ASCENDING)])
        # The lot-recall check of every verification and trace.
        await db.trace_recalls.create_index([("gtin", ASCENDING), ("lot", ASCENDING)])

    async def close(self) -> None:
        if self._client is not None:
            await self._client.close()

    # --- projection ------------------------------------------------------------------

    async def add_facts(self, facts: Sequence[EventFacts]) -> list[EventFacts]:
        unique = list({f.hash_id: f for f in facts}.values())
        if not unique:
            return []
        existing = {
            doc["_id"]
            async for doc in self._db.trace_facts.find(
                {"_id": {"$in": [f.hash_id for f in unique]}}, {"_id": 1}
            )
        }
        fresh = [f for f in unique if f.hash_id not in existing]
        if not fresh:
            return []
        documents = [
            {"_id": f.hash_id, "body": f.to_json(), "epcs": sorted(set(f.names()))} for f in fresh
        ]
        try:
            await self._db.trace_facts.insert_many(documents, ordered=False)
        except BulkWriteError as error:
            # A concurrent writer stored some first: those are not ours to report as new.
            lost = {e["op"]["_id"] for e in error.details.get("writeErrors", [])}
            fresh = [f for f in fresh if f.hash_id not in lost]
        return fresh

    async def new_facts(self, facts: Sequence[EventFacts]) -> list[EventFacts]:
        hashes = list(dict.fromkeys(f.hash_id for f in facts))
        seen = {
            doc["_id"]
            async for doc in self._db.trace_facts.find({"_id": {"$in": hashes}}, {"_id": 1})
        }
        fresh: list[EventFacts] = []
        for item in facts:
            if item.hash_id not in seen:
                seen.add(item.hash_id)
                fresh.append(item)
        return fresh

    async def write_update(
        self,
        facts: Sequence[EventFacts],
        children: Collection[str],
        intervals: Sequence[Interval],
        states: Sequence[SerialState],
    ) -> None:
        await self.add_facts(facts)
        await self.replace_intervals(children, intervals)
        await self.put_states(states)

    async def facts_for(self, epcs: Collection[str]) -> dict[str, list[EventFacts]]:
        wanted = set(epcs)
        found: dict[str, list[EventFacts]] = defaultdict(list)
        if not wanted:
            return {}
        async for doc in self._db.trace_facts.find({"epcs": {"$in": list(wanted)}}):
            facts = EventFacts.from_json(doc["body"])
            for epc in wanted.intersection(doc["epcs"]):
                found[epc].append(facts)
        return dict(found)

    async def all_fact_epcs(self) -> list[str]:
        epcs: set[str] = set()
        async for doc in self._db.trace_facts.find({}, {"epcs": 1}):
            epcs.update(doc["epcs"])
        return sorted(epcs)

    async def intervals_for_children(self, children: Collection[str]) -> dict[str, list[Interval]]:
        return await self._intervals("child", children)

    async def children_ever(self, parents: Collection[str]) -> set[str]:
        found = await self._intervals("parent", parents)
        return {i.child for intervals in found.values() for i in intervals}

    async def _intervals(self, field: str, keys: Collection[str]) -> dict[str, list[Interval]]:
        found: dict[str, list[Interval]] = defaultdict(list)
        if not keys:
            return {}
        async for doc in self._db.trace_intervals.find({field: {"$in": list(keys)}}):
            found[doc[field]].append(interval_from_row(doc))
        return dict(found)

    async def replace_intervals(
        self, children: Collection[str], intervals: Sequence[Interval]
    ) -> None:
        if children:
            await self._db.trace_intervals.delete_many({"child": {"$in": list(children)}})
        if intervals:
            await self._db.trace_intervals.insert_many([interval_to_row(i) for i in intervals])

    async def put_states(self, states: Sequence[SerialState]) -> None:
        if not states:
            return
        iso = memo_iso()
        await self._replace_all(
            "serial_states", [{"_id": s.epc, **state_to_dict(s, iso)} for s in states]
        )

    async def _replace_all(self, name: str, documents: list[dict[str, Any]]) -> None:
        # Delete-then-insert rather than bulk upserts: mongomock lacks pymongo's newer bulk
        # API, and everything written this way is derived from stored events and documents.
        await self._db[name].delete_many({"_id": {"$in": [d["_id"] for d in documents]}})
        await self._db[name].insert_many(documents, ordered=False)

    async def clear_projection(self) -> None:
        for name in ("trace_facts", "trace_intervals", "serial_states"):
            await self._db[name].delete_many({})

    async def get_states(self, epcs: Collection[str]) -> dict[str, SerialState]:
        if not epcs:
            return {}
        cursor = self._db.serial_states.find({"_id": {"$in": list(epcs)}})
        return {doc["_id"]: state_from_dict(doc) async for doc in cursor}

    async def states_by_lot(self, gtin: str, lot: str) -> list[SerialState]:
        cursor = self._db.serial_states.find({"gtin": gtin, "lot": lot}).sort("_id", ASCENDING)
        return [state_from_dict(doc) async for doc in cursor]

    # --- exceptions ------------------------------------------------------------------

    async def add_exceptions(self, records: Sequence[ExceptionRecord]) -> list[ExceptionRecord]:
        inserted: list[ExceptionRecord] = []
        for record in records:
            try:
                await self._db.trace_exceptions.insert_one(
                    {"_id": record.exception_id, **exception_to_dict(record)}
                )
            except (DuplicateKeyError, BulkWriteError):
                continue
            inserted.append(record)
        return inserted

    async def add_resolution(self, resolution: Resolution) -> ExceptionRecord | None:
        if await self._db.trace_exceptions.find_one({"_id": resolution.exception_id}) is None:
            return None
        count = await self._db.trace_resolutions.count_documents(
            {"exception_id": resolution.exception_id}
        )
        await self._db.trace_resolutions.insert_one(
            {"seq": count, **resolution_to_dict(resolution)}
        )
        return await self.get_exception(resolution.exception_id)

    async def get_exception(self, exception_id: str) -> ExceptionRecord | None:
        found = await self._exceptions({"_id": exception_id}, 1)
        return found[0] if found else None

    async def list_exceptions(self, query: ExceptionFilter) -> list[ExceptionRecord]:
        selector: dict[str, Any] = {}
        if query.type is not None:
            selector["type"] = query.type.value
        if query.partner_id is not None:
            selector["partner_id"] = query.partner_id
        if query.identifier is not None:
            selector["identifiers"] = query.identifier
        # Status and determination derive from resolutions: filtered after loading them.
        records = await self._exceptions(selector, None if query.derived else query.limit)
        if query.derived:
            records = [r for r in records if query.keeps(r)][: query.limit]
        return records

    async def _exceptions(
        self, selector: dict[str, Any], limit: int | None
    ) -> list[ExceptionRecord]:
        cursor = self._db.trace_exceptions.find(selector).sort(
            [("created_at", ASCENDING), ("key", ASCENDING)]
        )
        if limit is not None:
            cursor = cursor.limit(limit)
        docs = [doc async for doc in cursor]
        resolutions: dict[str, list[Resolution]] = defaultdict(list)
        ids = [doc["exception_id"] for doc in docs]
        if ids:
            found = self._db.trace_resolutions.find({"exception_id": {"$in": ids}}).sort(
                "seq", ASCENDING
            )
            async for doc in found:
                resolutions[doc["exception_id"]].append(resolution_from_dict(doc))
        return [exception_from_dict(doc, resolutions[doc["exception_id"]]) for doc in docs]

    async def holds_for(self, epcs: Collection[str]) -> dict[str, set[Hold]]:
        if not epcs:
            return {}
        wanted = set(epcs)
        records = await self._exceptions({"identifiers": {"$in": list(wanted)}}, None)
        holds: dict[str, set[Hold]] = defaultdict(set)
        for record in records:
            if record.hold is Hold.NONE:
                continue
            for epc in wanted.intersection(record.identifiers):
                holds[epc].add(record.hold)
        return dict(holds)

    # --- recalls ---------------------------------------------------------------------

    async def add_recall(self, recall: RecallRecord) -> None:
        await self._db.trace_recalls.insert_one({"_id": recall.recall_id, **recall_to_dict(recall)})

    async def get_recall(self, recall_id: str) -> RecallRecord | None:
        found = await self._db.trace_recalls.find_one({"_id": recall_id})
        return recall_from_dict(found) if found else None

    async def recalled(self, states: Sequence[SerialState]) -> set[str]:
        lots = {
            (doc["gtin"], doc["lot"])
            async for doc in self._db.trace_recalls.find({"lot": {"$ne": None}})
        }
        hit = {s.epc for s in states if (s.gtin, s.lot) in lots}
        epcs = [s.epc for s in states]
        if epcs:
            async for doc in self._db.trace_recalls.find({"serials": {"$in": epcs}}):
                hit.update(set(epcs).intersection(doc["serials"]))
        return hit

    async def recalls_of(self, state: SerialState) -> list[RecallSummary]:
        by_serial: dict[str, Any] = {"serials": state.epc}
        by_lot: dict[str, Any] = {"gtin": state.gtin, "lot": state.lot}
        selector = by_serial if state.lot is None else {"$or": [by_serial, by_lot]}
        # Without the serials: a lot's recall lists every serial of the lot.
        cursor = self._db.trace_recalls.find(selector, {"serials": 0})
        return sorted_recalls([recall_summary_from_dict(doc) async for doc in cursor])

    async def verification_view(self, *spellings: str) -> VerificationView | None:
        if len(spellings) == 1:
            doc = await self._db.serial_states.find_one({"_id": spellings[0]})
        else:
            found = {
                d["_id"]: d
                async for d in self._db.serial_states.find({"_id": {"$in": list(spellings)}})
            }
            doc = next((found[s] for s in spellings if s in found), None)
        if doc is None:
            return None
        state = state_from_dict(doc)
        epc = state.epc
        recalled = state.recalled_in_data
        if not recalled:
            by_serial: dict[str, Any] = {"serials": epc}
            by_lot: dict[str, Any] = {"gtin": state.gtin, "lot": state.lot}
            selector = by_serial if state.lot is None else {"$or": [by_serial, by_lot]}
            recalled = await self._db.trace_recalls.find_one(selector, {"_id": 1}) is not None
        holds = frozenset((await self.holds_for([epc])).get(epc, ()))
        return VerificationView(state=state, recalled=recalled, holds=holds)

    # --- trace ---------------------------------------------------------------------

    async def trace_view(self, epc: str) -> TraceView:
        return await gather_trace_view(self, epc)

    # --- master data -----------------------------------------------------------------

    async def put_products(self, products: Sequence[ProductRecord]) -> None:
        await self._put("master_products", [(p.gtin, p.to_dict()) for p in products])

    async def put_parties(self, parties: Sequence[PartyRecord]) -> None:
        await self._put("master_parties", [(p.party_id, p.to_dict()) for p in parties])

    async def _put(self, name: str, rows: list[tuple[str, dict[str, Any]]]) -> None:
        if rows:
            await self._replace_all(name, [{"_id": key, **body} for key, body in rows])

    async def add_pending_projection(self, document_id: str, capture_id: str, at: datetime) -> None:
        await self._db.pending_projections.update_one(
            {"_id": document_id},
            {"$setOnInsert": {"capture_id": capture_id, "named_at": at}},
            upsert=True,
        )

    async def pending_projections(self) -> list[tuple[str, str]]:
        cursor = self._db.pending_projections.find({}, {"capture_id": 1}).sort(
            [("named_at", ASCENDING), ("_id", ASCENDING)]
        )
        return [(doc["_id"], doc["capture_id"]) async for doc in cursor]

    async def clear_pending_projections(self, document_ids: Collection[str]) -> None:
        if document_ids:
            await self._db.pending_projections.delete_many({"_id": {"$in": list(document_ids)}})

    async def get_products(self, gtins: Collection[str]) -> dict[str, ProductRecord]:
        docs = await self._get("master_products", gtins)
        return {key: ProductRecord(**body) for key, body in docs.items()}

    async def get_parties(self, party_ids: Collection[str]) -> dict[str, PartyRecord]:
        docs = await self._get("master_parties", party_ids)
        return {key: PartyRecord(**body) for key, body in docs.items()}

    async def _get(self, name: str, keys: Collection[str]) -> dict[str, dict[str, Any]]:
        if not keys:
            return {}
        found: dict[str, dict[str, Any]] = {}
        async for doc in self._db[name].find({"_id": {"$in": list(keys)}}):
            key = doc.pop("_id")
            found[key] = doc
        return found
