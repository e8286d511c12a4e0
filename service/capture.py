"""The capture pipeline shared by ``POST /capture``, ``POST /events`` and ``dscsa capture``.

bytes → spool file (hashed and size-limited as it is written) → detect the format and read
the head (hostile or foreign input is refused here, before a job exists) → events one batch
at a time, off the event loop: hash ID, eventID, recordTime, JSON-LD body, index →
``CaptureSession.add_events`` → document bytes stored → commit. With ``rollback`` any bad
event aborts the whole document; with ``proceed`` bad events are recorded on the job and the
rest are stored batch by batch.

Schema check of XML: a small document (or any, in strict DSCSA mode) is checked before the job
exists (a 400 with located problems); a large one is checked by the warm worker of
``service.schema_check`` while the job reads it, and nothing of it becomes durable or visible
before the verdict: with ``rollback`` the verdict is awaited before the document bytes are
stored and the transaction commits, with ``proceed`` (each batch durable once added) before
the first batch is added. A refused document fails its job with the located problems (the
400's problem type) and nothing of it is stored; its hooks never run.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import logging
import threading
import uuid
from collections.abc import AsyncIterable, AsyncIterator, Callable, Coroutine, Iterator, Sequence
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from epcis.errors import DocumentTooLargeError, EPCISError, Problem, SchemaViolationError
from epcis.event_hash import event_hash, ignored_fields
from epcis.jsonld_writer import event_to_jsonld, json_time
from epcis.model import DocumentFormat, DocumentHead, Event
from epcis.reading import EventError, ReadLimits, detect_format, iter_document
from epcis.validation import validate_xml
from epcis.xml_safety import MAX_PROLOG_BYTES
from service.capture_hooks import CaptureHook, CapturePolicy, HookRunner, precheck_facts
from service.collector import collector_paused
from service.containment import EventFacts
from service.event_index import index_event
from service.problems import error_problem
from service.schema_check import SchemaChecker
from service.store import (
    CaptureErrorBehaviour,
    CaptureJob,
    CaptureProblem,
    DocumentRecord,
    EventRecord,
    EventStore,
    compact_json_encoder,
)

__all__ = [
    "BATCH_SIZE",
    "CHUNK_SIZE",
    "CaptureTracker",
    "SpooledDocument",
    "capture_problem",
    "document_facts",
    "document_senders",
    "dscsa_precheck",
    "event_record",
    "file_document",
    "new_job",
    "read_head",
    "read_head_or_defer",
    "run_capture",
    "spool",
]

CHUNK_SIZE = 256 * 1024
BATCH_SIZE = 1000
# A job lists at most this many errors; the count of rejected events stays exact.
_MAX_JOB_ERRORS = 100

logger = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class SpooledDocument:
    """Received bytes on disk with their SHA-256; ``owned`` files are deleted after capture."""

    path: Path
    sha256: str
    size: int
    owned: bool = True

    def discard(self) -> None:
        if self.owned:
            self.path.unlink(missing_ok=True)


async def spool(chunks: AsyncIterable[bytes], directory: Path, limit: int) -> SpooledDocument:
    """Write a body to a spool file, hashing as it goes; never holds the body in memory."""
    await asyncio.to_thread(directory.mkdir, parents=True, exist_ok=True)
    path = directory / f"{uuid.uuid4().hex}.part"
    digest, size = hashlib.sha256(), 0
    handle = await asyncio.to_thread(path.open, "wb")
    try:
        async for chunk in chunks:
            size += len(chunk)
            if size > limit:
                raise DocumentTooLargeError(f"the document exceeds {limit} bytes")
            digest.update(chunk)
            await asyncio.to_thread(handle.write, chunk)
    except BaseException:
        handle.close()
        path.unlink(missing_ok=True)
        raise
    await asyncio.to_thread(handle.close)
    return SpooledDocument(path, digest.hexdigest(), size)


def file_document(path: Path, limit: int) -> SpooledDocument:
    """A file already on disk (the command line): hashed in place, never deleted."""
    size = path.stat().st_size
    if size > limit:
        raise DocumentTooLargeError(f"{path} exceeds {limit} bytes")
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        while chunk := handle.read(CHUNK_SIZE):
            digest.update(chunk)
    return SpooledDocument(path, digest.hexdigest(), size, owned=False)


@contextlib.contextmanager
def _document_items(
    document: SpooledDocument, limits: ReadLimits, source: str
) -> Iterator[Iterator[DocumentHead | Event | EventError]]:
    # Events that cannot be built come as EventError items, so one bad event does not end the
    # document: a proceed capture stores the others (a rollback capture refuses them all).
    with document.path.open("rb") as handle:
        items = iter_document(handle, limits=limits, source_name=source, event_errors=True)
        try:
            yield items
        finally:
            # Free the parser here, on this thread, not whenever the collector runs.
            close = getattr(items, "close", None)
            if close is not None:
                close()


def read_head(
    document: SpooledDocument, limits: ReadLimits, source: str, *, check_schema: bool = True
) -> DocumentHead:
    """Detect the format, read the head and check XML against our schema (400/415 errors);
    ``check_schema=False`` leaves the schema check to the caller."""
    with document.path.open("rb") as handle:
        # From the first bytes alone: garbage is a 415, not a malformed-XML 400.
        detect_format(handle.read(MAX_PROLOG_BYTES))
    with _document_items(document, limits, source) as items:
        head = next(items)
    if not isinstance(head, DocumentHead):
        raise EPCISError("reader yielded an event before the document head")
    if check_schema and head.format is not DocumentFormat.JSONLD_2_0:
        problems = validate_xml(document.path, source_name=source)
        if problems:
            raise _schema_error(head, problems)
    return head


def _schema_error(head: DocumentHead, problems: Sequence[Problem]) -> SchemaViolationError:
    return SchemaViolationError(
        f"the document does not conform to the EPCIS {head.schema_version} schema",
        tuple(problems),
    )


async def read_head_or_defer(
    document: SpooledDocument,
    limits: ReadLimits,
    source: str,
    policy: CapturePolicy,
    checker: SchemaChecker | None,
) -> tuple[DocumentHead, SchemaChecker | None]:
    """:func:`read_head` off the event loop, leaving a large XML document's schema check to
    ``checker``; returns the head and the checker ``run_capture`` must use (None when the
    document was checked here, or needs no XSD check).

    Strict DSCSA mode checks here whatever the size: its precheck reads the whole document
    before the job exists and must see only schema-valid documents.
    """
    deferred = checker is not None and not policy.strict and checker.defers(document.size)
    head = await asyncio.to_thread(read_head, document, limits, source, check_schema=not deferred)
    if head.format is DocumentFormat.JSONLD_2_0:
        return head, None
    return head, checker if deferred else None


def document_senders(document: SpooledDocument, limits: ReadLimits, source: str) -> tuple[str, ...]:
    """Who the document says sent it: SBDH senders, else every event's owning-party source."""
    with _document_items(document, limits, source) as items:
        head = next(items)
        assert isinstance(head, DocumentHead)
        sbdh = head.header.standard_business_document_header if head.header else None
        if sbdh is not None and sbdh.sender:
            return tuple(sender.identifier for sender in sbdh.sender)
        owners: set[str] = set()
        for event in items:
            assert not isinstance(event, DocumentHead)
            if not isinstance(event, EventError):
                owners.update(s.value for s in event.source_list if s.type == "owning_party")
        return tuple(sorted(owners))


