"""A worker process that projects an atomic capture into the SQLite serial state while it runs.

Keeping serial state current cost as much CPU as the capture itself, and both ran on the
server's event loop one after the other: the events were read and stored, then projected.
Both are CPU-bound Python, so a thread gives no overlap (the GIL); a second process does.
During an atomic capture each stored batch's facts go to this worker, which applies them with
:class:`~service.serial_state.SerialStateProjection` inside ONE write transaction on its own
connection to the projection file, while the server reads and stores the next batch. The
worker commits only when told, after the event store has committed (a two-phase commit), so
no reader ever sees state derived from events that might still roll back; a rollback of the
capture rolls the projection back too. The projection tables have a file of their own
(``service.sqlite_traceability_store``), so the long transaction blocks no recall, resolution
or exception written meanwhile.

The server talks to the worker over a pipe from one thread of its own, so a send that waits
for the worker (the pipe is full while it projects) never blocks the event loop. Each batch
is also kept in a replay file (the same pickled bytes), so if the worker dies the capture's
hook projects the batches in the server after the commit (``service.capture_hooks``): a dead
worker costs time, never state.
"""

from __future__ import annotations

import asyncio
import contextlib
import multiprocessing
import os
import pickle
import sqlite3
import struct
import tempfile
import time
import traceback
from collections.abc import Collection, Iterator, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from multiprocessing.connection import Connection
from multiprocessing.reduction import ForkingPickler as _ForkingPickler
from pathlib import Path
from typing import IO, Any

from epcis.model import EPCISHeader
from service.containment import EventFacts, Interval
from service.dscsa_checks import commissioned_by, update_findings
from service.exception_records import ExceptionType, Finding
from service.serial_state import SerialState, SerialStateProjection
from service.sqlite_traceability_store import (
    SQLiteProjectionTables,
    SQLiteRecordsReader,
    connect_projection,
)
from service.traceability_store import FactsCache

__all__ = [
    "CaptureProjection",
    "ProjectedCapture",
    "ProjectionWorker",
    "ProjectionWorkerError",
]

# Batches queued for the pipe before ``add`` waits (one more may be in the pipe, and one
# being applied): bounds what a capture that outruns its projection holds in memory (a
# batch's facts are a few hundred kB pickled).
_MAX_IN_FLIGHT = 4

# The worker connection's page cache (see _serve).
_CACHE_KIB = 16 * 1024

# A worker asked to stop while it still projects a cancelled capture gets this long.
_STOP_GRACE_SECONDS = 5.0


class ProjectionWorkerError(RuntimeError):
    """The worker could not project (it died, or an update failed inside it)."""


@dataclass(frozen=True, slots=True)
class ProjectedCapture:
    """What one committed capture's projection found and changed."""

    findings: tuple[Finding, ...]  # each about an event this capture inserted
    # (serial, its commissioning event) for the serials the capture commissioned that have
    # exception records: the ones whose never-commissioned exception it may answer.
    commissioned: tuple[tuple[str, str], ...]
    states: int  # states written (a serial counts once per batch it was in)


# --- the worker process ------------------------------------------------------------------------


class _InlineStore:
    """The projection's store protocol on the worker's own connection, without thread hops:
    nothing else runs in this process, so each call runs at once on this thread."""

    def __init__(self, tables: SQLiteProjectionTables) -> None:
        self._tables = tables

    async def add_facts(self, facts: Sequence[EventFacts]) -> list[EventFacts]:
        return self._tables.add_facts(facts)

    async def new_facts(self, facts: Sequence[EventFacts]) -> list[EventFacts]:
        return self._tables.new_facts(facts)

    async def write_update(
        self,
        facts: Sequence[EventFacts],
        children: Collection[str],
        intervals: Sequence[Interval],
        states: Sequence[SerialState],
    ) -> None:
        self._tables.write_update(facts, children, intervals, states)

    async def facts_for(self, epcs: Collection[str]) -> dict[str, list[EventFacts]]:
        return self._tables.facts_for(epcs)

    async def all_fact_epcs(self) -> list[str]:
        return self._tables.all_fact_epcs()

    async def intervals_for_children(self, children: Collection[str]) -> dict[str, list[Interval]]:
        return self._tables.intervals_for_children(children)

    async def children_ever(self, parents: Collection[str]) -> set[str]:
        return self._tables.children_ever(parents)

    async def replace_intervals(
        self, children: Collection[str], intervals: Sequence[Interval]
    ) -> None:
        self._tables.replace_intervals(children, intervals)

    async def put_states(self, states: Sequence[SerialState]) -> None:
        self._tables.put_states(states)

    async def clear_projection(self) -> None:
        self._tables.clear()


