"""The pending-projection journal and the start-up recovery it drives.

A capture is named before its events commit and cleared once their projection is durable;
what a crash leaves named is projected again at the next start, with the same result as a
capture that was never interrupted.
"""

from __future__ import annotations

import os
from dataclasses import replace
from datetime import UTC, datetime
from pathlib import Path

from pytest_aiohttp import AiohttpClient

from epcis.reading import ReadLimits
from service.app import create_app, open_store
from service.capture import document_facts, file_document, new_job, run_capture
from service.capture_leases import CaptureLease, lease_directory, leased
from service.ledger import Ledger
from service.ledger_records import event_digest
from service.projection_recovery import recover_projections
from service.settings import Settings
from service.sqlite_ledger_store import SQLiteLedgerStore
from service.store import CaptureJob, EventStore
from service.traceability_store import open_traceability_store
from tests.service.conftest import bearer
from tests.service.test_projection_worker import FILES, _Party

NOW = datetime(2026, 11, 27, tzinfo=UTC)


async def _crashed_capture(events: EventStore, path: Path) -> CaptureJob:
    """Events committed and nothing projected: a capture whose process died right after
    its commit (no hook ran)."""
    job = await run_capture(
        events,
        file_document(path, 1 << 30),
        new_job("partner", "rollback"),
        limits=ReadLimits(),
        source=str(path),
    )
    assert job.success, job
    return job


async def _named(party: _Party) -> list[str]:
    return [document_id for document_id, _ in await party.traceability.pending_projections()]


async def test_a_worker_capture_stays_named_until_the_worker_has_synced_it(
    tmp_path: Path,
) -> None:
    party = _Party(tmp_path / "p", worker=True)
    async with party:
        first = await party.capture(FILES[0])
        # Committed in the worker, synced right after its answer: cleared once it answers
        # again, at the next capture's start.
        assert await _named(party) == [first.document_id]
        second = await party.capture(FILES[1])
        assert await _named(party) == [second.document_id]
        await party.hook.close()  # a clean stop: after syncing the last commit
        assert await party.traceability.pending_projections() == []


async def test_a_capture_projected_here_is_cleared_at_once(tmp_path: Path) -> None:
    async with _Party(tmp_path / "p", worker=False) as party:
        assert (await party.capture(FILES[0])).success
        assert await party.traceability.pending_projections() == []
        assert len(await party.traceability.all_fact_epcs()) > 5


async def test_recovery_projects_what_a_crash_left_as_the_capture_would_have(
    tmp_path: Path,
) -> None:
    async with (
        _Party(tmp_path / "whole", worker=False) as whole,
        _Party(tmp_path / "crashed", worker=False) as crashed,
    ):
        for n, path in enumerate(FILES):
            assert (await whole.capture(path)).success
            job = await _crashed_capture(crashed.events, path)
            assert job.document_id is not None
            # Named as each capture began: projected again in that order, as they were
            # captured (findings depend on the order events arrive in; states do not).
            named_at = NOW.replace(minute=n)
            await crashed.traceability.add_pending_projection(
                job.document_id, job.capture_id, named_at
            )
        # A name whose capture never committed (it rolled back, or died before its commit).
        await crashed.traceability.add_pending_projection("never-committed", "gone", NOW)
        assert await crashed.traceability.all_fact_epcs() == []

        recovered = await recover_projections(
            crashed.events, crashed.traceability, limits=ReadLimits(), spool_dir=tmp_path
        )
        assert len(recovered) == len(FILES)
        assert "never-committed" not in recovered
        assert await crashed.traceability.pending_projections() == []
        ours, theirs = await crashed.snapshot(), await whole.snapshot()
        assert ours == theirs
        # Projecting again is harmless: the same document named twice changes nothing.
        before = await crashed.snapshot()
        await crashed.traceability.add_pending_projection(recovered[0], "again", NOW)
        assert await recover_projections(
            crashed.events, crashed.traceability, limits=ReadLimits()
        ) == [recovered[0]]
        assert await crashed.snapshot() == before
    assert len(before["states"]) > 10