def document_facts(
    document: SpooledDocument, limits: ReadLimits, source: str, document_id: str | None = None
) -> tuple[DocumentHead, list[EventFacts]]:
    """The head and every event's facts, for work that needs the whole document at once.

    Strict DSCSA checks look at the document as a whole before anything is stored, and the
    start-up recovery projects a stored document again; this holds one small facts record
    per event (never the model events) and reads on one thread.
    """
    with _document_items(document, limits, source) as items:
        head = next(items)
        assert isinstance(head, DocumentHead)
        ignore = ignored_fields(head)
        facts = []
        for event in items:
            assert not isinstance(event, DocumentHead)
            if not isinstance(event, EventError):  # the capture itself reports it
                hash_id = event_hash(event, ignore=ignore)
                facts.append(EventFacts.from_event(event, hash_id, document_id))
    return head, facts


async def dscsa_precheck(
    policy: CapturePolicy, document: SpooledDocument, limits: ReadLimits, source: str
) -> None:
    """Strict mode: raise ``DSCSACheckFailedError`` (422) before anything is stored."""
    if policy.strict:
        assert policy.traceability is not None
        head, facts = await asyncio.to_thread(document_facts, document, limits, source)
        await precheck_facts(policy.traceability, head.header, facts, policy.checks)


# One encoder for every body: json.dumps would build a new one per call for these options.
_encode_body = compact_json_encoder()


