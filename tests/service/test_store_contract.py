"""One contract suite for every event store adapter: SQLite, MongoDB emulated, MongoDB live.

The emulated MongoDB is mongomock-motor, in memory. It does not emulate: transactions and
sessions, the server's concurrency (its writes are effectively serial, so the concurrent
capture case cannot race there), index build options beyond uniqueness, regex index use and
query plans, or BSON size limits. Set DSCSA_TEST_MONGODB_URL (``mongodb://host/``) to run
the same cases against a live server; a fresh database is created and dropped per test.

Query results are checked against :func:`epcis.query.matches`, the plain-Python reference
semantics, over a realistic event set read from real EPCIS files (see store_fixtures).
"""

from __future__ import annotations

import asyncio
import hashlib
import os
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from mongomock_motor import AsyncMongoMockClient

from epcis.query import (
    EventQuery,
    QueryParameterError,
    QueryTooLargeError,
    identifier_key,
    matches,
    parse_query_params,
)
from service.mongo_store import MongoEventStore
from service.sqlite_store import SQLiteEventStore
from service.store import (
    CaptureJob,
    CaptureProblem,
    DocumentRecord,
    EventIndex,
    EventStore,
    PageRequest,
    PartnerRecord,
    StoreError,
    Visibility,
    to_micros,
)
from tests.service.store_fixtures import PARTNER_A, StoredEvent, stored_events

MONGODB_URL = os.environ.get("DSCSA_TEST_MONGODB_URL")
EVERYTHING = Visibility.everything()
NOW = datetime(2026, 2, 1, 12, 0, tzinfo=UTC)

Reopen = Callable[[], Awaitable[EventStore]]


@pytest.fixture(params=["sqlite", "mongomock", "mongodb"])
async def backend(
    request: pytest.FixtureRequest, tmp_path: Path
) -> AsyncIterator[tuple[EventStore, Reopen]]:
    """An open store, and a function that closes it and opens a new instance on its data."""
    client: Any = None
    if request.param == "sqlite":

        def make() -> EventStore:
            return SQLiteEventStore(tmp_path / "events.sqlite3", tmp_path / "data")

    elif request.param == "mongomock":
        database: Any = AsyncMongoMockClient()["events"]

        def make() -> EventStore:
            return MongoEventStore(database)

    else:
        if not MONGODB_URL:
            pytest.skip("set DSCSA_TEST_MONGODB_URL to run the contract against a live MongoDB")
        from pymongo import AsyncMongoClient

        client = AsyncMongoClient(MONGODB_URL)
        database = client[f"contract_{uuid.uuid4().hex}"]

        def make() -> EventStore:
            return MongoEventStore(database)

    current = [make()]
    await current[0].open()

    async def reopen() -> EventStore:
        await current[0].close()
        current[0] = make()
        await current[0].open()
        return current[0]

    yield current[0], reopen
    await current[0].close()
    if client is not None:
        await client.drop_database(database.name)
        await client.close()


@pytest.fixture
def store(backend: tuple[EventStore, Reopen]) -> EventStore:
    return backend[0]


def all_stored() -> list[StoredEvent]:
    return [item for _, events in stored_events() for item in events]


async def capture_all(store: EventStore) -> None:
    for document, events in stored_events():
        async with store.begin_capture(document) as session:
            result = await session.add_events([item.record for item in events])
            assert len(result.inserted) == len(events)
            await session.commit()


def second_copy(document: DocumentRecord, tag: str) -> DocumentRecord:
    return replace(document, document_id=f"{document.document_id}-{tag}", capture_id=tag)


# --- capture ---------------------------------------------------------------------------------


async def test_insert_counts_duplicates_within_a_capture(store: EventStore) -> None:
    document, events = stored_events()[0]
    records = [item.record for item in events]
    async with store.begin_capture(document) as session:
        first = await session.add_events([*records, records[0]])
        again = await session.add_events(records[:2])
        await session.commit()
    assert first.inserted == tuple(record.hash_id for record in records)
    assert first.duplicates == (records[0].hash_id,)
    assert again.inserted == ()
    assert set(again.duplicates) == {records[0].hash_id, records[1].hash_id}
    assert await store.count_events() == len(records)
    assert await store.get_document(document.document_id) == document


