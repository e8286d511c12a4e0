"""The projection worker process: atomic captures projected while stored, committed after them.

Differential throughout: the same files captured with the worker and without it (the
in-process projection after the commit) must leave the same serial states, containment and
exception records, batch by batch, whatever the worker does (busy, killed, rolled back).
"""

from __future__ import annotations

import asyncio
import sqlite3
from collections.abc import Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from pytest_aiohttp import AiohttpClient

from epcis.reading import ReadLimits
from service import capture as capture_module
from service import capture_hooks
from service.app import create_app
from service.capture import file_document, new_job, run_capture
from service.capture_hooks import TraceabilityHook
from service.containment import EventFacts
from service.projection_worker import CaptureProjection, ProjectionWorker, ProjectionWorkerError
from service.settings import Settings
from service.sqlite_store import SQLiteEventStore
from service.sqlite_traceability_store import SQLiteTraceabilityStore
from service.state import CAPTURE_POLICY
from service.store import CaptureJob
from service.traceability_store import ExceptionFilter, RecallRecord
from tests.service.conftest import bearer, capture
from tests.service.scenario_instances import SCENARIO

FILES = [
    SCENARIO / "1-manufacturer-to-wholesaler.xml",
    SCENARIO / "2-wholesaler-operations.xml",
    SCENARIO / "faulty/never-commissioned-serial.xml",
    SCENARIO / "faulty/lot-mismatch.xml",
    SCENARIO / "faulty/received-not-shipped-to-us.xml",
]


@pytest.fixture(autouse=True)
def small_batches(monkeypatch: pytest.MonkeyPatch) -> None:
    # Several batches per scenario file, so that the worker applies a capture in steps; the
    # in-process path then projects and checks in chunks of the same size.
    monkeypatch.setattr(capture_module, "BATCH_SIZE", 3)
    monkeypatch.setattr(capture_hooks, "CHUNK", 3)


class _Party:
    def __init__(self, directory: Path, *, worker: bool) -> None:
        directory.mkdir(parents=True, exist_ok=True)
        self.events = SQLiteEventStore(directory / "events.sqlite3", data_dir=directory)
        self.path = directory / "events.traceability.sqlite"
        self.traceability = SQLiteTraceabilityStore(self.path)
        self.worker = ProjectionWorker(self.path) if worker else None
        self.hook = TraceabilityHook(self.traceability, self.worker)

    async def __aenter__(self) -> _Party:
        await self.events.open()
        await self.traceability.open()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.hook.close()
        await self.traceability.close()
        await self.events.close()

    async def capture(
        self,
        path: Path,
        mode: str = "rollback",
        *,
        also: Sequence[Any] = (),
        spool_dir: Path | None = None,
    ) -> CaptureJob:
        return await run_capture(
            self.events,
            file_document(path, 1 << 30),
            new_job("partner", mode),
            limits=ReadLimits(),
            source=str(path),
            hooks=[self.hook, *also],
            spool_dir=spool_dir,
        )

    async def snapshot(self) -> dict[str, Any]:
        """Everything the projection and the checks keep, in comparable form."""
        store = self.traceability
        epcs = await store.all_fact_epcs()
        states = await store.get_states(epcs)
        intervals = await store.intervals_for_children(epcs)
        facts = await store.facts_for(epcs)
        exceptions = await store.list_exceptions(ExceptionFilter(limit=10_000))
        return {
            "states": {epc: states[epc] for epc in sorted(states)},
            "intervals": {epc: sorted(map(repr, found)) for epc, found in intervals.items()},
            "facts": {epc: sorted(f.hash_id for f in found) for epc, found in facts.items()},
            "exceptions": sorted(
                (e.type.value, e.identifiers, e.event_hashes, e.detail, e.status.value)
                for e in exceptions
            ),
        }


async def _facts_of(party: _Party, path: Path) -> list[EventFacts]:
    """The facts a capture of ``path`` hands its hooks (captured into a scratch store)."""
    seen: list[EventFacts] = []

    class Recorder:
        def summarize(self, hash_id: str, event: Any, record: Any) -> EventFacts:
            return EventFacts.from_event(event, hash_id, record.document_id)

        async def committed(self, batch: Any, items: Any) -> None:
            seen.extend(items)

    await run_capture(
        party.events,
        file_document(path, 1 << 30),
        new_job("partner", "rollback"),
        limits=ReadLimits(),
        source=str(path),
        hooks=[Recorder()],
    )
    return seen