def event_record(
    event: Event,
    ignore: frozenset[str],
    record_time: datetime,
    document_id: str | None,
    *,
    record_time_text: str | None = None,
) -> EventRecord:
    """The stored form of one event: hash ID, eventID (given, else the hash), JSON-LD body.

    eventID and recordTime go straight into the JSON-LD object instead of into a copy of the
    frozen model (``model_copy`` cost more than the rest of the body); the hash and the index
    read neither field. ``record_time_text`` is ``json_time(record_time)``, done once a batch.
    """
    hash_id = event_hash(event, ignore=ignore)
    event_id = event.event_id or hash_id
    body = event_to_jsonld(
        event, {}, event_id=event_id, record_time=record_time_text or json_time(record_time)
    )
    return EventRecord(
        hash_id=hash_id,
        event_id=event_id,
        event_type=event.type,
        event_time=event.event_time.astimezone(UTC),
        record_time=record_time,
        document_id=document_id,
        body=_encode_body(body).encode(),
        index=index_event(event),
    )


def capture_problem(error: EPCISError, instance: str | None = None) -> CaptureProblem:
    body = error_problem(error, instance)
    where = [str(problem) for problem in error.problems if problem.line or problem.path]
    detail = body["detail"] if not where else f"{body['detail']} ({'; '.join(where[:3])})"
    return CaptureProblem(
        type=body["type"],
        title=body["title"],
        status=body["status"],
        detail=detail,
        instance=instance,
    )


def new_job(partner_id: str, behaviour: CaptureErrorBehaviour) -> CaptureJob:
    return CaptureJob(
        capture_id=uuid.uuid4().hex,
        partner_id=partner_id,
        created_at=datetime.now(UTC),
        capture_error_behaviour=behaviour,
    )


@dataclass(slots=True)
class _Batch:
    records: list[EventRecord] = field(default_factory=list)
    summaries: list[tuple[Any, ...]] = field(default_factory=list)  # hook items, per record
    problems: list[EPCISError] = field(default_factory=list)
    done: bool = False