async def test_the_same_document_twice_changes_nothing(store: EventStore) -> None:
    document, events = stored_events()[0]
    records = [item.record for item in events]
    async with store.begin_capture(document) as session:
        await session.add_events(records)
        await session.commit()
    async with store.begin_capture(second_copy(document, "again")) as session:
        result = await session.add_events(records)
        await session.commit()
    assert result.inserted == ()
    assert sorted(result.duplicates) == sorted(record.hash_id for record in records)
    assert await store.count_events() == len(records)


async def test_concurrent_captures_store_each_event_once(store: EventStore) -> None:
    document, events = stored_events()[0]
    records = [item.record for item in events]

    async def capture(tag: str) -> tuple[int, int]:
        async with store.begin_capture(second_copy(document, tag)) as session:
            inserted = duplicates = 0
            for start in range(0, len(records), 3):
                result = await session.add_events(records[start : start + 3])
                inserted += len(result.inserted)
                duplicates += len(result.duplicates)
            await session.commit()
        return inserted, duplicates

    outcomes = await asyncio.gather(capture("one"), capture("two"))
    assert sum(inserted for inserted, _ in outcomes) == len(records)
    assert sum(duplicates for _, duplicates in outcomes) == len(records)
    assert await store.count_events() == len(records)


async def test_rollback_leaves_nothing(store: EventStore) -> None:
    document, events = stored_events()[2]

    async def failing_capture() -> None:
        async with store.begin_capture(document) as session:
            await session.add_events([item.record for item in events])
            raise RuntimeError("bad event")

    with pytest.raises(RuntimeError, match="bad event"):
        await failing_capture()
    async with store.begin_capture(second_copy(document, "explicit")) as session:
        await session.add_events([item.record for item in events])
        await session.rollback()
    assert await store.count_events() == 0
    assert await store.get_document(document.document_id) is None
    page = await store.query_events(EventQuery(), EVERYTHING, PageRequest(per_page=100))
    assert page.records == ()
    # What was rolled back can be captured afterwards in full.
    async with store.begin_capture(document) as session:
        result = await session.add_events([item.record for item in events])
        await session.commit()
    assert len(result.inserted) == len(events)


async def test_non_atomic_capture_keeps_batches_before_a_rollback(store: EventStore) -> None:
    document, events = stored_events()[0]
    records = [item.record for item in events]
    async with store.begin_capture(document, atomic=False) as session:
        await session.add_events(records[:3])
        await session.rollback()
    assert await store.count_events() == 3


async def test_non_atomic_capture_counts_duplicates_across_batches(store: EventStore) -> None:
    document, events = stored_events()[0]
    records = [item.record for item in events]
    async with store.begin_capture(document, atomic=False) as session:
        first = await session.add_events([*records[:3], records[0]])
        again = await session.add_events(records[1:5])
        await session.commit()
    assert first.inserted == tuple(record.hash_id for record in records[:3])
    assert first.duplicates == (records[0].hash_id,)
    assert again.inserted == tuple(record.hash_id for record in records[3:5])
    assert set(again.duplicates) == {records[1].hash_id, records[2].hash_id}
    assert await store.count_events() == 5


async def test_stored_records_round_trip(store: EventStore) -> None:
    await capture_all(store)
    for item in all_stored():
        stored = await store.get_event(item.record.hash_id, EVERYTHING)
        assert stored == item.record
    given = next(item for item in all_stored() if item.event.event_id.startswith("urn:uuid:"))  # type: ignore[union-attr]
    assert await store.get_event(given.record.event_id, EVERYTHING) == given.record
    assert (
        await store.get_event("urn:uuid:00000000-0000-0000-0000-000000000000", EVERYTHING) is None
    )


async def test_event_bodies_reads_stored_json_in_bulk(store: EventStore) -> None:
    await capture_all(store)
    items = all_stored()
    # More than one SQLite statement's worth of IDs, with an unknown one among them.
    wanted = [item.record.hash_id for item in items] * 2 + ["0" * 64]
    wanted += [f"absent-{n}" for n in range(1000)]
    bodies = await store.event_bodies(wanted)
    assert bodies == {item.record.hash_id: item.record.body for item in items}
    assert await store.event_bodies([]) == {}


