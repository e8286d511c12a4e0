"""A warm worker process that checks XML documents against our schemas while capture reads them.

Reading a document into models and checking it against the XSD are both CPU-bound, and lxml
holds the GIL while it feeds a validating pull parser, so a thread gives no overlap. This
module keeps one worker process, started once with the schemas compiled, that runs
:func:`epcis.validation.validate_xml` on a file by path (streaming, so its memory stays flat
for a valid document) while the capture job reads, hashes and stores in the server process:
the check costs the capture little wall time on a machine with a second core.

The worker is started on first use (``warm()`` starts it ahead, as ``dscsa serve`` does). A
worker that dies mid-check is replaced and the check tried once more; a second death is
reported as :class:`SchemaCheckFailedError` (a server error), never a hang.
"""

from __future__ import annotations

import asyncio
import logging
import multiprocessing
import os
import threading
import time
from collections.abc import Callable, Sequence
from concurrent.futures import ProcessPoolExecutor
from concurrent.futures.process import BrokenProcessPool
from pathlib import Path
from typing import Any, TypeVar

from epcis.errors import EPCISError, Problem
from epcis.validation import EPCIS_1_NS, EPCIS_2_NS, validate_xml, validator_for

__all__ = ["DEFER_ABOVE_BYTES", "SchemaCheckFailedError", "SchemaChecker"]

logger = logging.getLogger(__name__)

#: XML documents larger than this are checked by the worker while they are read; smaller
#: ones before the 202 (see :meth:`SchemaChecker.defers`).
DEFER_ABOVE_BYTES = 4 << 20

# An idle worker exits within milliseconds when asked; one still busy at shutdown checks the
# document of a capture that was cancelled, and is stopped after this many seconds.
_STOP_GRACE_SECONDS = 0.5

# How often a worker looks whether the server is still its parent.
_PARENT_POLL_SECONDS = 1.0

_T = TypeVar("_T")


class SchemaCheckFailedError(EPCISError):
    """The schema check could not be made (its worker died twice, or it is shut down)."""


def _warm_worker() -> None:
    """Runs once in each worker: compile the event-document schemas before the first check,
    and end the worker if the server dies."""
    threading.Thread(
        target=_exit_with_parent, args=(os.getppid(),), name="parent-watch", daemon=True
    ).start()
    for namespace in (EPCIS_1_NS, EPCIS_2_NS):
        validator_for(namespace)


def _exit_with_parent(parent: int) -> None:
    # A pool worker waits on a queue whose pipe it holds both ends of, so a server killed
    # with SIGKILL never gives it EOF: it outlived every crash (seen after kill -9 of
    # 'dscsa serve'), and kept the resource tracker alive too. Reparenting says the server
    # is gone.
    while os.getppid() == parent:
        time.sleep(_PARENT_POLL_SECONDS)
    os._exit(0)


class SchemaChecker:
    """One warm worker process running :func:`validate_xml`; checks queue when it is busy.

    ``defer_above`` is the size from which a document's check is left to the worker (default
    :data:`DEFER_ABOVE_BYTES`, see :meth:`defers`); ``start_method`` is a
    :mod:`multiprocessing` start method other than ``fork`` (forking a server with threads and
    an event loop copies locks held by other threads).
    """

    def __init__(self, *, defer_above: int | None = None, start_method: str = "spawn") -> None:
        if start_method == "fork":
            raise ValueError("the schema check worker must not be forked from a threaded server")
        self.defer_above = DEFER_ABOVE_BYTES if defer_above is None else defer_above
        self._context = multiprocessing.get_context(start_method)
        self._pool: ProcessPoolExecutor | None = None
        self._closed = False

    def defers(self, size: int) -> bool:
        """Whether a document of ``size`` bytes is checked by the worker while it is read.

        Below a few MB the synchronous check costs at most ~0.15 s (about 34 us per event,
        ~0.9 KB per event) before the 202, and the client gets its 400 with located problems
        at once; above that the synchronous pass costs seconds and is worth taking in parallel.
        """
        return size > self.defer_above

    async def warm(self) -> int:
        """Start the worker (if it is not running) and wait until its schemas are compiled;
        the worker's process id."""
        return await self._run(os.getpid)

    async def problems(self, path: Path | str, source_name: str | None) -> list[Problem]:
        """What :func:`validate_xml` says of the file at ``path``, computed in the worker.

        Cancelling drops a check still waiting for the worker; one already running finishes
        there (its result unused), so the worker is never killed under another check.
        """
        found = await self._run(validate_xml, str(path), source_name=source_name)
        if found and self.defers(await asyncio.to_thread(os.path.getsize, path)):
            # Locating the problems parsed the whole (large) document into a tree, and the
            # worker's heap keeps that size: the next check gets a fresh worker instead.
            self._retire()
        return found

    async def worker_cpu_seconds(self) -> float:
        """CPU seconds the worker process has used so far (for benchmarks and diagnostics)."""
        return await self._run(time.process_time)

    async def close(self) -> None:
        """Stop the worker: at once when idle, after a short grace when it is still busy."""
        self._closed = True
        pool, self._pool = self._pool, None
        if pool is not None:
            await asyncio.to_thread(_stop, pool, _STOP_GRACE_SECONDS)

    async def __aenter__(self) -> SchemaChecker:
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.close()

    async def _run(self, function: Callable[..., _T], *args: Any, **kwargs: Any) -> _T:
        for attempt in (1, 2):
            pool = self._executor()
            try:
                return await asyncio.wrap_future(pool.submit(function, *args, **kwargs))
            except BrokenProcessPool:
                logger.error("the schema check worker died (attempt %d); starting another", attempt)
                self._replace(pool)
        raise SchemaCheckFailedError(
            "the schema check worker died twice in a row; the document was not checked"
        )

    def _executor(self) -> ProcessPoolExecutor:
        if self._closed:
            raise SchemaCheckFailedError("the schema check worker is shut down")
        if self._pool is None:
            self._pool = ProcessPoolExecutor(
                max_workers=1, mp_context=self._context, initializer=_warm_worker
            )
        return self._pool

    def _retire(self) -> None:
        pool, self._pool = self._pool, None
        if pool is not None:
            pool.shutdown(wait=False)  # a check already queued there still runs

    def _replace(self, broken: ProcessPoolExecutor) -> None:
        # Checks that were queued on the broken pool see the same error and come here too:
        # only the first replaces it.
        if self._pool is broken:
            self._pool = None
        broken.shutdown(wait=False, cancel_futures=True)


def _stop(pool: ProcessPoolExecutor, grace: float) -> None:
    # The executor has no public way to stop a worker in the middle of a task (Python 3.14
    # adds terminate_workers); after shutdown() nothing new reaches it, so terminating it is
    # safe.
    processes: Sequence[Any] = list((getattr(pool, "_processes", None) or {}).values())
    pool.shutdown(wait=False, cancel_futures=True)
    deadline = time.monotonic() + grace
    for process in processes:
        process.join(max(0.0, deadline - time.monotonic()))
        if process.is_alive():
            process.terminate()
            process.join()
    pool.shutdown(wait=True)