class _EventReader:
    """Reads one document in its own thread and hands batches over a bounded queue.

    lxml parser objects must be created, used and freed on one thread (freeing an unfinished
    iterparse on another thread aborts the process), so the whole read happens in a single
    dedicated thread; the queue bound keeps memory to a couple of batches.
    """

    def __init__(
        self,
        document: SpooledDocument,
        limits: ReadLimits,
        source: str,
        document_id: str,
        hooks: HookRunner | None = None,
    ) -> None:
        self.document_id = document_id
        self._hooks = hooks
        self._document = document
        self._limits = limits
        self._source = source
        self._loop = asyncio.get_running_loop()
        self._queue: asyncio.Queue[DocumentHead | _Batch | BaseException] = asyncio.Queue(2)
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._read, name="capture-reader", daemon=True)
        self._thread.start()

    async def head(self) -> DocumentHead:
        item = await self._next()
        assert isinstance(item, DocumentHead)
        return item

    async def batch(self) -> _Batch:
        item = await self._next()
        assert isinstance(item, _Batch)
        return item

    async def _next(self) -> DocumentHead | _Batch:
        item = await self._queue.get()
        if isinstance(item, BaseException):
            raise item
        return item

    async def close(self) -> None:
        self._stop.set()
        while not self._queue.empty():
            self._queue.get_nowait()
        await asyncio.to_thread(self._thread.join)

    def _put(self, item: DocumentHead | _Batch | BaseException) -> bool:
        future = asyncio.run_coroutine_threadsafe(self._queue.put(item), self._loop)
        while not self._stop.is_set():
            try:
                future.result(timeout=0.2)
                return True
            except TimeoutError:
                continue
        future.cancel()
        return False

    def _read(self) -> None:
        try:
            with _document_items(self._document, self._limits, self._source) as items:
                head = next(items)
                assert isinstance(head, DocumentHead)
                if not self._put(head):
                    return
                ignore, position = ignored_fields(head), 0
                while not self._stop.is_set():
                    with collector_paused():
                        batch, position = _fill(
                            items, ignore, self.document_id, position, self._hooks
                        )
                    if not self._put(batch) or batch.done:
                        return
        except BaseException as error:
            self._put(error)


def _fill(
    items: Iterator[DocumentHead | Event | EventError],
    ignore: frozenset[str],
    document_id: str,
    position: int,
    hooks: HookRunner | None,
) -> tuple[_Batch, int]:
    """The next batch of records; a reader error ends the document as the batch's last problem."""
    batch = _Batch()
    record_time = datetime.now(UTC)
    record_time_text = json_time(record_time)
    try:
        for event in items:
            assert not isinstance(event, DocumentHead)
            position += 1
            if isinstance(event, EventError):
                batch.problems.append(_at_event(event.error, event.position))
            else:
                try:
                    record = event_record(
                        event, ignore, record_time, document_id, record_time_text=record_time_text
                    )
                    if hooks is not None:
                        batch.summaries.append(hooks.summarize(record.hash_id, event, record))
                    batch.records.append(record)
                except EPCISError as error:
                    batch.problems.append(_at_event(error, position))
            if len(batch.records) + len(batch.problems) >= BATCH_SIZE:
                return batch, position
    except EPCISError as error:
        batch.problems.append(error)
    batch.done = True
    return batch, position


def _at_event(error: EPCISError, position: int) -> EPCISError:
    located = tuple(
        Problem(p.reason, p.source, p.line, p.path or f"event {position}") for p in error.problems
    )
    return type(error)(f"event {position}: {error}", located)


OnBatch = Callable[[CaptureJob], None]


class _Rollback(Exception):
    """Raised inside the capture session to make it roll back."""


@dataclass(slots=True)
class _Progress:
    job: CaptureJob
    errors: list[CaptureProblem] = field(default_factory=list)

    def fail(self, error: EPCISError, instance: str | None) -> None:
        if len(self.errors) < _MAX_JOB_ERRORS:
            self.errors.append(capture_problem(error, instance))
        self.job = replace(self.job, success=False)

    def count(self, captured: int = 0, duplicates: int = 0, rejected: int = 0) -> None:
        job = self.job
        self.job = replace(
            job,
            captured=job.captured + captured,
            duplicates=job.duplicates + duplicates,
            rejected=job.rejected + rejected,
        )

    def refuse(self, error: EPCISError, instance: str | None) -> None:
        """The whole document is refused before any of it was stored, as the synchronous
        schema check refuses it with a 400: the one error, and no event counted."""
        self.errors = [capture_problem(error, instance)]
        self.job = replace(self.job, success=False, captured=0, duplicates=0, rejected=0)

    def finished(self) -> CaptureJob:
        return replace(
            self.job, running=False, finished_at=datetime.now(UTC), errors=tuple(self.errors)
        )


