"""One party's service instance for scenario tests: a SQLite event store and traceability store,
fed as the app will feed them (capture pipeline, then the traceability hook on the same events).
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from pathlib import Path

from epcis.event_hash import event_hash, ignored_fields
from epcis.reading import ReadLimits, read_document
from service.capture import file_document, new_job, run_capture
from service.dscsa_checks import CaptureOutcome, on_events_committed
from service.exception_records import ExceptionRecord
from service.sqlite_store import SQLiteEventStore
from service.sqlite_traceability_store import SQLiteTraceabilityStore
from service.traceability_store import ExceptionFilter

__all__ = ["SCENARIO", "Instance", "open_instance"]

SCENARIO = Path(__file__).resolve().parents[2] / "fixtures/scenarios/dscsa"


@dataclass
class Instance:
    events: SQLiteEventStore
    traceability: SQLiteTraceabilityStore

    async def capture(self, path: Path, partner_id: str = "partner") -> CaptureOutcome:
        """Capture one file: events stored, then state projected and checks recorded."""
        job = await run_capture(
            self.events,
            file_document(path, 1 << 30),
            new_job(partner_id, "rollback"),
            limits=ReadLimits(),
            source=str(path),
        )
        assert job.success, job.errors
        data = await asyncio.to_thread(path.read_bytes)
        return await self.capture_projection(data, job.document_id, partner_id)

    async def capture_projection(
        self, data: bytes, document_id: str | None, partner_id: str
    ) -> CaptureOutcome:
        document = read_document(data)
        ignore = ignored_fields(document.head)
        pairs = [(event_hash(event, ignore=ignore), event) for event in document.events]
        return await on_events_committed(
            self.traceability,
            pairs,
            header=document.head.header,
            document_id=document_id,
            partner_id=partner_id,
        )

    async def exceptions(self) -> list[ExceptionRecord]:
        return await self.traceability.list_exceptions(ExceptionFilter(limit=1000))

    async def close(self) -> None:
        await self.traceability.close()
        await self.events.close()


async def open_instance(directory: Path) -> Instance:
    await asyncio.to_thread(directory.mkdir, parents=True, exist_ok=True)
    events = SQLiteEventStore(directory / "events.sqlite3", data_dir=directory)
    traceability = SQLiteTraceabilityStore(directory / "events.traceability.sqlite")
    await events.open()
    await traceability.open()
    return Instance(events, traceability)