async def test_event_records_reads_records_in_bulk_without_their_index(store: EventStore) -> None:
    await capture_all(store)
    items = all_stored()
    wanted = [item.record.hash_id for item in items] + ["0" * 64]
    wanted += [f"absent-{n}" for n in range(1000)]  # more than one statement's worth
    records = await store.event_records(wanted)
    assert records == {
        item.record.hash_id: replace(item.record, index=EventIndex()) for item in items
    }
    assert await store.event_records([]) == {}


# --- query -----------------------------------------------------------------------------------

QUERY_CASES: list[dict[str, str]] = [
    {"eventType": "AggregationEvent"},
    {"eventType": "TransformationEvent|AssociationEvent"},
    {"GE_eventTime": "2023-01-01T00:00:00Z"},
    {"GE_eventTime": "2019-01-01T00:00:00+01:00", "LT_eventTime": "2021-06-01T00:00:00Z"},
    {"GE_recordTime": "2026-01-05T09:02:00Z", "LT_recordTime": "2026-01-05T09:05:00Z"},
    {"EQ_action": "ADD"},
    {"EQ_action": "OBSERVE|DELETE"},
    {"EQ_bizStep": "urn:epcglobal:cbv:bizstep:shipping"},
    {"EQ_bizStep": "https://ref.gs1.org/cbv/BizStep-commissioning|packing"},
    {"EQ_disposition": "in_progress"},
    {"EQ_disposition": "urn:epcglobal:cbv:disp:in_transit"},
    {"EQ_readPoint": "urn:epc:id:sgln:030001.111121.0"},
    {"EQ_bizLocation": "urn:epc:id:sgln:030001.111111.0|urn:epc:id:sgln:0614141.00888.0"},
    {"MATCH_epc": "urn:epc:id:sgtin:030001.0012345.11"},
    {"MATCH_epc": "urn:epc:idpat:sgtin:030001.1012345.*"},
    {"MATCH_epc": "https://id.gs1.org/01/00300010123455/21/11"},
    {"EQ_readPoint": "https://id.gs1.org/414/0300011111215"},
    {"EQ_source_possessing_party": "https://id.gs1.org/417/4012345002256"},
    {"MATCH_parentID": "urn:epc:id:sscc:030001.41234567890"},
    {"MATCH_anyEPC": "urn:epc:id:sscc:030001.41234567890"},
    {"MATCH_anyEPC": "urn:epc:id:sgtin:4012345.011122.25|urn:epc:id:grai:4012345.55555.987"},
    {"MATCH_epcClass": "urn:epc:class:lgtin:4012345.012345.998877"},
    {"MATCH_epcClass": "urn:epc:idpat:sgtin:4012345.012345.*"},
    {"EQ_eventID": "urn:uuid:6926712e-599f-4c4e-b6e9-8dd888c906bd"},
    {"EQ_bizTransaction_po": "urn:epcglobal:cbv:bt:9521141000005:456"},
    {
        "EQ_bizTransaction_urn:epcglobal:cbv:btt:desadv": (
            "urn:epcglobal:cbv:bt:0300011111215:DEL100"
        )
    },
    {"EQ_source_owning_party": "urn:epc:id:sgln:9521141.00000.0"},
    {"EQ_source_urn:epcglobal:cbv:sdt:possessing_party": "urn:epc:id:pgln:4012345.00225"},
    {"EQ_destination_https://ref.gs1.org/cbv/SDT-owning_party": "urn:epc:id:sgln:039999.999999.0"},
    {"EQ_destination_location": "urn:epc:id:sgln:0614141.00777.0"},
    {"EQ_ILMD_urn:epcglobal:cbv:mda#lotNumber": "LOT2026A"},
    {"EQ_ILMD_cbvmda:lotNumber": "ABC123|LOT42"},
    {"EQ_ILMD_cbvmda:itemExpirationDate": "2025-03-27"},
    {"EQ_ILMD_urn:epcglobal:cbv:mda#itemExpirationDate": "2026-12-31"},
    {"EXISTS_errorDeclaration": "true"},
    {"EXISTS_errorDeclaration": "false", "EQ_bizStep": "shipping"},
    {"orderBy": "eventTime", "orderDirection": "ASC"},
    {"orderBy": "eventTime"},
    {"orderBy": "recordTime", "orderDirection": "DESC"},
    {"orderBy": "eventTime", "eventCountLimit": "5"},
    {"EQ_bizStep": "shipping", "EQ_disposition": "in_transit", "EQ_action": "OBSERVE"},
]


