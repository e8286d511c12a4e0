"""The warm schema check worker: the same problems as ``validate_xml``, crash recovery, stop."""

from __future__ import annotations

import asyncio
import os
import signal
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

import service.schema_check
from epcis.validation import validate_xml
from service.schema_check import SchemaChecker, SchemaCheckFailedError
from tests.service.large_documents import ROOT, shipment_with_commissionings

FOLDERS = ("fixtures/epcis", "fixtures/epcis/invalid", "fixtures/epcis/hostile")
FILES = [
    *sorted(path for folder in FOLDERS for path in (ROOT / folder).glob("*.xml")),
    ROOT / "fixtures" / "partners" / "shipment_with_bad_event.xml",
]


@pytest.fixture(scope="module")
def checker() -> Iterator[SchemaChecker]:
    """One worker for the module's tests (each test runs on its own event loop)."""
    shared = SchemaChecker()
    yield shared
    asyncio.run(shared.close())


def test_the_fixture_files_include_valid_and_invalid_ones() -> None:
    verdicts = [bool(validate_xml(path)) for path in FILES]
    assert len(FILES) >= 10
    assert True in verdicts
    assert False in verdicts


async def test_the_worker_reports_what_validate_xml_reports(checker: SchemaChecker) -> None:
    for path in FILES:
        expected = validate_xml(path, source_name=path.name)
        assert await checker.problems(path, path.name) == expected, path.name


async def test_a_generated_document_is_located_the_same_way(
    checker: SchemaChecker, tmp_path: Path
) -> None:
    valid = tmp_path / "valid.xml"
    valid.write_bytes(shipment_with_commissionings(300))
    broken = tmp_path / "broken.xml"
    data = shipment_with_commissionings(300, wrong_order_at=250)
    broken.write_bytes(data)
    action_line = data[: data.index(b"<action>ADD</action><epcList>")].count(b"\n") + 1
    assert await checker.problems(valid, "valid.xml") == []
    problems = await checker.problems(broken, "broken.xml")
    assert problems == validate_xml(broken, source_name="broken.xml")
    (problem,) = problems
    assert problem.source == "broken.xml"
    assert problem.line == action_line
    assert problem.path is not None
    assert problem.path.endswith("/ObjectEvent[252]/action")
    assert "action" in problem.reason


async def test_the_worker_is_warm_and_reused(checker: SchemaChecker) -> None:
    pid = await checker.warm()
    assert pid != os.getpid()
    assert await checker.warm() == pid
    assert await checker.worker_cpu_seconds() > 0


async def test_a_worker_that_located_problems_in_a_large_document_is_retired(
    tmp_path: Path,
) -> None:
    valid = tmp_path / "valid.xml"
    valid.write_bytes(shipment_with_commissionings(50))
    broken = tmp_path / "broken.xml"
    broken.write_bytes(shipment_with_commissionings(50, wrong_order_at=20))
    async with SchemaChecker(defer_above=1_000) as checker:
        first = await checker.warm()
        assert await checker.problems(valid, "valid.xml") == []
        assert await checker.warm() == first
        assert await checker.problems(broken, "broken.xml")
        assert await checker.warm() != first  # its heap held the whole tree: a fresh one
    async with SchemaChecker() as small:  # below the threshold the tree is small: kept
        first = await small.warm()
        assert await small.problems(broken, "broken.xml")
        assert await small.warm() == first


async def test_a_killed_idle_worker_is_replaced(tmp_path: Path) -> None:
    document = tmp_path / "doc.xml"
    document.write_bytes(shipment_with_commissionings(10, wrong_order_at=3))
    async with SchemaChecker() as checker:
        first = await checker.warm()
        os.kill(first, signal.SIGKILL)
        problems = await checker.problems(document, "doc.xml")
        assert problems == validate_xml(document, source_name="doc.xml")
        assert problems
        assert await checker.warm() not in {first, os.getpid()}


async def test_a_worker_killed_mid_check_is_replaced_and_the_check_made(tmp_path: Path) -> None:
    document = tmp_path / "doc.xml"
    document.write_bytes(shipment_with_commissionings(3000, wrong_order_at=2900))
    async with SchemaChecker() as checker:
        first = await checker.warm()
        check = asyncio.ensure_future(checker.problems(document, "doc.xml"))
        await asyncio.sleep(0.05)
        os.kill(first, signal.SIGKILL)
        problems = await asyncio.wait_for(check, 30)
        assert problems == validate_xml(document, source_name="doc.xml")
        assert await checker.warm() != first


