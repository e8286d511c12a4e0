"""Stores for export tests: a real file captured into SQLite, projected into the traceability
store and appended to the ledger, as the integrated service does after each capture."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path

from epcis.jsonld_reader import event_from_jsonld
from epcis.model import EPCISHeader
from epcis.query import EventQuery
from epcis.reading import ReadLimits
from service.capture import file_document, new_job, read_head, run_capture
from service.dscsa_checks import on_events_committed
from service.keys import KeyRing
from service.ledger import Ledger
from service.ledger_records import event_digest
from service.sqlite_ledger_store import SQLiteLedgerStore
from service.sqlite_store import SQLiteEventStore
from service.sqlite_traceability_store import SQLiteTraceabilityStore
from service.store import EventStore, PageRequest, Visibility
from service.traceability_store import TraceabilityStore

__all__ = [
    "PHARMA_EXAMPLE",
    "ExportStores",
    "index_captured",
    "index_document",
    "open_export_stores",
]

ROOT = Path(__file__).resolve().parents[2]
# The project's own DSCSA shipment (see tests/service/conftest.py).
PHARMA_EXAMPLE = ROOT / "fixtures" / "scenarios" / "dscsa" / "1-manufacturer-to-wholesaler.xml"


@dataclass(slots=True)
class ExportStores:
    events: SQLiteEventStore
    trace: SQLiteTraceabilityStore
    ledger: Ledger
    ledger_store: SQLiteLedgerStore
    keyring: KeyRing

    async def close(self) -> None:
        await self.ledger_store.close()
        await self.trace.close()
        await self.events.close()


async def open_export_stores(folder: Path) -> ExportStores:
    events = SQLiteEventStore(folder / "events.sqlite3", data_dir=folder / "data")
    await events.open()
    trace = SQLiteTraceabilityStore(folder / "trace.sqlite3")
    await trace.open()
    ledger_store = SQLiteLedgerStore(folder / "events.sqlite3")
    await ledger_store.open()
    ledger = Ledger(ledger_store)
    await ledger.load()
    keyring = KeyRing(folder / "keys", b"test passphrase")
    keyring.generate()
    return ExportStores(events, trace, ledger, ledger_store, keyring)


async def _stored(events: EventStore) -> AsyncIterator[tuple[str, bytes, str | None]]:
    token: str | None = None
    while True:
        page = await events.query_events(
            EventQuery(), Visibility.everything(), PageRequest(per_page=1000, token=token)
        )
        for record in page.records:
            yield record.hash_id, record.body, record.document_id
        token = page.next_token
        if token is None:
            return


async def index_captured(
    events: EventStore, trace: TraceabilityStore, ledger: Ledger, path: Path
) -> str:
    """Capture ``path``; project its events and append them (and the document) to the ledger."""
    limits = ReadLimits()
    document = file_document(path, 64 * 1024 * 1024)
    head = read_head(document, limits, str(path))
    job = await run_capture(
        events, document, new_job("test", "rollback"), limits=limits, source=str(path)
    )
    assert job.success, job.errors
    assert job.document_id is not None
    await index_document(events, trace, ledger, job.document_id, head.header)
    return job.document_id


async def index_document(
    events: EventStore,
    trace: TraceabilityStore,
    ledger: Ledger,
    document_id: str,
    header: EPCISHeader | None,
) -> None:
    """What the integrated service does after a capture: projection and ledger leaves."""
    known = {entry.record_id async for entry in ledger.store.iter_entries()}
    pairs = []
    leaves: list[tuple[str, str, str]] = []
    async for hash_id, body, stored_in in _stored(events):
        if stored_in != document_id or hash_id in known:
            continue
        pairs.append((hash_id, event_from_jsonld(json.loads(body), {})))
        leaves.append(("event", hash_id, event_digest(body)))
    await on_events_committed(
        trace, pairs, header=header, document_id=document_id, partner_id="test"
    )
    stored = await events.get_document(document_id)
    assert stored is not None
    await ledger.append([("document", document_id, stored.sha256), *leaves])