def expected(query: EventQuery, items: list[StoredEvent]) -> list[str]:
    """The hash IDs the reference semantics select, in the query's order."""
    chosen = [item for item in items if matches(query, item.event)]

    def sort_key(item: StoredEvent) -> tuple[int, str]:
        record = item.record
        moment = record.event_time if query.sort_field == "eventTime" else record.record_time
        return to_micros(moment), record.hash_id

    chosen.sort(key=sort_key, reverse=query.descending)
    if query.event_count_limit is not None:
        chosen = chosen[: query.event_count_limit]
    return [item.record.hash_id for item in chosen]


async def collect(
    store: EventStore, query: EventQuery, visibility: Visibility, per_page: int
) -> list[str]:
    found: list[str] = []
    token: str | None = None
    for _ in range(100):
        page = await store.query_events(query, visibility, PageRequest(per_page, token))
        assert len(page.records) <= per_page
        found += [record.hash_id for record in page.records]
        token = page.next_token
        if token is None:
            return found
    raise AssertionError("paging did not end")


@pytest.fixture
async def captured(store: EventStore) -> EventStore:
    await capture_all(store)
    return store


async def test_every_query_parameter_matches_the_reference(captured: EventStore) -> None:
    # One capture serves every case: capturing per case made the suite slow (fsync per commit).
    items = all_stored()
    failures = []
    for params in QUERY_CASES:
        query = parse_query_params(params)
        want = expected(query, items)
        assert want, f"{params} selects no event of the fixture set"
        if query.event_count_limit is None and query.order_by is None:
            assert len(want) < len(items), f"{params} leaves no event out"
        got = await collect(captured, query, EVERYTHING, per_page=100)
        if got != want:
            failures.append((params, len(got), len(want)))
    assert failures == [], "(params, found, expected)"


async def test_paging_returns_every_event_once_in_order(captured: EventStore) -> None:
    items = all_stored()
    for params in (
        {},
        {"orderBy": "eventTime"},
        {"orderBy": "recordTime", "orderDirection": "ASC"},
    ):
        query = parse_query_params(params)
        found = await collect(captured, query, EVERYTHING, per_page=4)
        assert found == expected(query, items)
        assert len(found) == len(set(found)) == len(items)


async def test_event_count_limit_across_pages(captured: EventStore) -> None:
    query = parse_query_params({"orderBy": "eventTime", "eventCountLimit": "7"})
    assert await collect(captured, query, EVERYTHING, per_page=3) == expected(query, all_stored())


async def test_page_token_survives_a_restart(backend: tuple[EventStore, Reopen]) -> None:
    store, reopen = backend
    await capture_all(store)
    query = parse_query_params({"orderBy": "eventTime"})
    first = await store.query_events(query, EVERYTHING, PageRequest(5))
    assert first.next_token is not None
    reopened = await reopen()
    second = await reopened.query_events(query, EVERYTHING, PageRequest(5, first.next_token))
    found = [record.hash_id for record in first.records + second.records]
    assert found == expected(query, all_stored())[:10]


async def test_page_token_of_another_query_is_rejected(captured: EventStore) -> None:
    query = parse_query_params({"EQ_action": "ADD"})
    page = await captured.query_events(query, EVERYTHING, PageRequest(2))
    assert page.next_token is not None
    other = parse_query_params({"EQ_action": "OBSERVE"})
    with pytest.raises(QueryParameterError, match="different query"):
        await captured.query_events(other, EVERYTHING, PageRequest(2, page.next_token))
    with pytest.raises(QueryParameterError):
        await captured.query_events(query, EVERYTHING, PageRequest(2, "not-a-token"))