class _Transaction:
    """The worker's side of one capture: its transaction and what its batches found."""

    def __init__(self, db: sqlite3.Connection, header: EPCISHeader | None) -> None:
        self.db = db
        self.header = header
        self.findings: list[Finding] = []
        self.commissioned: list[tuple[str, str]] = []
        # Serials this capture found never commissioned: recorded only after the commit, so
        # not yet among the records, and a later batch's commissioning answers them too.
        self.never_commissioned: set[str] = set()
        self.states = 0
        self.failure: str | None = None
        db.execute("BEGIN IMMEDIATE")

    def apply(
        self, loop: asyncio.AbstractEventLoop, state: _Worker, facts: list[EventFacts]
    ) -> None:
        if self.failure is not None:
            return  # the capture's commit reports the first failure; later batches are moot
        try:
            update = loop.run_until_complete(state.projection.apply(facts))
            # The checks the server would run after the commit, here, on this transaction's
            # view: the server's part after the commit is only to record them.
            found = loop.run_until_complete(
                update_findings(state.store, state.records, update, self.header)
            )
        except Exception:
            self.failure = traceback.format_exc()
            return
        self.findings.extend(found)
        self.never_commissioned.update(
            epc
            for finding in found
            if finding.type is ExceptionType.NEVER_COMMISSIONED
            for epc in finding.identifiers
        )
        # Only a serial with exception records (or one about to get them) can have a
        # never-commissioned exception for its commissioning to answer: the server is told of
        # those, not of every serial (a million-event capture commissions millions).
        commissioned = commissioned_by(update)
        flagged = state.records.with_exceptions([epc for epc, _ in commissioned])
        self.commissioned.extend(
            pair
            for pair in commissioned
            if pair[0] in flagged or pair[0] in self.never_commissioned
        )
        self.states += len(update.states)

    def commit(self) -> tuple[str, Any]:
        if self.failure is not None:
            self.db.execute("ROLLBACK")
            return ("error", self.failure)
        self.db.execute("COMMIT")
        return ("ok", ProjectedCapture(tuple(self.findings), tuple(self.commissioned), self.states))


@dataclass
class _Worker:
    """What the worker process keeps between captures."""

    projection: SerialStateProjection
    store: _InlineStore
    records: SQLiteRecordsReader


