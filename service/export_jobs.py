"""Running export requests (HTTP and CLI alike) and the scheduled deadline check."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from pathlib import Path

from aiohttp import web

from service.export_bundle import BundleSources, build_bundle
from service.export_store import EXPORTS, ExportStore
from service.exports import DEADLINE_WARNING, ExportRequest, ExportStatus, due_soon
from service.settings import Settings

__all__ = [
    "app_bundle_sources",
    "export_deadline_job",
    "flag_deadlines",
    "open_bundle_sources",
    "run_export",
]

logger = logging.getLogger(__name__)


async def run_export(
    request: ExportRequest, sources: BundleSources, store: ExportStore, work_dir: Path
) -> ExportRequest:
    """Build the bundle, keep it in the store, and record the outcome on the request."""
    running = request.with_status(ExportStatus.RUNNING)
    await store.put_request(running)
    await asyncio.to_thread(work_dir.mkdir, parents=True, exist_ok=True)
    target = work_dir / f"{request.export_id}.zip"
    try:
        result = await build_bundle(running, sources, target)
        await store.put_bundle(request.export_id, target)
    except Exception as error:
        logger.exception("export %s failed", request.export_id)
        failed = running.with_status(
            ExportStatus.FAILED, finished_at=datetime.now(UTC), error=str(error) or repr(error)
        )
        await store.put_request(failed)
        return failed
    finally:
        with contextlib.suppress(FileNotFoundError):
            target.unlink()
    ready = running.with_status(
        ExportStatus.READY,
        finished_at=datetime.now(UTC),
        bundle_sha256=result.sha256,
        bundle_size=result.size,
        summary=result.summary,
    )
    await store.put_request(ready)
    return ready


async def flag_deadlines(
    store: ExportStore, now: datetime | None = None, warning: timedelta = DEADLINE_WARNING
) -> Sequence[ExportRequest]:
    """Flag (once) every unfinished request due within ``warning``; answer the newly flagged."""
    moment = now or datetime.now(UTC)
    flagged: list[ExportRequest] = []
    for request in await store.list_requests(open_only=True, limit=10_000):
        if request.flagged_at is not None or not due_soon(request, moment, warning):
            continue
        marked = replace(request, flagged_at=moment)
        await store.put_request(marked)
        flagged.append(marked)
        overdue = "overdue" if request.due_at <= moment else "due soon"
        logger.warning(
            "export %s for %s is %s: due %s, status %s",
            request.export_id,
            request.requester,
            overdue,
            request.due_at.isoformat(),
            request.status.value,
        )
    return flagged


async def export_deadline_job(app: web.Application) -> None:
    """The scheduled job (e.g. every 15 minutes): flag exports close to their due time."""
    await flag_deadlines(app[EXPORTS])


def app_bundle_sources(app: web.Application) -> BundleSources:
    """Bundle sources from the running app's stores (ledger, keys, traceability, log)."""
    from service.audit import KEYRING, LEDGER
    from service.handlers.traceability import TRACEABILITY
    from service.handlers.verification import VERIFICATION
    from service.state import SETTINGS, STORE

    verification = app.get(VERIFICATION)
    return BundleSources(
        events=app[STORE],
        trace=app[TRACEABILITY],
        ledger=app[LEDGER],
        keyring=app[KEYRING],
        verification_log=verification.log if verification is not None else None,
        sender_gln=app[SETTINGS].gln,
    )


@asynccontextmanager
async def open_bundle_sources(settings: Settings) -> AsyncIterator[BundleSources]:
    """Every store an export reads, opened from settings (the CLI's way in)."""
    from service.app import open_store
    from service.audit import open_keyring, open_ledger_store
    from service.ledger import Ledger
    from service.traceability_store import open_traceability_store
    from service.verification_log import open_verification_log

    events = open_store(settings)
    await events.open()
    trace = open_traceability_store(settings)
    ledger_store = open_ledger_store(settings, events)
    log = open_verification_log(settings)
    try:
        await trace.open()
        await ledger_store.open()
        await log.open()
        ledger = Ledger(ledger_store)
        await ledger.load()
        yield BundleSources(
            events=events,
            trace=trace,
            ledger=ledger,
            keyring=open_keyring(settings.data_dir),
            verification_log=log,
            sender_gln=settings.gln,
        )
    finally:
        for closing in (log, ledger_store, trace, events):
            with contextlib.suppress(Exception):
                await closing.close()