async def run_capture(
    store: EventStore,
    document: SpooledDocument,
    job: CaptureJob,
    *,
    limits: ReadLimits,
    source: str,
    instance: str | None = None,
    on_batch: OnBatch | None = None,
    hooks: Sequence[CaptureHook] = (),
    spool_dir: Path | None = None,
    schema_check: SchemaChecker | None = None,
) -> CaptureJob:
    """Capture one spooled document into the store; returns (and stores) the finished job.

    ``on_batch(job)`` is called after each batch with the counts so far (progress bars).
    ``hooks`` run once the events they see are durable (see service.capture_hooks); their
    items wait in ``spool_dir`` (default: the system temporary folder) until the commit.
    ``schema_check`` (from :func:`read_head_or_defer`) checks the XML document against our
    schema while it is read; nothing of it is stored unless it passes.
    """
    progress = _Progress(job)
    runner = HookRunner(hooks, spool_dir) if hooks else None
    reader = _EventReader(document, limits, source, uuid.uuid4().hex, runner)
    verdict = _SchemaVerdict(schema_check, document, source) if schema_check else None
    try:
        await _capture_batches(
            store, document, reader, progress, instance, on_batch, runner, verdict
        )
    except asyncio.CancelledError:
        progress.fail(
            EPCISError("the server stopped before this capture finished; it was rolled back"),
            instance,
        )
        _rolled_back(progress, _atomic(job))
        await _finish(store, progress)
        raise
    except Exception:
        logger.exception("capture %s failed", job.capture_id)
        progress.fail(EPCISError("the capture failed inside the server"), instance)
        _rolled_back(progress, _atomic(job))
    finally:
        if verdict is not None:
            verdict.cancel()
        await reader.close()
        if runner is not None:
            await runner.abandon()
            runner.discard()
    return await _finish(store, progress)


class _Refused(Exception):
    """Raised inside the capture session when the schema check refuses the document."""

    def __init__(self, error: EPCISError) -> None:
        super().__init__(str(error))
        self.error = error


class _SchemaVerdict:
    """The worker's schema check of one document, started as the read starts."""

    def __init__(self, checker: SchemaChecker, document: SpooledDocument, source: str) -> None:
        self._task = asyncio.ensure_future(checker.problems(document.path, source))

    async def require_valid(self, head: DocumentHead) -> None:
        """Wait for the verdict; raise :class:`_Refused` unless the document is valid."""
        try:
            problems = await self._task
        except EPCISError as error:  # the worker died twice: a server error, nothing stored
            raise _Refused(error) from error
        if problems:
            raise _Refused(_schema_error(head, problems))

    def cancel(self) -> None:
        """Drop a verdict nobody will wait for (see ``SchemaChecker.problems``)."""
        if not self._task.done():
            self._task.cancel()
        elif not self._task.cancelled():
            self._task.exception()  # marks a failure of an unused check as seen, not logged


def _atomic(job: CaptureJob) -> bool:
    return job.capture_error_behaviour == "rollback"


async def _finish(store: EventStore, progress: _Progress) -> CaptureJob:
    finished = progress.finished()
    await store.put_capture_job(finished)
    return finished


def _document_record(
    document: SpooledDocument, head: DocumentHead, job: CaptureJob, document_id: str
) -> DocumentRecord:
    sbdh = head.header.standard_business_document_header if head.header else None
    return DocumentRecord(
        document_id=document_id,
        sha256=document.sha256,
        size=document.size,
        format=head.format.value,
        sender_partner_id=job.partner_id,
        received_at=job.created_at,
        sbdh_instance_id=sbdh.document_identification.instance_identifier if sbdh else None,
        sbdh_sender=sbdh.sender[0].identifier if sbdh and sbdh.sender else None,
        sbdh_receivers=tuple(r.identifier for r in sbdh.receiver) if sbdh else (),
        capture_id=job.capture_id,
    )