async def test_recovery_leaves_the_names_of_captures_still_running_elsewhere(
    tmp_path: Path,
) -> None:
    async with _Party(tmp_path / "p", worker=False) as party:
        job = await _crashed_capture(party.events, FILES[0])
        assert job.document_id is not None
        await party.traceability.add_pending_projection(job.document_id, job.capture_id, NOW)
        # Not committed yet in another process: its name must outlive this recovery.
        elsewhere = new_job("partner", "rollback")
        await party.traceability.add_pending_projection("in-flight", elsewhere.capture_id, NOW)
        leases = tmp_path / "leases"
        with leased(leases, elsewhere):
            recovered = await recover_projections(
                party.events, party.traceability, limits=ReadLimits(), leases=leases
            )
        assert recovered == [job.document_id]
        assert await party.traceability.pending_projections() == [
            ("in-flight", elsewhere.capture_id)
        ]
        assert len(await party.traceability.all_fact_epcs()) > 5


async def test_recovery_appends_the_ledger_leaves_a_crash_cut_short(tmp_path: Path) -> None:
    async with _Party(tmp_path / "p", worker=False) as party:
        job = await _crashed_capture(party.events, FILES[0])
        assert job.document_id is not None
        await party.traceability.add_pending_projection(job.document_id, job.capture_id, NOW)
        ledger_store = SQLiteLedgerStore(tmp_path / "p" / "events.sqlite3")
        await ledger_store.open()
        try:
            ledger = Ledger(ledger_store)
            await ledger.load()
            _, facts = document_facts(file_document(FILES[0], 1 << 30), ReadLimits(), "x")
            records = await party.events.event_records([f.hash_id for f in facts])
            hashes = sorted(records)
            assert len(hashes) == len(facts) > 5
            # The hook appended the first leaves before the process died.
            await ledger.append([("event", h, event_digest(records[h].body)) for h in hashes[:2]])
            await recover_projections(
                party.events, party.traceability, limits=ReadLimits(), ledger=ledger
            )
            assert await ledger_store.size() == len(hashes) + 1  # each event once, the document
            for h in hashes:
                entry = await ledger_store.find("event", h)
                assert entry is not None
            assert await ledger_store.find("document", job.document_id) is not None
        finally:
            await ledger_store.close()


async def test_recovery_leaves_duplicates_to_the_document_that_stored_them(
    tmp_path: Path,
) -> None:
    async with _Party(tmp_path / "p", worker=False) as party:
        assert (await party.capture(FILES[0])).success
        # The same events again in a second document, stored as duplicates only.
        job = await _crashed_capture(party.events, FILES[0])
        assert job.captured == 0
        assert job.duplicates > 0
        assert job.document_id is not None
        before = await party.snapshot()
        await party.traceability.add_pending_projection(job.document_id, job.capture_id, NOW)
        assert await recover_projections(party.events, party.traceability, limits=ReadLimits()) == [
            job.document_id
        ]
        assert await party.snapshot() == before


async def test_the_service_projects_at_start_what_a_crash_left(
    aiohttp_client: AiohttpClient, settings: Settings
) -> None:
    events, traceability = open_store(settings), open_traceability_store(settings)
    await events.open()
    await traceability.open()
    try:
        job = await _crashed_capture(events, FILES[0])
        assert job.document_id is not None
        await traceability.add_pending_projection(job.document_id, job.capture_id, NOW)
        # The process died after the commit, while the hooks ran: its job still says running
        # and its lease file is left, unlocked.
        await events.put_capture_job(replace(job, running=True, document_id=None, captured=0))
        lease = CaptureLease.take(lease_directory(settings.data_dir), job)
        assert lease._fd is not None
        os.close(lease._fd)
    finally:
        await traceability.close()
        await events.close()

    client = await aiohttp_client(create_app(settings))
    operator = bearer(settings.operator_token_path.read_text().strip())
    response = await client.get("/trace/urn:epc:id:sgtin:030001.0012345.1001", headers=operator)
    assert response.status == 200, await response.text()
    body = await response.json()
    assert body["state"]["lot"] == "LOT2026A"
    # Marked interrupted by the lease recovery, then set right: the commit had completed.
    response = await client.get(f"/capture/{job.capture_id}", headers=operator)
    status = await response.json()
    assert status["running"] is False
    assert status["success"] is True, status
    assert status["errors"] == []
    assert status["captured"] == job.captured > 0
    await client.close()

    traceability = open_traceability_store(settings)
    await traceability.open()
    try:
        assert await traceability.pending_projections() == []
    finally:
        await traceability.close()
