"""A SQLite event store of about 1,000,000 DSCSA events for the query benchmark, cached.

Capturing a million events through the pipeline takes longer than the benchmark's time
budget, and the query benchmark measures reads, not capture. So the records of one block of
complete shipments (the first 322 shipments of the generated document: 9,982 events) are
made by the real pipeline (reader, event hash, JSON-LD body, index), and the block is
repeated with every serial number, shipment number and event time shifted, each copy with
its own hash ID. The copies go in through the store's own capture sessions, so the file has
exactly the rows and indexes a captured store has. The file is kept in ``bench/out/`` and
rebuilt when the store schema or this module changes.
"""

from __future__ import annotations

import asyncio
import hashlib
import re
import shutil
import uuid
from collections.abc import Iterator
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from pathlib import Path

from bench.generate import CASES_PER_SHIPMENT, ITEMS_PER_CASE, generate
from epcis.event_hash import ignored_fields
from epcis.model import DocumentHead
from epcis.reading import iter_document
from service import sqlite_store
from service.capture import event_record
from service.sqlite_store import SQLiteEventStore
from service.store import DocumentRecord, EventIndex, EventRecord

__all__ = ["BLOCK_CASES", "QueryStore", "build_query_store"]

_SHIPMENTS = 322
BLOCK_CASES = _SHIPMENTS * CASES_PER_SHIPMENT
_BLOCK_EVENTS = _SHIPMENTS * (3 * CASES_PER_SHIPMENT + 1)
# The generator's clock: a second per case and one more per shipment.
_BLOCK_SECONDS = BLOCK_CASES + _SHIPMENTS
_ITEM = re.compile(rb"(sgtin:0300011\.012345\.)(\d+)")
_CASE = re.compile(rb"(sgtin:0300011\.112345\.)(\d+)")
_SHIPMENT = re.compile(rb"(:(?:PO|DA))(\d+)")
_TIME = re.compile(rb'("eventTime":")([^"]+)(")')
_KEY = re.compile(r"^(https://id\.gs1\.org/01/)(\d)(\d{13}/21/)(\d+)$")
_BT = re.compile(r"(:(?:PO|DA))(\d+)$")


class QueryStore:
    """Where the cached store lives and how many events and cases it holds."""

    def __init__(self, folder: Path, blocks: int) -> None:
        self.folder = folder
        self.path = folder / "events.sqlite3"
        self.blocks = blocks
        self.events = blocks * _BLOCK_EVENTS
        self.cases = blocks * BLOCK_CASES

    def item(self, case: int, index: int) -> str:
        """The SGTIN URN of item ``index`` of case ``case`` (1-based, as generated)."""
        return f"urn:epc:id:sgtin:0300011.012345.{case * ITEMS_PER_CASE + index}"


def _stamp() -> str:
    source = Path(__file__).read_bytes() + sqlite_store._EVENTS_SCHEMA.encode()
    return hashlib.sha256(source).hexdigest()


def _base_records(source: Path) -> list[EventRecord]:
    record_time = datetime.now(UTC)
    with source.open("rb") as stream:
        items = iter_document(stream)
        head = next(items)
        assert isinstance(head, DocumentHead)
        ignore = ignored_fields(head)
        records = []
        for event in items:
            assert not isinstance(event, DocumentHead)
            records.append(event_record(event, ignore, record_time, None))
            if len(records) == _BLOCK_EVENTS:
                return records
    raise RuntimeError(f"{source} has fewer than {_BLOCK_EVENTS} events")


def _shift_bytes(pattern: re.Pattern[bytes], text: bytes, offset: int) -> bytes:
    return pattern.sub(lambda m: m.group(1) + str(int(m.group(2)) + offset).encode(), text)


def _shift_key(key: str, block: int) -> str:
    match = _KEY.match(key)
    if match is None:
        return _BT.sub(lambda m: f"{m.group(1)}{int(m.group(2)) + block * _SHIPMENTS}", key)
    per = ITEMS_PER_CASE * BLOCK_CASES if match.group(2) == "0" else BLOCK_CASES
    return f"{match.group(1)}{match.group(2)}{match.group(3)}{int(match.group(4)) + block * per}"


def _shift_index(index: EventIndex, block: int) -> EventIndex:
    return replace(
        index,
        epcs=tuple((role, _shift_key(key, block)) for role, key in index.epcs),
        biz_transactions=tuple((t, _shift_key(v, block)) for t, v in index.biz_transactions),
    )


def _copy(record: EventRecord, block: int) -> EventRecord:
    if block == 0:
        return record
    digest = hashlib.sha256(f"{record.hash_id}/{block}".encode()).hexdigest()
    hash_id = f"ni:///sha-256;{digest}?ver=CBV2.0"
    event_time = record.event_time + timedelta(seconds=block * _BLOCK_SECONDS)
    stamp = event_time.strftime("%Y-%m-%dT%H:%M:%S.%f")[:-3] + "Z"
    body = record.body.replace(record.hash_id.encode(), hash_id.encode())
    body = _shift_bytes(_ITEM, body, block * ITEMS_PER_CASE * BLOCK_CASES)
    body = _shift_bytes(_CASE, body, block * BLOCK_CASES)
    body = _shift_bytes(_SHIPMENT, body, block * _SHIPMENTS)
    body = _TIME.sub(lambda m: m.group(1) + stamp.encode() + m.group(3), body)
    return replace(
        record,
        hash_id=hash_id,
        event_id=hash_id if record.event_id == record.hash_id else record.event_id,
        event_time=event_time,
        body=body,
        index=_shift_index(record.index, block),
    )


def _batches(base: list[EventRecord], blocks: range) -> Iterator[list[EventRecord]]:
    for block in blocks:
        records = [_copy(record, block) for record in base]
        for start in range(0, len(records), 1000):
            yield records[start : start + 1000]


async def _fill(store: QueryStore, base: list[EventRecord]) -> None:
    events = SQLiteEventStore(store.path, store.folder / "data")
    await events.open()
    try:
        # Ten blocks (about 100,000 events) per capture, as a large document would be.
        for first in range(0, store.blocks, 10):
            blocks = range(first, min(first + 10, store.blocks))
            document = DocumentRecord(
                document_id=uuid.uuid4().hex,
                sha256=hashlib.sha256(f"query-store-{first}".encode()).hexdigest(),
                size=0,
                format="1.2-xml",
                sender_partner_id="bench",
                received_at=datetime.now(UTC),
                sbdh_instance_id=None,
                sbdh_sender=None,
                sbdh_receivers=(),
                capture_id=uuid.uuid4().hex,
            )
            async with events.begin_capture(document) as session:
                for batch in _batches(base, blocks):
                    result = await session.add_events(batch)
                    if result.duplicates:
                        raise RuntimeError("query store copies collided")
                await session.commit()
    finally:
        await events.close()


def build_query_store(out: Path, events: int) -> QueryStore:
    """The cached store of at least ``events`` events (built on first use, about minutes)."""
    blocks = -(-events // _BLOCK_EVENTS)
    store = QueryStore(out / f"query-store-{events}", blocks)
    stamp = store.folder / "stamp"
    if stamp.exists() and stamp.read_text() == _stamp():
        return store
    shutil.rmtree(store.folder, ignore_errors=True)
    store.folder.mkdir(parents=True)
    source = generate(out / "dscsa-10000.xml", 10_000)
    asyncio.run(_fill(store, _base_records(source)))
    stamp.write_text(_stamp())
    return store
