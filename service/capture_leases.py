"""Leases on running captures: a capture whose process died is found at the next start.

A capture holds an exclusive ``flock`` on ``DATA_DIR/capture-leases/<capture id>`` while it
runs. The kernel drops the lock when the process dies, however it dies (crash, ``kill -9``,
out of memory), so a lease file that nobody holds names a capture that never finished. At
start-up the service (and ``dscsa capture``) marks such a job interrupted, so that it no longer
shows ``running: true`` forever, and asks the store to discard what the capture left
uncommitted: SQLite rolls an unfinished transaction back by itself, MongoDB atomic captures
are compensated (``discard_uncommitted_capture``). A lease held by a live process, here or in
another process on the same data directory, is left alone; captures of other instances (other
data directories) are never touched.
"""

from __future__ import annotations

import asyncio
import contextlib
import fcntl
import json
import logging
import os
import re
from collections.abc import Iterator
from dataclasses import replace
from datetime import UTC, datetime
from pathlib import Path
from typing import Protocol, runtime_checkable

from service.store import CaptureJob, CaptureProblem, EventStore

__all__ = [
    "INTERRUPTED_TITLE",
    "CaptureLease",
    "UncommittedDiscarding",
    "lease_directory",
    "leased",
    "recover_interrupted_captures",
]

logger = logging.getLogger(__name__)

INTERRUPTED_TITLE = "Capture interrupted"
# The EPCIS exception for a failure on the server's side, as other 500 jobs carry.
_INTERRUPTED_TYPE = "epcisException:ImplementationException"
_CAPTURE_ID = re.compile(r"[0-9A-Za-z_-]{1,64}")


def lease_directory(data_dir: Path) -> Path:
    return data_dir / "capture-leases"


@runtime_checkable
class UncommittedDiscarding(Protocol):
    """A store whose atomic captures are not transactions and must be compensated."""

    async def discard_uncommitted_capture(self, capture_id: str) -> int:
        """Remove the events of ``capture_id`` unless its document was committed; how many."""
        ...


class CaptureLease:
    """The exclusive lock of one running capture; ``release`` when it ends, however it ends."""

    def __init__(self, path: Path, fd: int) -> None:
        self.path = path
        self._fd: int | None = fd

    @classmethod
    def take(cls, directory: Path, job: CaptureJob) -> CaptureLease:
        if not _CAPTURE_ID.fullmatch(job.capture_id):
            raise ValueError(f"capture id unfit for a file name: {job.capture_id!r}")
        directory.mkdir(parents=True, exist_ok=True)
        path = directory / job.capture_id
        fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_EXCL, 0o600)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            # What recovery needs when no job record was written (``dscsa capture``). Not
            # fsynced (this runs on the event loop): after a power loss the file's name
            # still names the capture, and the service's jobs are in the store.
            os.write(fd, json.dumps(_lease_body(job)).encode())
        except BaseException:
            os.close(fd)
            path.unlink(missing_ok=True)
            raise
        return cls(path, fd)

    def release(self) -> None:
        if self._fd is None:
            return
        # Unlinked while still locked: a recovery that opened the file meanwhile finds the
        # job finished in the store and only removes what is already gone.
        self.path.unlink(missing_ok=True)
        os.close(self._fd)
        self._fd = None


@contextlib.contextmanager
def leased(directory: Path, job: CaptureJob) -> Iterator[CaptureLease]:
    lease = CaptureLease.take(directory, job)
    try:
        yield lease
    finally:
        lease.release()


def _lease_body(job: CaptureJob) -> dict[str, str]:
    return {
        "capture_id": job.capture_id,
        "partner_id": job.partner_id,
        "created_at": job.created_at.isoformat(),
        "capture_error_behaviour": job.capture_error_behaviour,
    }


def running_captures(directory: Path) -> set[str]:
    """The captures whose lease a live process holds (this one or another)."""
    running: set[str] = set()
    for path in _lease_files(directory):
        try:
            fd = os.open(path, os.O_RDONLY)
        except FileNotFoundError:
            continue  # released a moment ago
        try:
            # A lock taken here on a second descriptor is refused even when this process
            # holds the lease: flock locks belong to the open file, not the process.
            fcntl.flock(fd, fcntl.LOCK_SH | fcntl.LOCK_NB)
        except BlockingIOError:
            running.add(path.name)
        finally:
            os.close(fd)
    return running


async def recover_interrupted_captures(
    store: EventStore, directory: Path, *, now: datetime | None = None
) -> list[CaptureJob]:
    """Mark every capture whose lease nobody holds interrupted; the jobs so marked."""
    recovered: list[CaptureJob] = []
    for path in await asyncio.to_thread(_lease_files, directory):
        with _abandoned(path) as body:
            if body is None:
                continue
            job = await _recover(store, body, now or datetime.now(UTC))
            if job is not None:
                recovered.append(job)
    return recovered


def _lease_files(directory: Path) -> list[Path]:
    return sorted(directory.iterdir()) if directory.is_dir() else []


@contextlib.contextmanager
def _abandoned(path: Path) -> Iterator[dict[str, str] | None]:
    """The lease's body when its owner is gone (the file is removed afterwards), else None."""
    try:
        fd = os.open(path, os.O_RDWR)
    except FileNotFoundError:
        yield None  # released a moment ago
        return
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            yield None  # its capture is running
            return
        text = path.read_text() if path.exists() else ""
        try:
            body = json.loads(text) if text else {}
        except ValueError:
            body = {}
        # A lease whose owner died before writing it still names its capture.
        body.setdefault("capture_id", path.name)
        yield body
        path.unlink(missing_ok=True)
    finally:
        os.close(fd)


async def _recover(store: EventStore, body: dict[str, str], now: datetime) -> CaptureJob | None:
    capture_id = body["capture_id"]
    job = await store.get_capture_job(capture_id)
    if job is not None and not job.running:
        return None  # it finished; its process died before removing the lease
    discarded = 0
    behaviour = job.capture_error_behaviour if job else body.get("capture_error_behaviour")
    if behaviour != "proceed" and isinstance(store, UncommittedDiscarding):
        discarded = await store.discard_uncommitted_capture(capture_id)
    if job is None:
        job = CaptureJob(
            capture_id=capture_id,
            partner_id=body.get("partner_id", "unknown"),
            created_at=_time(body.get("created_at"), now),
            capture_error_behaviour="proceed" if behaviour == "proceed" else "rollback",
        )
    problem = CaptureProblem(
        type=_INTERRUPTED_TYPE,
        title=INTERRUPTED_TITLE,
        status=500,
        detail=_detail(job, discarded),
        instance=f"/capture/{capture_id}",
    )
    interrupted = replace(
        job, running=False, success=False, finished_at=now, errors=(*job.errors, problem)
    )
    await store.put_capture_job(interrupted)
    logger.warning("capture %s was interrupted by a stop of the service", capture_id)
    return interrupted


def _detail(job: CaptureJob, discarded: int) -> str:
    if job.capture_error_behaviour == "proceed":
        kept = "the batches committed before the stop are stored"
    else:
        kept = "nothing of the document is stored unless its commit had completed"
    if discarded:
        kept += f" ({discarded} uncommitted events discarded)"
    return (
        f"The service stopped while this capture ran; {kept}. Send the document again: "
        "events already stored count as duplicates."
    )


def _time(text: str | None, default: datetime) -> datetime:
    try:
        return datetime.fromisoformat(text) if text else default
    except ValueError:
        return default