async def test_worker_leaves_what_the_in_process_projection_leaves(tmp_path: Path) -> None:
    async with (
        _Party(tmp_path / "worker", worker=True) as piped,
        _Party(tmp_path / "here", worker=False) as here,
    ):
        for path in FILES:
            jobs = [await piped.capture(path), await here.capture(path)]
            assert all(job.success for job in jobs), jobs
            assert await piped.snapshot() == await here.snapshot(), path.name
        snapshot = await piped.snapshot()
        # The worker did the projecting (a fallback would also agree with the other party).
        assert piped.worker is not None
        assert piped.worker._process is not None
        assert piped.worker._process.is_alive()
    assert len(snapshot["states"]) > 10
    assert {kind for kind, *_ in snapshot["exceptions"]} >= {
        "never_commissioned",
        "lot_or_expiry_mismatch",
        "received_not_shipped_to_us",
    }


async def test_late_commissioning_answers_never_commissioned_exceptions_alike(
    tmp_path: Path,
) -> None:
    # The wholesaler's events on serials whose commissioning arrives afterwards.
    _assert_never_commissioned_answered(await _captured_alike(tmp_path, [FILES[1], FILES[0]]))


async def test_a_commissioning_later_in_the_same_capture_answers_its_exceptions(
    tmp_path: Path,
) -> None:
    # The items' commissioning moved to the end of the document: their packing, a batch
    # earlier, finds them never commissioned; the commissioning answers that in both paths.
    text = FILES[0].read_text()
    start = text.index("<ObjectEvent>")
    end = text.index("</ObjectEvent>") + len("</ObjectEvent>")
    tail = text.index("</EventList>")
    moved = tmp_path / "late-commissioning.xml"
    moved.write_text(text[:start] + text[end:tail] + text[start:end] + text[tail:])
    _assert_never_commissioned_answered(await _captured_alike(tmp_path, [moved]))


async def _captured_alike(tmp_path: Path, paths: Sequence[Path]) -> dict[str, Any]:
    """``paths`` captured in order with the worker and without it: the two snapshots, equal."""
    async with (
        _Party(tmp_path / "worker", worker=True) as piped,
        _Party(tmp_path / "here", worker=False) as here,
    ):
        for path in paths:
            assert (await piped.capture(path)).success
            assert (await here.capture(path)).success
        ours = await piped.snapshot()
        assert ours == await here.snapshot()
    return ours


def _assert_never_commissioned_answered(snapshot: dict[str, Any]) -> None:
    never = [e for e in snapshot["exceptions"] if e[0] == "never_commissioned"]
    assert never
    assert all(status != "open" for *_, status in never)


async def test_states_are_invisible_until_the_commit_and_gone_after_a_rollback(
    tmp_path: Path,
) -> None:
    async with _Party(tmp_path / "p", worker=True) as party:
        facts = await _facts_of(party, FILES[0])
        assert party.worker is not None
        epcs = sorted({epc for f in facts for epc in f.names()})

        tuples = [f.as_tuple() for f in facts]
        projection = await party.worker.begin()
        await projection.add(tuples[:5])
        await projection.add(tuples[5:])
        await projection.flush()  # applied in the worker, not committed
        assert await party.traceability.get_states(epcs) == {}
        await projection.rollback()
        assert await party.traceability.get_states(epcs) == {}

        projection = await party.worker.begin()
        await projection.add(tuples)
        result = await projection.commit()
        stored = await party.traceability.get_states(epcs)
    assert set(stored) == set(epcs)
    assert result.states == len(epcs)
    # No serial had exception records: none is named for the server to look at again.
    assert result.commissioned == ()


async def test_a_rolled_back_capture_leaves_no_state(tmp_path: Path) -> None:
    bad = tmp_path / "bad.xml"
    # A valid document whose last event is broken: the reader refuses it after the earlier
    # batches were stored (and projected in the worker).
    text = FILES[0].read_text()
    last = text.rindex("</ObjectEvent>")
    bad.write_text(text[:last] + "<bizStep>not a uri at all</bizStep>" + text[last:])
    async with _Party(tmp_path / "p", worker=True) as party:
        job = await party.capture(bad)
        assert not job.success
        assert party.worker is not None
        assert party.worker._process is not None  # the stored batches went to the worker
        assert await party.traceability.all_fact_epcs() == []
        # The worker is free again and the next capture goes through it.
        assert party.worker is not None
        assert not party.worker.busy
        assert (await party.capture(FILES[0])).success
        assert len(await party.traceability.all_fact_epcs()) > 0