async def test_max_event_count(captured: EventStore) -> None:
    too_small = parse_query_params({"EQ_action": "ADD", "maxEventCount": "3"})
    with pytest.raises(QueryTooLargeError):
        await captured.query_events(too_small, EVERYTHING, PageRequest(100))
    enough = parse_query_params({"EQ_action": "ADD", "maxEventCount": "100"})
    page = await captured.query_events(enough, EVERYTHING, PageRequest(100))
    assert [r.hash_id for r in page.records] == expected(enough, all_stored())


# --- visibility ------------------------------------------------------------------------------

PGLN = "urn:epc:id:pgln:4012345.00225"


def visible_to_a(item: StoredEvent) -> bool:
    parties = {v.value for v in item.event.source_list + item.event.destination_list}
    return item.sender == PARTNER_A or PGLN in parties


async def test_partner_sees_its_documents_and_events_naming_it(captured: EventStore) -> None:
    visibility = Visibility.for_partner(PARTNER_A, frozenset({identifier_key(PGLN)}))
    query = parse_query_params({})
    items = all_stored()
    want = expected(query, [item for item in items if visible_to_a(item)])
    assert 0 < len(want) < len(items)
    assert await collect(captured, query, visibility, per_page=5) == want
    hidden = next(item for item in items if not visible_to_a(item))
    shown = next(item for item in items if visible_to_a(item) and item.sender != PARTNER_A)
    assert await captured.get_event(hidden.record.hash_id, visibility) is None
    assert await captured.get_event(shown.record.hash_id, visibility) == shown.record
    stranger = Visibility.for_partner("partner-c", frozenset())
    assert await collect(captured, query, stranger, per_page=5) == []


# --- capture jobs, partners, document content ------------------------------------------------


async def test_capture_jobs_round_trip(store: EventStore) -> None:
    running = CaptureJob("cap-1", PARTNER_A, NOW, document_id="doc-1")
    later = CaptureJob("cap-2", "partner-b", NOW + timedelta(seconds=1))
    await store.put_capture_job(running)
    await store.put_capture_job(later)
    done = replace(
        running,
        running=False,
        success=False,
        finished_at=NOW + timedelta(seconds=2),
        captured=3,
        duplicates=1,
        rejected=1,
        errors=(CaptureProblem("epcisException:ValidationException", "bad", 400, "line 3"),),
    )
    await store.put_capture_job(done)
    assert await store.get_capture_job("cap-1") == done
    assert await store.get_capture_job("cap-9") is None
    assert list(await store.list_capture_jobs()) == [later, done]
    assert list(await store.list_capture_jobs(PARTNER_A)) == [done]


async def test_partners_round_trip(store: EventStore) -> None:
    partner = PartnerRecord(
        "p-1",
        "Wholesaler",
        "0399999999991",
        ("urn:epc:id:pgln:039999.99999",),
        "partner",
        "ab" * 32,
        NOW,
    )
    operator = replace(partner, partner_id="p-0", role="operator", token_hash="cd" * 32)
    await store.add_partner(partner)
    await store.add_partner(operator)
    with pytest.raises(StoreError):
        await store.add_partner(replace(partner, partner_id="p-2"))
    assert await store.get_partner_by_token_hash("ab" * 32) == partner
    assert await store.get_partner("p-0") == operator
    assert await store.get_partner_by_token_hash("ef" * 32) is None
    assert list(await store.list_partners()) == [operator, partner]
    assert await store.revoke_partner("p-1", NOW + timedelta(days=1))
    assert not await store.revoke_partner("p-1", NOW + timedelta(days=2))
    assert not await store.revoke_partner("p-9", NOW)
    revoked = await store.get_partner_by_token_hash("ab" * 32)
    assert revoked == replace(partner, revoked_at=NOW + timedelta(days=1))


async def chunked(data: bytes, size: int) -> AsyncIterator[bytes]:
    for start in range(0, len(data), size):
        yield data[start : start + size]


