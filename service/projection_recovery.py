"""Start-up recovery: the projection and ledger leaves of captures a crash cut short.

An atomic capture names its document in the traceability store's pending-projection journal
before its events commit, and clears the name once their projection is durable
(``service.capture_hooks``). A process that dies in between (killed, out of memory, power
lost while the projection worker's last commit was not yet on disk) leaves events without
serial state; the name it leaves says which. Projecting is idempotent on events (facts
already stored are skipped), so a document projected again in full costs a look-up, never a
second state change or a second exception record. The capture's job, which the lease
recovery run just before marked interrupted, is set right: its commit had completed; and
the ledger leaves its ledger hook had not appended yet are appended.

Not covered: a ``proceed`` capture (each batch durable on its own, projected after it) is
not named, and neither are findings lost after their projection committed; ``dscsa
rebuild`` recomputes all state for those.
"""

from __future__ import annotations

import asyncio
import logging
import tempfile
from dataclasses import replace
from pathlib import Path

from epcis.reading import ReadLimits
from service.capture import document_facts, spool
from service.capture_hooks import CHUNK
from service.capture_leases import INTERRUPTED_TITLE, running_captures
from service.dscsa_checks import facts_committed
from service.ledger import Ledger
from service.ledger_records import event_digest
from service.store import DocumentRecord, EventStore
from service.traceability_store import TraceabilityStore

__all__ = ["recover_projections"]

logger = logging.getLogger(__name__)


async def recover_projections(
    events: EventStore,
    store: TraceabilityStore,
    *,
    limits: ReadLimits,
    spool_dir: Path | None = None,
    leases: Path | None = None,
    ledger: Ledger | None = None,
) -> list[str]:
    """Project every document the journal names whose capture committed, then clear the
    names (a capture that never committed left nothing to project). Names of captures whose
    lease in ``leases`` a live process holds (another process on the same data directory,
    which clears them itself) are left alone. With ``ledger``, the leaves the capture's
    ledger hook had not appended yet are appended too. Returns the documents projected
    again. Run before this process takes captures.
    """
    named = await store.pending_projections()
    # Read after the names: a capture takes its lease before it names its document, so one
    # named above and still running is in this set.
    running = await asyncio.to_thread(running_captures, leases) if leases else set()
    recovered: list[str] = []
    for document_id, capture_id in named:
        if capture_id in running:
            continue
        document = await events.get_document(document_id)
        if document is not None:
            captured, duplicates = await _project_again(
                events, store, document, limits, spool_dir, ledger
            )
            await _committed_after_all(events, capture_id, document_id, captured, duplicates)
            recovered.append(document_id)
            logger.warning("projected the events of document %s again", document_id)
        await store.clear_pending_projections([document_id])
    return recovered


async def _project_again(
    events: EventStore,
    store: TraceabilityStore,
    document: DocumentRecord,
    limits: ReadLimits,
    spool_dir: Path | None,
    ledger: Ledger | None,
) -> tuple[int, int]:
    """The document's stored bytes read again, the events stored under it projected; how many
    were stored under it, and how many were already stored (duplicates)."""
    directory = spool_dir or Path(tempfile.gettempdir())
    # The stored bytes were accepted once; the limits only guard against a changed setting.
    spooled = await spool(
        events.open_document_content(document.sha256), directory, limits.max_bytes
    )
    try:
        head, facts = await asyncio.to_thread(
            document_facts,
            spooled,
            limits,
            f"document {document.document_id}",
            document.document_id,
        )
    finally:
        await asyncio.to_thread(spooled.discard)
    captured = 0
    for start in range(0, len(facts), CHUNK):
        chunk = facts[start : start + CHUNK]
        records = await events.event_records([f.hash_id for f in chunk])
        # Events another document stored first are that document's to project.
        ours = [
            f
            for f in chunk
            if (record := records.get(f.hash_id)) is not None
            and record.document_id == document.document_id
        ]
        captured += len(ours)
        if ledger is not None:
            await _missing_leaves(
                ledger, [("event", f.hash_id, event_digest(records[f.hash_id].body)) for f in ours]
            )
        await facts_committed(
            store,
            ours,
            header=head.header,
            document_id=document.document_id,
            partner_id=document.sender_partner_id,
        )
    if ledger is not None:  # last, as the hook appends it: once every event is durable
        await _missing_leaves(ledger, [("document", document.document_id, document.sha256)])
    return captured, len(facts) - captured


async def _missing_leaves(ledger: Ledger, leaves: list[tuple[str, str, str]]) -> None:
    """Append the leaves the ledger does not hold yet (a crash cut the hook's appends short)."""
    missing = [leaf for leaf in leaves if await ledger.store.find(leaf[0], leaf[1]) is None]
    await ledger.append(missing)


async def _committed_after_all(
    events: EventStore, capture_id: str, document_id: str, captured: int, duplicates: int
) -> None:
    """A job marked interrupted whose document did commit (the process died after the
    commit, while the capture's hooks ran) is told so: it succeeded."""
    job = await events.get_capture_job(capture_id)
    if job is None or job.running or job.success or job.document_id is not None:
        return
    if not any(problem.title == INTERRUPTED_TITLE for problem in job.errors):
        return
    errors = tuple(p for p in job.errors if p.title != INTERRUPTED_TITLE)
    await events.put_capture_job(
        replace(
            job,
            success=not errors,
            document_id=document_id,
            captured=captured,
            duplicates=duplicates,
            rejected=0,
            errors=errors,
        )
    )