async def test_a_worker_killed_mid_capture_is_replaced_by_projecting_here(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    added = CaptureProjection.add

    async def add_then_die(self: CaptureProjection, facts: Any) -> None:
        await added(self, facts)
        worker = self._worker
        assert worker is not None
        worker._process.kill()  # the worker dies with batches in hand, nothing committed

    async with (
        _Party(tmp_path / "worker", worker=True) as piped,
        _Party(tmp_path / "here", worker=False) as here,
    ):
        with monkeypatch.context() as patch:
            patch.setattr(CaptureProjection, "add", add_then_die)
            assert (await piped.capture(FILES[0])).success
        assert (await here.capture(FILES[0])).success
        assert await piped.snapshot() == await here.snapshot()
        # The next capture starts a new worker.
        assert (await piped.capture(FILES[1])).success
        assert (await here.capture(FILES[1])).success
        assert await piped.snapshot() == await here.snapshot()


async def test_a_worker_dying_before_its_commit_is_replaced_by_projecting_here(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    committed = CaptureProjection.commit

    async def die_then_commit(self: CaptureProjection) -> Any:
        worker = self._worker
        assert worker is not None
        await self.flush()  # every batch reached the worker; only the commit is left
        worker._process.kill()
        return await committed(self)

    async with (
        _Party(tmp_path / "worker", worker=True) as piped,
        _Party(tmp_path / "here", worker=False) as here,
    ):
        with monkeypatch.context() as patch:
            patch.setattr(CaptureProjection, "commit", die_then_commit)
            assert (await piped.capture(FILES[0])).success
        assert (await here.capture(FILES[0])).success
        assert await piped.snapshot() == await here.snapshot()
        assert len((await piped.snapshot())["states"]) > 5


class _Recorder:
    """A hook beside the projection: what it summarizes and what it is handed after."""

    def __init__(self) -> None:
        self.summarized = 0
        self.handed: list[str] = []

    def summarize(self, hash_id: str, event: Any, record: Any) -> str:
        self.summarized += 1
        return hash_id

    async def committed(self, batch: Any, items: Any) -> None:
        self.handed.extend(items)


async def test_the_runner_holds_no_projection_items_while_the_worker_keeps_them(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    held: list[tuple[Any, ...]] = []
    hold = capture_hooks.HookRunner.hold

    def spy(self: capture_hooks.HookRunner, summaries: Sequence[tuple[Any, ...]]) -> None:
        held.extend(summaries)
        hold(self, summaries)

    monkeypatch.setattr(capture_hooks.HookRunner, "hold", spy)
    recorder = _Recorder()
    async with (
        _Party(tmp_path / "worker", worker=True) as piped,
        _Party(tmp_path / "here", worker=False) as here,
    ):
        assert (await piped.capture(FILES[0], also=[recorder])).success
        # The recorder's items were held and handed over, every one; the projection's were
        # held by the worker's stage alone (a placeholder in their place).
        assert recorder.summarized > 5
        assert len(recorder.handed) == recorder.summarized
        assert [summary[1] for summary in held] == recorder.handed
        assert all(summary[0] is None for summary in held)
        held.clear()
        assert (await here.capture(FILES[0])).success
        assert all(summary[0] is not None for summary in held)
        assert await piped.snapshot() == await here.snapshot()


async def test_a_replay_file_that_cannot_be_written_fails_the_capture_whole(
    tmp_path: Path,
) -> None:
    not_a_directory = tmp_path / "spool"
    not_a_directory.write_text("a file where the spool directory should be")
    async with _Party(tmp_path / "p", worker=True) as party:
        job = await party.capture(FILES[0], spool_dir=not_a_directory)
        assert not job.success
        assert job.captured == 0
        assert await party.events.count_events() == 0
        assert await party.traceability.all_fact_epcs() == []
        assert party.worker is not None
        assert not party.worker.busy
        assert (await party.capture(FILES[0], spool_dir=tmp_path / "spool-ok")).success
        assert len(await party.traceability.all_fact_epcs()) > 0


async def test_a_capture_while_the_worker_is_busy_is_projected_after_its_commit(
    tmp_path: Path,
) -> None:
    async with (
        _Party(tmp_path / "worker", worker=True) as piped,
        _Party(tmp_path / "here", worker=False) as here,
    ):
        jobs = await asyncio.gather(piped.capture(FILES[0]), piped.capture(FILES[1]))
        assert all(job.success for job in jobs)
        for path in FILES[:2]:
            assert (await here.capture(path)).success
        # Which of the two is projected first is up to the scheduler: state comes out the
        # same either way, findings need not (a receipt projected before its shipment is
        # found wanting, then answered).
        ours, theirs = await piped.snapshot(), await here.snapshot()
        for part in ("states", "intervals", "facts"):
            assert ours[part] == theirs[part], part
        assert piped.worker is not None
        assert not piped.worker.busy


async def test_proceed_captures_are_projected_here(tmp_path: Path) -> None:
    async with (
        _Party(tmp_path / "worker", worker=True) as piped,
        _Party(tmp_path / "here", worker=False) as here,
    ):
        assert (await piped.capture(FILES[0], "proceed")).success
        assert (await here.capture(FILES[0], "proceed")).success
        assert await piped.snapshot() == await here.snapshot()
        assert piped.worker is not None
        assert piped.worker._process is None


async def test_a_long_projection_transaction_blocks_no_recall_or_resolution(
    tmp_path: Path,
) -> None:
    async with _Party(tmp_path / "p", worker=True) as party:
        facts = await _facts_of(party, FILES[0])
        assert party.worker is not None
        projection = await party.worker.begin()
        await projection.add([f.as_tuple() for f in facts])
        await projection.flush()  # the worker holds the projection file's write lock
        recall = RecallRecord(
            recall_id="r1",
            created_at=datetime.now(UTC),
            created_by="operator",
            serials=("urn:epc:id:sgtin:0300011.012345.1",),
        )
        await asyncio.wait_for(party.traceability.add_recall(recall), timeout=2)
        assert await party.traceability.get_recall(recall.recall_id) is not None
        await projection.commit()


async def test_a_closed_worker_refuses_and_its_process_is_gone(tmp_path: Path) -> None:
    worker = ProjectionWorker(tmp_path / "t.sqlite")
    await worker.start()
    process = worker._process
    assert process is not None
    assert process.is_alive()
    await worker.close()
    assert not process.is_alive()
    with pytest.raises(ProjectionWorkerError):
        await worker.begin()


def test_fork_is_refused(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="forked"):
        ProjectionWorker(tmp_path / "t.sqlite", start_method="fork")


def test_the_projection_file_has_no_open_transaction_after_a_capture(tmp_path: Path) -> None:
    async def run() -> None:
        async with _Party(tmp_path / "p", worker=True) as party:
            assert (await party.capture(FILES[0])).success
            # Another writer gets the lock at once: the worker's transaction ended.
            db = sqlite3.connect(party.path, timeout=0.5)
            db.execute("BEGIN IMMEDIATE")
            db.execute("ROLLBACK")
            db.close()

    asyncio.run(run())


async def test_the_service_projects_through_the_worker_and_stops_it(
    aiohttp_client: AiohttpClient, settings: Settings
) -> None:
    assert settings.projection_worker  # the default
    client = await aiohttp_client(create_app(settings))
    operator = bearer(settings.operator_token_path.read_text().strip())
    job = await capture(client, FILES[0].read_bytes(), operator)
    assert job["success"] is True
    hook = client.app[CAPTURE_POLICY].hooks[0]
    assert isinstance(hook, TraceabilityHook)
    assert hook.worker is not None
    process = hook.worker._process
    assert process is not None
    assert process.is_alive()
    response = await client.get("/trace/urn:epc:id:sgtin:030001.0012345.1001", headers=operator)
    assert response.status == 200, await response.text()
    body = await response.json()
    assert body["state"]["lot"]
    assert body["status"] in {"in_transit", "received", "commissioned", "packed"}
    await client.close()
    assert not process.is_alive()


def test_facts_travel_as_tuples_unchanged() -> None:
    """What the hook hands the worker is the facts of each event, field for field."""
    from epcis.event_hash import event_hash
    from epcis.reading import read_document
    from service.containment import facts_tuple

    count = 0
    for path in [*FILES, SCENARIO / "3-wholesaler-to-pharmacy.xml"]:
        for event in read_document(path.read_bytes()).events:
            hash_id = event_hash(event)
            facts = EventFacts.from_event(event, hash_id, "doc")
            values = facts_tuple(event, hash_id, "doc")
            assert values == facts.as_tuple()
            assert EventFacts.from_tuple(values) == facts
            count += 1
    assert count > 10
