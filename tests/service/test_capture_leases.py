"""Captures whose process died are found at the next start: their jobs are marked interrupted,
MongoDB's uncommitted events are discarded, and running captures are never touched."""

from __future__ import annotations

import asyncio
import os
import signal
import sys
from collections.abc import AsyncIterator
from dataclasses import replace
from pathlib import Path

import pytest
from mongomock_motor import AsyncMongoMockClient
from pytest_aiohttp import AiohttpClient

from service.app import create_app
from service.capture import new_job
from service.capture_leases import (
    INTERRUPTED_TITLE,
    CaptureLease,
    lease_directory,
    leased,
    recover_interrupted_captures,
    running_captures,
)
from service.mongo_store import MongoEventStore
from service.settings import Settings
from service.sqlite_store import SQLiteEventStore
from service.state import STORE
from service.store import Visibility
from tests.service.conftest import bearer
from tests.service.store_fixtures import stored_events

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture
async def store(tmp_path: Path) -> AsyncIterator[SQLiteEventStore]:
    opened = SQLiteEventStore(tmp_path / "events.sqlite3", data_dir=tmp_path)
    await opened.open()
    yield opened
    await opened.close()


def _abandon(lease: CaptureLease) -> None:
    """What a process that dies leaves behind: the file, no longer locked."""
    assert lease._fd is not None
    os.close(lease._fd)
    lease._fd = None


async def test_a_running_capture_is_left_alone(store: SQLiteEventStore, tmp_path: Path) -> None:
    job = new_job("p1", "rollback")
    await store.put_capture_job(job)
    with leased(tmp_path / "leases", job) as lease:
        assert running_captures(tmp_path / "leases") == {job.capture_id}  # held here
        assert await recover_interrupted_captures(store, tmp_path / "leases") == []
        assert lease.path.exists()
        assert (await store.get_capture_job(job.capture_id)) == job
    assert not lease.path.exists()  # released when the capture ends


async def test_an_abandoned_lease_marks_its_job_interrupted(
    store: SQLiteEventStore, tmp_path: Path
) -> None:
    job = new_job("p1", "rollback")
    await store.put_capture_job(job)
    lease = CaptureLease.take(tmp_path / "leases", job)
    _abandon(lease)
    recovered = await recover_interrupted_captures(store, tmp_path / "leases")
    assert [j.capture_id for j in recovered] == [job.capture_id]
    stored = await store.get_capture_job(job.capture_id)
    assert stored is not None
    assert (stored.running, stored.success) == (False, False)
    assert stored.finished_at is not None
    [problem] = stored.errors
    assert problem.title == INTERRUPTED_TITLE
    assert problem.type == "epcisException:ImplementationException"
    assert "nothing of the document is stored" in (problem.detail or "")
    assert not lease.path.exists()
    # Once recovered, a second start finds nothing.
    assert await recover_interrupted_captures(store, tmp_path / "leases") == []


async def test_a_capture_without_a_job_record_is_recorded_as_interrupted(
    store: SQLiteEventStore, tmp_path: Path
) -> None:
    # `dscsa capture` records its job only at the end: the lease alone names it.
    job = new_job("local-cli", "proceed")
    _abandon(CaptureLease.take(tmp_path / "leases", job))
    await recover_interrupted_captures(store, tmp_path / "leases")
    stored = await store.get_capture_job(job.capture_id)
    assert stored is not None
    assert (stored.partner_id, stored.capture_error_behaviour) == ("local-cli", "proceed")
    assert stored.created_at == job.created_at
    assert "batches committed before the stop are stored" in (stored.errors[0].detail or "")


async def test_a_finished_job_keeps_its_outcome(store: SQLiteEventStore, tmp_path: Path) -> None:
    job = new_job("p1", "rollback")
    finished = replace(job, running=False, captured=7)
    await store.put_capture_job(finished)
    lease = CaptureLease.take(tmp_path / "leases", job)
    _abandon(lease)  # died after recording the outcome, before releasing the lease
    assert await recover_interrupted_captures(store, tmp_path / "leases") == []
    assert await store.get_capture_job(job.capture_id) == finished
    assert not lease.path.exists()


