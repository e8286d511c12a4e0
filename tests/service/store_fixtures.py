"""A small realistic event set for the store contract suite, read from the project's fixtures.

Events come from the DSCSA scenario files, the DSCSA JSON-LD fixture and the every-field
EPCIS 2.0 document, so every query parameter has events that match it and events that do not,
and the suite needs nothing outside the repository. Each file is captured as one document by
one sender, with one record time, as the capture pipeline would.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from functools import cache
from pathlib import Path

from epcis.event_hash import event_hash
from epcis.model import EventBase
from epcis.reading import read_document
from service.event_index import index_event
from service.store import DocumentRecord, EventRecord

__all__ = [
    "PARTNER_A",
    "PARTNER_B",
    "SOURCES",
    "StoredEvent",
    "document_for",
    "stored_events",
]

ROOT = Path(__file__).resolve().parents[2]
FIXTURES = ROOT / "fixtures"
PARTNER_A = "partner-a"
PARTNER_B = "partner-b"
# (file, sender): the manufacturer's documents come from partner A, the rest from B.
SOURCES: tuple[tuple[Path, str], ...] = (
    (FIXTURES / "scenarios/dscsa/1-manufacturer-to-wholesaler.xml", PARTNER_A),
    (FIXTURES / "epcis/dscsa-shipment.jsonld", PARTNER_A),
    (FIXTURES / "epcis/every-field-2.0.xml", PARTNER_B),
    (FIXTURES / "scenarios/dscsa/2-wholesaler-operations.xml", PARTNER_B),
    (FIXTURES / "epcis/dscsa-shipment-1.2.xml", PARTNER_B),
)
RECORD_TIME = datetime(2026, 1, 5, 9, 0, tzinfo=UTC)


@dataclass(frozen=True, slots=True)
class StoredEvent:
    """A model event (recordTime and eventID set as the pipeline sets them) and its record."""

    event: EventBase
    record: EventRecord
    sender: str


def document_for(path: Path, sender: str, number: int) -> DocumentRecord:
    data = path.read_bytes()
    return DocumentRecord(
        document_id=f"doc-{number:02d}",
        sha256=hashlib.sha256(data).hexdigest(),
        size=len(data),
        format="test",
        sender_partner_id=sender,
        received_at=RECORD_TIME + timedelta(minutes=number),
        sbdh_instance_id=None,
        sbdh_sender=None,
        sbdh_receivers=(),
        capture_id=f"capture-{number:02d}",
    )


def _record(event: EventBase, document_id: str) -> tuple[EventBase, EventRecord]:
    hash_id = event_hash(event)
    record_time = event.record_time
    assert record_time is not None
    event = event.model_copy(update={"event_id": event.event_id or hash_id})
    # Stand-in for epcis.jsonld_writer.event_to_jsonld: the body is opaque to the store.
    body = json.dumps(
        event.model_dump(by_alias=True, mode="json", exclude_none=True), separators=(",", ":")
    ).encode()
    record = EventRecord(
        hash_id=hash_id,
        event_id=event.event_id or hash_id,
        event_type=event.type,  # type: ignore[attr-defined]
        event_time=event.event_time,
        record_time=record_time,
        document_id=document_id,
        body=body,
        index=index_event(event),
    )
    return event, record


@cache
def stored_events() -> tuple[tuple[DocumentRecord, tuple[StoredEvent, ...]], ...]:
    """Per document, its events (first occurrence of each hash only), in document order."""
    seen: set[str] = set()
    documents = []
    for number, (path, sender) in enumerate(SOURCES):
        document = document_for(path, sender, number)
        record_time = RECORD_TIME + timedelta(minutes=number)
        events = []
        for event in read_document(path.read_bytes()).events:
            timed = event.model_copy(update={"record_time": record_time})
            model, record = _record(timed, document.document_id)
            if record.hash_id not in seen:
                seen.add(record.hash_id)
                events.append(StoredEvent(model, record, sender))
        documents.append((document, tuple(events)))
    return tuple(documents)