def _serve(channel: Connection, path: str) -> None:
    """The worker's loop: ``begin``, ``apply`` batches, then ``commit`` or ``rollback``.

    Every message but ``apply`` and ``settle`` is answered, in order, so an answer also says
    that each batch sent before it has been applied, and that every commit before it is on
    disk."""
    db = connect_projection(path)
    # A commit is not synced to disk before its answer, nor checkpointed: a capture's
    # transaction leaves hundreds of MB in the WAL, and syncing them (then copying them into
    # the database file) held up the capture's completion by a second or more, and its
    # ledger's appends, which wait on the same disk. Both wait until the capture is over (the
    # server sends ``settle``) or until the next message, which is answered only after them.
    # A capture whose projection a crash or power loss takes meanwhile is still named in the
    # pending-projection journal and projected again at the next start: the server clears
    # the name only when the worker next answers (service.capture_hooks).
    db.execute("PRAGMA synchronous=NORMAL")
    db.execute("PRAGMA wal_autocheckpoint=0")
    # Its page cache. What is dirty in it at the commit is written then, on the capture's
    # path; what spills before is written while the capture still reads. Measured at 50,000
    # events (commit not synced): 16 MB 0.35 s, 32 MB 0.40-0.50 s, 64 MB 0.48-0.57 s, with
    # the worker's CPU per event the same within noise (measured earlier, with the commit
    # synced: SQLite's default 2 MB, 1.5 s).
    db.execute(f"PRAGMA cache_size=-{_CACHE_KIB}")
    cache = FactsCache()
    store = _InlineStore(SQLiteProjectionTables(db, cache))
    state = _Worker(SerialStateProjection(store), store, SQLiteRecordsReader(path))
    transaction: _Transaction | None = None
    unsynced = False  # a commit is not on disk yet
    # The projection is written as coroutines (the server awaits its store); here each call
    # of the inline store completes at once, so one loop runs them to the end.
    loop = asyncio.new_event_loop()
    channel.send(("ready", None))
    try:
        while True:
            try:
                message = channel.recv()
            except EOFError:
                return  # the server is gone: the open transaction rolls back on close
            kind = message[0]
            if unsynced and kind != "apply":
                _sync_wal(path)
                db.execute("PRAGMA wal_checkpoint(PASSIVE)")
                unsynced = False
            if kind == "settle":
                continue  # synced above; no answer, the server does not wait for it
            if kind == "apply" and transaction is not None:
                facts = [EventFacts.from_tuple(values) for values in message[1]]
                transaction.apply(loop, state, facts)
            elif kind == "begin":
                if transaction is not None:  # a server that lost track: start clean
                    db.execute("ROLLBACK")
                transaction = _Transaction(db, message[1])
                channel.send(("ok", None))
            elif kind == "commit" and transaction is not None:
                channel.send(transaction.commit())
                transaction = None
                unsynced = True
            elif kind == "rollback":
                if transaction is not None:
                    db.execute("ROLLBACK")
                    # Facts of the rolled-back batches may sit in the cache; they are only
                    # ever read for hashes the tables list, but there is no reason to keep them.
                    cache.clear()
                transaction = None
                channel.send(("ok", None))
            elif kind == "sync":
                channel.send(("ok", None))  # every earlier message has been handled
            elif kind == "cpu":
                channel.send(("ok", time.process_time()))
            elif kind == "stop":
                return
            else:
                channel.send(("error", f"unexpected {kind!r} message"))
    finally:
        loop.close()
        state.records.close()
        db.close()


def _sync_wal(path: str) -> None:
    """Make every committed transaction in the WAL of ``path`` durable, as a commit with
    ``synchronous=FULL`` would have (fsync applies to the file, whichever descriptor)."""
    try:
        descriptor = os.open(f"{path}-wal", os.O_RDONLY)
    except FileNotFoundError:
        return  # no WAL: nothing was written since the last checkpoint emptied it
    try:
        os.fsync(descriptor)
    finally:
        os.close(descriptor)


# --- the server's side -------------------------------------------------------------------------