async def test_a_worker_that_dies_twice_is_a_server_error_not_a_hang(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    # Every worker aborts as it starts (the initializer is pickled by name, so the patched
    # module attribute is what the pool sends).
    monkeypatch.setattr(service.schema_check, "_warm_worker", os.abort)
    document = tmp_path / "doc.xml"
    document.write_bytes(shipment_with_commissionings(1))
    async with SchemaChecker() as checker:
        with pytest.raises(SchemaCheckFailedError, match="died twice") as raised:
            await asyncio.wait_for(checker.problems(document, "doc.xml"), 60)
        assert raised.value.status == 500
        monkeypatch.undo()
        # The next check gets a fresh worker.
        assert await checker.problems(document, "doc.xml") == []


async def test_a_cancelled_check_leaves_the_worker_usable(tmp_path: Path) -> None:
    big = tmp_path / "big.xml"
    big.write_bytes(shipment_with_commissionings(3000))
    small = tmp_path / "small.xml"
    small.write_bytes(shipment_with_commissionings(5, wrong_order_at=1))
    async with SchemaChecker() as checker:
        await checker.warm()
        running = asyncio.ensure_future(checker.problems(big, "big.xml"))
        waiting = asyncio.ensure_future(checker.problems(big, "big.xml"))
        await asyncio.sleep(0.05)
        running.cancel()
        waiting.cancel()
        problems = await asyncio.wait_for(checker.problems(small, "small.xml"), 30)
        assert problems == validate_xml(small, source_name="small.xml")
        assert running.cancelled()
        assert waiting.cancelled()


async def test_close_stops_a_busy_worker_promptly_and_refuses_later_checks(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setattr(service.schema_check, "_STOP_GRACE_SECONDS", 0.0)
    big = tmp_path / "big.xml"
    # ~0.8 s to check here: still checking when close() comes 0.1 s in (5,000 events took
    # 0.2 s, and a fast moment of the machine finished them first).
    big.write_bytes(shipment_with_commissionings(20_000))
    checker = SchemaChecker()
    pid = await checker.warm()
    busy = asyncio.ensure_future(checker.problems(big, "big.xml"))
    await asyncio.sleep(0.1)
    started = time.monotonic()
    await checker.close()
    assert time.monotonic() - started < 5
    with pytest.raises(SchemaCheckFailedError):
        await busy
    with pytest.raises(SchemaCheckFailedError, match="shut down"):
        await checker.problems(big, "big.xml")
    with pytest.raises(ProcessLookupError):
        os.kill(pid, 0)


def test_fork_is_refused() -> None:
    with pytest.raises(ValueError, match="forked"):
        SchemaChecker(start_method="fork")


def test_defers_only_above_the_threshold() -> None:
    checker = SchemaChecker(defer_above=1000)
    assert not checker.defers(1000)
    assert checker.defers(1001)
    assert SchemaChecker().defer_above == service.schema_check.DEFER_ABOVE_BYTES


_SERVER = """
import asyncio, sys, time
from pathlib import Path
sys.path.insert(0, sys.argv[1])
from service.schema_check import SchemaChecker

async def main():
    checker = SchemaChecker()
    Path(sys.argv[2]).write_text(str(await checker.warm()))
    time.sleep(60)

asyncio.run(main())
"""


async def test_a_worker_outlives_no_server_killed_with_sigkill(tmp_path: Path) -> None:
    # The worker's pid comes through a file: a pipe to the server would stay open as long as
    # an orphaned worker holds its copy, and waiting on the server would wait for that too.
    told = tmp_path / "worker.pid"
    server = await asyncio.create_subprocess_exec(
        sys.executable, "-c", _SERVER, str(ROOT), str(told), stdout=asyncio.subprocess.DEVNULL
    )
    deadline = time.monotonic() + 60
    while not told.exists() or not told.read_text():
        assert time.monotonic() < deadline, "the server never warmed its worker"
        await asyncio.sleep(0.1)
    worker = int(told.read_text())
    os.kill(worker, 0)  # running
    server.send_signal(signal.SIGKILL)
    await server.wait()
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        try:
            os.kill(worker, 0)
        except ProcessLookupError:
            return  # gone with its server
        await asyncio.sleep(0.2)
    os.kill(worker, signal.SIGKILL)
    pytest.fail("the schema-check worker outlived its server by 10 s")