async def _capture_batches(
    store: EventStore,
    document: SpooledDocument,
    reader: _EventReader,
    progress: _Progress,
    instance: str | None,
    on_batch: OnBatch | None,
    hooks: HookRunner | None = None,
    verdict: _SchemaVerdict | None = None,
) -> None:
    atomic = _atomic(progress.job)
    try:
        head = await reader.head()
    except EPCISError as error:
        progress.fail(error, instance)
        return
    record = _document_record(document, head, progress.job, reader.document_id)
    try:
        async with store.begin_capture(record, atomic=atomic) as session:
            while True:
                batch = await reader.batch()
                if verdict is not None and (batch.problems or not atomic):
                    # Proceed: each batch is durable once added, so the verdict comes before
                    # the first one. Rollback: a schema violation is the reason to report,
                    # not the reader's error it may have caused.
                    await verdict.require_valid(head)
                    verdict = None
                for problem in batch.problems:
                    progress.fail(problem, instance)
                if atomic and batch.problems:
                    progress.count(rejected=len(batch.records) + len(batch.problems))
                    raise _Rollback
                result = await session.add_events(batch.records)
                if hooks is not None:
                    kept = hooks.inserted(batch.records, batch.summaries, result.inserted)
                    if atomic:
                        # Held until the commit; stages (the projection worker) start on it.
                        await hooks.stored(head, record, kept)
                    else:
                        # Each batch of a proceed capture is durable once added.
                        await hooks.durable(head, record, kept, final=False)
                progress.count(
                    captured=len(result.inserted),
                    duplicates=len(result.duplicates),
                    rejected=len(batch.problems),
                )
                if on_batch is not None:
                    on_batch(progress.job)
                if batch.done:
                    break
            if verdict is not None:
                await verdict.require_valid(head)  # before anything becomes durable
            await store.put_document_content(document.sha256, _file_chunks(document.path))
            await session.commit()
            progress.job = replace(progress.job, document_id=reader.document_id)
    except _Rollback:
        _rolled_back(progress, atomic)
        return
    except _Refused as refused:
        progress.refuse(refused.error, instance)
        return
    if hooks is not None:
        if atomic:
            await hooks.after_commit(head, record)
        else:
            await hooks.durable(head, record, [], final=True)


def _rolled_back(progress: _Progress, atomic: bool) -> None:
    if atomic:
        # Nothing of the document was stored: every event counts as rejected.
        job = progress.job
        progress.job = replace(
            job, captured=0, duplicates=0, rejected=job.captured + job.duplicates + job.rejected
        )


async def _file_chunks(path: Path) -> AsyncIterator[bytes]:
    handle = await asyncio.to_thread(path.open, "rb")
    try:
        while chunk := await asyncio.to_thread(handle.read, CHUNK_SIZE):
            yield chunk
    finally:
        handle.close()


class CaptureTracker:
    """The captures running in the background, so that shutdown can wait for them."""

    def __init__(self) -> None:
        self._tasks: set[asyncio.Task[Any]] = set()

    def start(self, work: Coroutine[Any, Any, Any]) -> asyncio.Task[Any]:
        task = asyncio.get_running_loop().create_task(work)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)
        return task

    @property
    def running(self) -> int:
        return len(self._tasks)

    async def drain(self, grace_seconds: float) -> None:
        """Let running captures finish for ``grace_seconds``, then cancel (roll back) the rest."""
        if not self._tasks:
            return
        pending = set(self._tasks)
        _, still_running = await asyncio.wait(pending, timeout=grace_seconds)
        for task in still_running:
            task.cancel()
        results = await asyncio.gather(*pending, return_exceptions=True)
        for result in results:
            if isinstance(result, Exception):
                logger.error("capture failed during shutdown: %r", result)