class ProjectionWorker:
    """One worker process for the projection file at ``path``; one capture at a time uses it.

    ``start_method`` is a :mod:`multiprocessing` start method other than ``fork`` (forking a
    server with threads and an event loop copies locks held by other threads). The default,
    ``forkserver``, forks each worker from a clean single-threaded process that has imported
    this module once, so a worker is ready in tens of milliseconds instead of the second a
    ``spawn`` takes to import the service again.
    """

    def __init__(self, path: Path | str, *, start_method: str = "forkserver") -> None:
        if start_method == "fork":
            raise ValueError("the projection worker must not be forked from a threaded server")
        self.path = Path(path)
        self._context = multiprocessing.get_context(start_method)
        if start_method == "forkserver":
            # Takes effect when the fork server starts (the first worker of this process).
            self._context.set_forkserver_preload([__name__])
        self._process: Any = None
        self._channel: Connection | None = None
        # Every send and receive runs on this one thread, in order: a send waits there while
        # the worker is busy, never on the event loop.
        self._io = ThreadPoolExecutor(max_workers=1, thread_name_prefix="projection-worker")
        self._busy = asyncio.Lock()
        self._closed = False

    @property
    def busy(self) -> bool:
        """Whether a capture is using the worker now."""
        return self._busy.locked()

    async def start(self) -> None:
        """Start the process (if it is not running) and wait until it is ready."""
        if self._closed:
            raise ProjectionWorkerError("the projection worker is shut down")
        if self._process is not None and self._process.is_alive():
            return
        self._discard()
        ours, theirs = self._context.Pipe(duplex=True)
        process = self._context.Process(  # type: ignore[attr-defined]  # typeshed: BaseContext
            target=_serve, args=(theirs, str(self.path)), name="dscsa-projection", daemon=True
        )
        await asyncio.to_thread(process.start)
        theirs.close()
        self._process, self._channel = process, ours
        await self._receive()

    async def begin(
        self, header: EPCISHeader | None = None, *, spool_dir: Path | None = None
    ) -> CaptureProjection:
        """A capture's projection (``header``: its document's, for the document checks; its
        replay file goes in ``spool_dir``); waits while another capture uses the worker."""
        await self._busy.acquire()
        try:
            await self.start()
            await self._call(("begin", header))
        except BaseException:
            self._busy.release()
            raise
        return CaptureProjection(self, _Replay(spool_dir))

    async def cpu_seconds(self) -> float:
        """CPU seconds the worker process has used (for benchmarks and diagnostics); waits
        for a capture using the worker to end."""
        async with self._busy:
            await self.start()
            seconds = await self._call(("cpu",))
        return float(seconds)

    async def close(self) -> bool:
        """Stop the worker; an open transaction is rolled back. True when it stopped by
        itself (so after syncing every commit), False if it had to be killed or never ran."""
        self._closed = True
        channel, process = self._channel, self._process
        self._channel = self._process = None
        if channel is not None:
            with contextlib.suppress(OSError, ValueError):
                await self._io_call(channel.send, ("stop",))
            channel.close()
        clean = False
        if process is not None:
            await asyncio.to_thread(_join, process, _STOP_GRACE_SECONDS)
            clean = process.exitcode == 0
        self._io.shutdown(wait=True)
        return clean

    # -- used by CaptureProjection --

    def _send(self, data: bytes | memoryview) -> Future[None]:
        """Send one pickled message from the IO thread, after those sent before it."""
        return self._io.submit(_send_bytes, self._channel, data)

    async def _call(self, message: tuple[Any, ...]) -> Any:
        try:
            await asyncio.wrap_future(self._send(_ForkingPickler.dumps(message)))
        except _PipeBrokenError as error:
            self._discard()
            raise ProjectionWorkerError("the projection worker died") from error
        return await self._receive()

    async def _receive(self) -> Any:
        channel = self._channel
        if channel is None:
            raise ProjectionWorkerError("the projection worker is not running")
        try:
            kind, payload = await self._io_call(channel.recv)
        except (EOFError, OSError) as error:
            self._discard()
            raise ProjectionWorkerError("the projection worker died") from error
        if kind == "error":
            raise ProjectionWorkerError(f"the projection failed in the worker:\n{payload}")
        return payload

    async def _io_call(self, function: Any, *args: Any) -> Any:
        return await asyncio.wrap_future(self._io.submit(function, *args))

    def _discard(self) -> None:
        channel, process = self._channel, self._process
        self._channel = self._process = None
        if channel is not None:
            channel.close()
        if process is not None and process.is_alive():
            process.kill()

    def _release(self) -> None:
        self._busy.release()


class _PipeBrokenError(Exception):
    """The pipe to the worker broke while a batch was sent (the worker is gone)."""


def _send_bytes(channel: Connection | None, data: bytes | memoryview) -> None:
    """On the worker's IO thread: send one pickled message (``Connection.send`` pickles the
    same way, and ``recv`` unpickles it)."""
    if channel is None:
        raise _PipeBrokenError("the projection worker is not running")
    try:
        channel.send_bytes(data)
    except (OSError, ValueError) as error:
        raise _PipeBrokenError("the projection worker died") from error


class _Replay:
    """The pickled batches of one capture, in a temporary file until its projection is done."""

    _LENGTH = struct.Struct("<Q")

    def __init__(self, directory: Path | None) -> None:
        self._directory = directory
        self._file: IO[bytes] | None = None

    def write(self, data: bytes | memoryview) -> None:
        if self._file is None:
            if self._directory is not None:
                self._directory.mkdir(parents=True, exist_ok=True)
            # Held open across batches and closed by close(): no with-block can span that.
            self._file = tempfile.TemporaryFile(dir=self._directory, prefix="projection-")  # noqa: SIM115
        self._file.write(self._LENGTH.pack(len(data)))
        self._file.write(data)

    def read(self) -> Iterator[bytes]:
        file = self._file
        if file is None:
            return
        file.flush()
        file.seek(0)
        while header := file.read(self._LENGTH.size):
            (length,) = self._LENGTH.unpack(header)
            yield file.read(length)

    def close(self) -> None:
        if self._file is not None:
            self._file.close()
            self._file = None