_HOLDER = """
import sys, time
from pathlib import Path
sys.path.insert(0, sys.argv[3])
from service.capture import new_job
from service.capture_leases import CaptureLease
from dataclasses import replace
job = replace(new_job("p1", "rollback"), capture_id=sys.argv[2])
CaptureLease.take(Path(sys.argv[1]), job)
print("held", flush=True)
time.sleep(60)
"""


async def test_a_killed_process_leaves_a_lease_the_next_start_recovers(
    store: SQLiteEventStore, tmp_path: Path
) -> None:
    job = new_job("p1", "rollback")
    await store.put_capture_job(job)
    leases = tmp_path / "leases"
    holder = await asyncio.create_subprocess_exec(
        sys.executable,
        "-c",
        _HOLDER,
        str(leases),
        job.capture_id,
        str(ROOT),
        stdout=asyncio.subprocess.PIPE,
    )
    try:
        assert holder.stdout is not None
        assert (await holder.stdout.readline()).strip() == b"held"
        # Held by a live process (not this one): left alone.
        assert running_captures(leases) == {job.capture_id}
        assert await recover_interrupted_captures(store, leases) == []
        assert (await store.get_capture_job(job.capture_id)) == job
    finally:
        holder.send_signal(signal.SIGKILL)
        await holder.wait()
    assert running_captures(leases) == set()  # the file is there, nobody holds it
    recovered = await recover_interrupted_captures(store, leases)
    assert [j.running for j in recovered] == [False]
    assert list(leases.iterdir()) == []


async def test_mongo_discards_an_uncommitted_atomic_capture_only() -> None:
    # mongomock-motor emulates the collections and indexes; the compensation is plain
    # find/delete, which it implements as a server does.
    store = MongoEventStore(AsyncMongoMockClient()["dscsa"])
    await store.open()
    (first, first_events), (second, second_events), *_ = stored_events()
    committed = store.begin_capture(first, atomic=True)
    async with committed:
        await committed.add_events([e.record for e in first_events])
        await committed.commit()
    crashed = store.begin_capture(second, atomic=True)
    await crashed.__aenter__()
    await crashed.add_events([e.record for e in second_events])  # then the process died
    assert await store.discard_uncommitted_capture(first.capture_id) == 0
    assert await store.discard_uncommitted_capture(second.capture_id) == len(second_events)
    everyone = Visibility.everything()
    for stored in first_events:
        assert await store.get_event(stored.record.hash_id, everyone) is not None
    for stored in second_events:
        assert await store.get_event(stored.record.hash_id, everyone) is None


async def test_the_service_marks_a_dead_capture_interrupted_at_start(
    aiohttp_client: AiohttpClient, settings: Settings
) -> None:
    first = await aiohttp_client(create_app(settings))
    operator = bearer(settings.operator_token_path.read_text().strip())
    job = new_job("operator", "rollback")
    await first.app[STORE].put_capture_job(job)
    _abandon(CaptureLease.take(lease_directory(settings.data_dir), job))
    await first.close()
    second = await aiohttp_client(create_app(settings))
    reply = await second.get(f"/capture/{job.capture_id}", headers=operator)
    body = await reply.json()
    assert (reply.status, body["running"], body["success"]) == (200, False, False)
    assert body["errors"][0]["title"] == INTERRUPTED_TITLE


async def test_an_http_capture_holds_its_lease_while_it_runs(
    aiohttp_client: AiohttpClient, settings: Settings
) -> None:
    client = await aiohttp_client(create_app(settings))
    operator = bearer(settings.operator_token_path.read_text().strip())
    leases = lease_directory(settings.data_dir)
    body = (ROOT / "fixtures/scenarios/dscsa/1-manufacturer-to-wholesaler.xml").read_bytes()
    reply = await client.post(
        "/capture", data=body, headers={**operator, "Content-Type": "application/xml"}
    )
    assert reply.status == 202
    capture_id = reply.headers["Location"].rsplit("/", 1)[1]
    for _ in range(200):
        job = await (await client.get(f"/capture/{capture_id}", headers=operator)).json()
        if not job["running"]:
            break
        # While it runs, its lease is held: a recovery now would leave it alone.
        assert not leases.exists() or [p.name for p in leases.iterdir()] in ([], [capture_id])
        await asyncio.sleep(0.02)
    assert job["success"] is True
    assert list(leases.iterdir()) == []