async def test_document_content_is_byte_exact_and_idempotent(store: EventStore) -> None:
    data = os.urandom(5 * 1024 * 1024 // 2) + b"\r\n\x00 end"
    digest = hashlib.sha256(data).hexdigest()
    await store.put_document_content(digest, chunked(data, 100_000))
    await store.put_document_content(digest, chunked(data, 7_777))
    read = b"".join([chunk async for chunk in store.open_document_content(digest)])
    assert read == data
    with pytest.raises(StoreError):
        await store.put_document_content("0" * 64, chunked(b"other", 2))
    with pytest.raises(KeyError):
        _ = [chunk async for chunk in store.open_document_content("1" * 64)]


async def test_store_answers_ping(store: EventStore) -> None:
    assert await store.ping()


# --- bulk insert and eventID lookups (the SQLite writer groups rows per statement) ------------


def _copies(count: int) -> list[StoredEvent]:
    """``count`` distinct copies of the fixture events (new hash IDs, same keys)."""
    items = all_stored()
    copies = []
    for n in range(count):
        item = items[n % len(items)]
        tag = f"-copy{n}"
        # An eventID that was the hash stays the (new) hash; a given one stays distinct.
        record = replace(
            item.record, hash_id=item.record.hash_id + tag, event_id=item.record.event_id + tag
        )
        copies.append(replace(item, record=record))
    return copies


async def test_a_batch_larger_than_one_insert_statement_is_stored_whole(store: EventStore) -> None:
    document, _ = stored_events()[0]
    copies = _copies(437)  # several statements' worth of event and key rows, and a remainder
    async with store.begin_capture(document) as session:
        result = await session.add_events([item.record for item in copies])
        again = await session.add_events([item.record for item in copies[:150]])
        await session.commit()
    assert len(result.inserted) == len(copies)
    assert result.duplicates == ()
    assert len(again.duplicates) == 150
    assert await store.count_events() == len(copies)
    for item in copies[::37]:
        assert await store.get_event(item.record.event_id, EVERYTHING) == item.record
    epc = next(key for item in copies for role, key in item.record.index.epcs if role == "epc")
    query = parse_query_params({"MATCH_epc": epc})
    # The default order: recordTime, then hash ID.
    want = sorted(
        (to_micros(item.record.record_time), item.record.hash_id)
        for item in copies
        if matches(query, item.event)
    )
    assert await collect(store, query, EVERYTHING, per_page=7) == [h for _, h in want]


async def test_eq_event_id_finds_given_ids_and_hash_ids(captured: EventStore) -> None:
    items = all_stored()
    given = next(i for i in items if i.event.event_id and i.event.event_id.startswith("urn:uuid:"))
    hashed = next(i for i in items if i.record.event_id == i.record.hash_id)
    params = {"EQ_eventID": f"{given.record.event_id}|{hashed.record.hash_id}"}
    got = await collect(captured, parse_query_params(params), EVERYTHING, per_page=10)
    assert sorted(got) == sorted([given.record.hash_id, hashed.record.hash_id])
    assert await captured.get_event(hashed.record.hash_id, EVERYTHING) == hashed.record


async def test_sqlite_file_from_before_nullable_event_ids_still_captures(tmp_path: Path) -> None:
    import sqlite3

    from service import sqlite_store

    path = tmp_path / "events.sqlite3"
    legacy = sqlite_store._EVENTS_SCHEMA.replace("event_id TEXT,", "event_id TEXT NOT NULL,")
    with sqlite3.connect(path) as connection:
        connection.executescript(legacy.replace(" WHERE event_id IS NOT NULL", ""))
    store = SQLiteEventStore(path, tmp_path / "data")
    await store.open()
    try:
        await capture_all(store)
        for item in all_stored():
            assert await store.get_event(item.record.hash_id, EVERYTHING) == item.record
        query = parse_query_params({"EQ_eventID": all_stored()[0].record.event_id})
        want = expected(query, all_stored())
        assert want
        assert await collect(store, query, EVERYTHING, per_page=10) == want
    finally:
        await store.close()