def _join(process: Any, grace: float) -> None:
    process.join(grace)
    if process.is_alive():
        process.kill()
        process.join()


class CaptureProjection:
    """One capture's transaction in the worker: ``add`` each stored batch, then ``commit``
    after the events are durable or ``rollback``; either ends it (and frees the worker).
    The batches stay in a replay file until :meth:`discard`."""

    def __init__(self, worker: ProjectionWorker, replay: _Replay) -> None:
        self._worker: ProjectionWorker | None = worker
        self._replay = replay
        self._in_flight: list[Future[None]] = []
        self._failed = False  # the worker died: batches go to the replay file only
        self._committed_by: ProjectionWorker | None = None  # until settle()

    async def add(self, facts: Sequence[tuple[Any, ...]]) -> None:
        """Queue one batch (each event's facts as ``EventFacts.as_tuple`` gives them); waits
        only when the worker is several batches behind.

        The batch is kept in the replay file before it is sent, so a worker that dies costs
        no batch (:meth:`replay`); only a failure to write that file raises (``OSError``):
        the batch would be lost, as it would be from the capture's own spool.
        """
        worker = self._open()
        # Sends finish in order (one IO thread): settle the finished ones, and wait for the
        # oldest while too many are queued.
        in_flight = self._in_flight
        while in_flight and (in_flight[0].done() or len(in_flight) >= _MAX_IN_FLIGHT):
            await self._settle(in_flight.pop(0))
        # Pickled once, for the file and the pipe; kept before the capture goes on, so that
        # a failure to keep it fails the capture before its commit (as its own spool would).
        data = _ForkingPickler.dumps(("apply", list(facts)))
        self._replay.write(data)
        if not self._failed:
            in_flight.append(worker._send(data))

    async def _settle(self, sent: Future[None]) -> None:
        try:
            await asyncio.wrap_future(sent)
        except _PipeBrokenError:  # the worker is gone; its batches are in the replay file
            self._failed = True

    async def _drain(self) -> None:
        for sent in self._in_flight:
            await self._settle(sent)
        self._in_flight = []

    def settle(self) -> None:
        """The capture is over (its hooks are done): the worker may now sync and checkpoint
        its commit, without anyone waiting for it."""
        worker = self._committed_by
        self._committed_by = None
        if worker is not None:  # a worker gone meanwhile has nothing left to sync
            worker._send(_ForkingPickler.dumps(("settle",)))

    async def flush(self) -> None:
        """Wait until the worker has applied every batch added so far (not committed)."""
        await self._open()._call(("sync",))

    async def commit(self) -> ProjectedCapture:
        """Make the projection durable; raises :class:`ProjectionWorkerError` if it is not
        (then nothing of it was committed, unless the worker died while committing: projecting
        :meth:`replay` again is harmless then, as facts already stored are skipped)."""
        worker = self._open()
        self._worker = None
        try:
            await self._drain()
            if self._failed:
                raise ProjectionWorkerError("the projection worker died during the capture")
            result = await worker._call(("commit",))
            self._committed_by = worker
        finally:
            worker._release()
        if not isinstance(result, ProjectedCapture):
            raise ProjectionWorkerError(f"unexpected answer from the worker: {result!r}")
        return result

    async def rollback(self) -> None:
        """Drop everything projected for this capture (nothing if it already ended)."""
        worker, self._worker = self._worker, None
        if worker is None:
            return
        try:
            await self._drain()
            await worker._call(("rollback",))
        except ProjectionWorkerError:
            pass  # a dead worker's transaction is rolled back by SQLite
        finally:
            worker._release()

    def replay(self) -> Iterator[list[tuple[Any, ...]]]:
        """Every batch added, in order, read back from the replay file (after a failed
        :meth:`commit`, to project them in the server)."""
        for data in self._replay.read():
            # Our own temporary file, written by this process during this capture.
            _, facts = pickle.loads(data)  # noqa: S301
            yield facts

    def discard(self) -> None:
        """Delete the replay file (the capture's projection is done, one way or the other)."""
        self._replay.close()

    def _open(self) -> ProjectionWorker:
        if self._worker is None:
            raise ProjectionWorkerError("this capture's projection has ended")
        return self._worker
