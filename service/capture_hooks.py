"""Work that follows a stored capture: the traceability projection with DSCSA checks, ledger leaves.

A hook has two halves. ``summarize`` runs on the capture's reader thread next to the parser and
turns each event into a small picklable item (the facts the projection needs, or the digest a
ledger leaf commits to), so no model event outlives its batch. ``committed`` runs on the event
loop once the events are durable: after the commit of an atomic capture, in chunks of
:data:`CHUNK`, or after each batch of a ``proceed`` capture. Items are kept only for events the
store inserted (duplicates were handled when they first arrived) and, for atomic captures,
are spilled to a temporary file until the commit, so a 100,000-event document costs disk, not
memory.
"""

from __future__ import annotations

import asyncio
import logging
import pickle
import tempfile
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import IO, Any, Protocol

from epcis.errors import Problem
from epcis.model import DocumentHead, EPCISHeader, EventBase
from service.containment import EventFacts, facts_tuple
from service.dscsa_checks import (
    CheckMode,
    DSCSACheckFailedError,
    _document_findings,
    after_projection,
    facts_committed,
)
from service.exception_records import Finding
from service.ledger import Ledger
from service.ledger_records import event_digest
from service.projection_worker import (
    CaptureProjection,
    ProjectionWorker,
    ProjectionWorkerError,
)
from service.store import DocumentRecord, EventRecord
from service.traceability_store import TraceabilityStore

__all__ = [
    "CHUNK",
    "CaptureHook",
    "CapturePolicy",
    "CaptureStage",
    "CommittedBatch",
    "HookRunner",
    "LedgerHook",
    "TraceabilityHook",
    "precheck_facts",
]

CHUNK = 1000

logger = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class CommittedBatch:
    """Which document a ``committed`` call is about and where in its capture it stands."""

    head: DocumentHead
    document: DocumentRecord
    first: bool  # the first call for this document
    final: bool  # the last call: every event and the document's bytes are durable


@dataclass(frozen=True, slots=True)
class CapturePolicy:
    """What every capture of one service does besides storing: hooks, and the check mode."""

    hooks: tuple[CaptureHook, ...] = ()
    checks: CheckMode = CheckMode.LENIENT
    traceability: TraceabilityStore | None = None  # where strict checks look up master data
    spool_dir: Path | None = None  # where hook items wait for the commit

    @property
    def strict(self) -> bool:
        return self.checks is CheckMode.STRICT and self.traceability is not None

    async def close(self) -> None:
        """Stop what the hooks run beside the server (the projection worker)."""
        for hook in self.hooks:
            if isinstance(hook, TraceabilityHook):
                await hook.close()


class CaptureHook(Protocol):
    def summarize(self, hash_id: str, event: EventBase, record: EventRecord) -> Any:
        """On the reader thread: a compact, picklable item for one event."""
        ...

    async def committed(self, batch: CommittedBatch, items: Sequence[Any]) -> None:
        """On the event loop, once durable: the items of the events the store inserted."""
        ...


class CaptureStage(Protocol):
    """A hook's part in one atomic capture that starts before the commit.

    A hook with a ``stage(spool_dir)`` method may return one per atomic capture: it sees each
    batch's items as soon as the batch is stored (not yet durable; ``document`` is the record
    the commit will store), takes the place of the hook's ``committed`` for that capture, and
    hears of a rollback. ``stored`` raises only when the stage cannot keep a batch (its
    spool or its journal failed, as the runner's own spool may): the capture fails then;
    whatever else goes wrong in the stage, the capture goes on. A stage whose ``keeps_items``
    is true after ``stored`` keeps that batch's items itself: the runner does not spool them,
    and its ``committed`` calls get no items.
    """

    @property
    def keeps_items(self) -> bool: ...

    async def stored(
        self, head: DocumentHead, document: DocumentRecord, items: Sequence[Any]
    ) -> None: ...
    async def committed(self, batch: CommittedBatch, items: Sequence[Any]) -> None: ...
    async def abandoned(self) -> None: ...


# --- the traceability projection and the DSCSA checks -------------------------------------------


async def precheck_facts(
    store: TraceabilityStore,
    header: EPCISHeader | None,
    facts: Sequence[EventFacts],
    mode: CheckMode,
) -> list[Finding]:
    """``dscsa_checks.precheck`` on facts; strict mode raises ``DSCSACheckFailedError`` (422)."""
    findings = await _document_findings(store, header, facts)
    if findings and mode is CheckMode.STRICT:
        problems = tuple(_problem(f) for f in findings)
        # The problem body shows the detail only, so the first findings are named there.
        named = "; ".join(problem.reason for problem in problems[:3])
        more = f" and {len(problems) - 3} more" if len(problems) > 3 else ""
        raise DSCSACheckFailedError(
            f"{len(findings)} DSCSA check(s) failed: {named}{more}", problems
        )
    return findings


def _problem(finding: Finding) -> Problem:
    return Problem(f"{finding.type.value}: {finding.detail}")


class TraceabilityHook:
    """Keeps serial state, containment and DSCSA exceptions current as events arrive.

    Every atomic capture names its document in the store's pending-projection journal before
    its events commit and clears it once their projection is durable (a crash in between
    leaves the name for ``service.projection_recovery``). With a
    :class:`~service.projection_worker.ProjectionWorker`, atomic captures are projected there
    while they are stored (see :class:`_ProjectionStage`); other captures, and any capture
    while the worker serves another, are projected here after their events are durable.
    """

    def __init__(self, store: TraceabilityStore, worker: ProjectionWorker | None = None) -> None:
        self.store = store
        self.worker = worker
        # The projection reads, then writes, the state of the serials a batch names: two
        # captures must not interleave there (the worker's capture holds it throughout).
        self._lock = asyncio.Lock()
        # Documents the worker committed without syncing to disk yet (it syncs right after
        # answering): their journal names are cleared once the worker answers again.
        self._unsynced: list[str] = []

    def summarize(self, hash_id: str, event: EventBase, record: EventRecord) -> tuple[Any, ...]:
        # A plain tuple: it is pickled to the spool, and to the projection worker.
        return facts_tuple(event, hash_id, record.document_id)

    def stage(self, spool_dir: Path | None = None) -> CaptureStage:
        return _ProjectionStage(self, spool_dir)

    async def committed(self, batch: CommittedBatch, items: Sequence[Any]) -> None:
        async with self._lock:
            await self.project_here(batch, items)

    async def project_here(self, batch: CommittedBatch, items: Sequence[Any]) -> None:
        """Project and check durable events in this process (the caller holds the lock)."""
        # The header goes with every chunk: a document's shipping event may sit in any chunk,
        # and findings are keyed, so checking it again records nothing twice.
        await facts_committed(
            self.store,
            [EventFacts.from_tuple(item) for item in items],
            header=batch.head.header,
            document_id=batch.document.document_id,
            partner_id=batch.document.sender_partner_id,
        )

    async def _synced(self) -> None:
        """The worker answered after syncing its earlier commits: clear their names."""
        if self._unsynced:
            synced, self._unsynced = self._unsynced, []
            await self.store.clear_pending_projections(synced)

    async def close(self) -> None:
        if self.worker is not None and await self.worker.close():
            await self._synced()  # it stopped cleanly, so after syncing everything


class _ProjectionStage:
    """One atomic capture's projection: named in the journal before its events commit, then
    projected and checked by the worker batch by batch as it is stored and committed there
    once the events are durable (its findings and the document's master data are recorded
    here). Without a worker, or while the worker serves another capture, this one is
    projected here after its commit; if the worker fails, here too (nothing of it was
    committed there), from the batches the worker's replay file kept."""

    def __init__(self, hook: TraceabilityHook, spool_dir: Path | None) -> None:
        self._hook = hook
        self._spool_dir = spool_dir
        self._projection: CaptureProjection | None = None
        self._document_id: str | None = None
        self._done = False  # the worker's result is committed and recorded
        self._incomplete = False  # a chunk projected here failed: the name stays
        self._locked = False  # whether this capture holds the hook's lock
        self._committed: CaptureProjection | None = None  # ended, to settle once over

    @property
    def keeps_items(self) -> bool:
        return self._projection is not None

    async def stored(
        self, head: DocumentHead, document: DocumentRecord, items: Sequence[Any]
    ) -> None:
        if self._document_id is None:
            # Before any event of it can commit (a failure here fails the capture).
            await self._hook.store.add_pending_projection(
                document.document_id, document.capture_id, datetime.now(UTC)
            )
            self._document_id = document.document_id
            await self._begin(head)
        if self._projection is not None:
            await self._projection.add(items)  # a dead worker leaves the batch in its replay

    async def _begin(self, head: DocumentHead) -> None:
        worker, lock = self._hook.worker, self._hook._lock
        if worker is None or lock.locked() or worker.busy:
            return  # projected here after the commit (after the capture being projected)
        await lock.acquire()  # free: taken at once
        self._locked = True
        try:
            self._projection = await worker.begin(head.header, spool_dir=self._spool_dir)
        except Exception:
            logger.exception("the projection worker could not start a capture")
            return
        await self._hook._synced()

    async def committed(self, batch: CommittedBatch, items: Sequence[Any]) -> None:
        try:
            projection = self._projection
            if projection is not None:
                if not self._done:  # the runner's first call: every batch at once
                    self._done = True
                    await self._finish(batch, projection)
                return
            try:
                if self._locked:
                    await self._hook.project_here(batch, items)
                else:
                    await self._hook.committed(batch, items)
            except BaseException:
                self._incomplete = True
                raise
            if batch.final and not self._incomplete:
                await self._clear()  # projected here: durable with the store's own commits
        finally:
            if batch.final:
                await self._end()

    async def _finish(self, batch: CommittedBatch, projection: CaptureProjection) -> None:
        try:
            result = await projection.commit()
        except ProjectionWorkerError:
            logger.exception("the projection worker failed; projecting after the commit")
            for items in projection.replay():
                await self._hook.project_here(batch, items)
            await self._clear()
            return
        document = batch.document
        await after_projection(
            self._hook.store,
            result.findings,
            result.commissioned,
            states=result.states,
            header=batch.head.header,
            document_id=document.document_id,
            partner_id=document.sender_partner_id,
        )
        self._hook._unsynced.append(document.document_id)

    async def _clear(self) -> None:
        if self._document_id is not None:
            await self._hook.store.clear_pending_projections([self._document_id])

    async def abandoned(self) -> None:
        await self._end()
        if self._committed is not None:
            # The capture is over, its ledger appends too: the worker's disk work now.
            self._committed.settle()
            self._committed = None

    async def _end(self) -> None:
        projection, self._projection = self._projection, None
        if projection is not None:
            try:
                await projection.rollback()  # nothing if it committed
            finally:
                projection.discard()
                self._committed = projection
        if self._locked:
            self._locked = False
            self._hook._lock.release()


class LedgerHook:
    """Appends a leaf per inserted event (its stored JSON) and one per document (its bytes)."""

    def __init__(self, ledger: Ledger) -> None:
        self.ledger = ledger

    def summarize(self, hash_id: str, event: EventBase, record: EventRecord) -> tuple[str, str]:
        return (hash_id, event_digest(record.body))

    async def committed(self, batch: CommittedBatch, items: Sequence[Any]) -> None:
        leaves = [("event", hash_id, digest) for hash_id, digest in items]
        if batch.final:
            # Only once the bytes are stored: a leaf for bytes we never kept would be a lie.
            document = batch.document
            leaves.insert(0, ("document", document.document_id, document.sha256))
        await self.ledger.append(leaves)


class _ItemSpool:
    """Summaries of inserted events, pickled to a temporary file in chunks until the commit."""

    def __init__(self, directory: Path | None) -> None:
        self._directory = directory
        self._file: IO[bytes] | None = None
        self._pending: list[tuple[Any, ...]] = []
        self.count = 0

    def add(self, items: Sequence[tuple[Any, ...]]) -> None:
        self._pending.extend(items)
        self.count += len(items)
        while len(self._pending) >= CHUNK:
            self._spill(self._pending[:CHUNK])
            del self._pending[:CHUNK]

    def _spill(self, chunk: list[tuple[Any, ...]]) -> None:
        if self._file is None:
            if self._directory is not None:
                self._directory.mkdir(parents=True, exist_ok=True)
            # Held open across batches and closed by close(): no with-block can span that.
            self._file = tempfile.TemporaryFile(dir=self._directory, prefix="hooks-")  # noqa: SIM115
        pickle.dump(chunk, self._file, protocol=pickle.HIGHEST_PROTOCOL)

    def chunks(self) -> list[list[tuple[Any, ...]]] | _SpoolReader:
        if self._file is None:
            return [self._pending]
        return _SpoolReader(self._file, self._pending)

    def close(self) -> None:
        if self._file is not None:
            self._file.close()
            self._file = None
        self._pending = []


class _SpoolReader:
    def __init__(self, file: IO[bytes], tail: list[tuple[Any, ...]]) -> None:
        self._file = file
        self._tail = tail

    def __iter__(self) -> Iterator[list[tuple[Any, ...]]]:
        self._file.flush()
        self._file.seek(0)
        while True:
            try:
                # Our own temporary file, written a moment ago by this process.
                yield pickle.load(self._file)  # noqa: S301
            except EOFError:
                break
        yield self._tail


def _without(summary: tuple[Any, ...], positions: Sequence[int]) -> tuple[Any, ...]:
    items = list(summary)
    for position in positions:
        items[position] = None
    return tuple(items)


class HookRunner:
    """The hooks of one capture: summaries on the reader thread, ``committed`` calls after."""

    def __init__(self, hooks: Sequence[CaptureHook], spool_dir: Path | None = None) -> None:
        self.hooks = tuple(hooks)
        self._spool_dir = spool_dir
        self._spool = _ItemSpool(spool_dir)
        self._calls = 0
        self._stages: dict[int, CaptureStage] | None = None

    def summarize(self, hash_id: str, event: EventBase, record: EventRecord) -> tuple[Any, ...]:
        return tuple(hook.summarize(hash_id, event, record) for hook in self.hooks)

    @staticmethod
    def inserted(
        records: Sequence[EventRecord],
        summaries: Sequence[tuple[Any, ...]],
        hash_ids: Sequence[str],
    ) -> list[tuple[Any, ...]]:
        """The summaries of the records the store inserted, each hash once."""
        wanted = set(hash_ids)
        kept = []
        for record, summary in zip(records, summaries, strict=True):
            if record.hash_id in wanted:
                wanted.discard(record.hash_id)
                kept.append(summary)
        return kept

    def hold(self, summaries: Sequence[tuple[Any, ...]]) -> None:
        """Atomic captures: keep summaries (on disk past a chunk) until the commit."""
        self._spool.add(summaries)

    async def stored(
        self,
        head: DocumentHead,
        document: DocumentRecord,
        summaries: Sequence[tuple[Any, ...]],
    ) -> None:
        """Atomic captures: hand a stored (not yet durable) batch to the hooks' stages, then
        hold what they do not keep themselves until the commit."""
        if self._stages is None:
            self._stages = {}
            for position, hook in enumerate(self.hooks):
                make = getattr(hook, "stage", None)
                stage = make(self._spool_dir) if make is not None else None
                if stage is not None:
                    self._stages[position] = stage
        for position, stage in self._stages.items():
            await stage.stored(head, document, [summary[position] for summary in summaries])
        kept = [position for position, stage in self._stages.items() if stage.keeps_items]
        if len(kept) == len(self.hooks):
            return  # nothing to hold: the commit's one call has no items for anyone
        if kept:
            # A placeholder in each kept position: positions still line up with the hooks.
            summaries = [_without(summary, kept) for summary in summaries]
        self.hold(summaries)

    async def abandon(self) -> None:
        """The capture ends without (or after) its commit: stages still open roll back."""
        for stage in (self._stages or {}).values():
            try:
                await stage.abandoned()
            except Exception:
                logger.exception("a capture stage failed to roll back")

    async def after_commit(self, head: DocumentHead, document: DocumentRecord) -> None:
        """Atomic captures: every held summary, in chunks, the last call ``final``."""
        try:
            # One chunk of look-ahead tells which call is the last; reading every spooled
            # chunk up front held all of a large document's summaries at once (~1.2 GB at
            # 1M events).
            current: list[tuple[Any, ...]] = []
            for chunk in self._spool.chunks():
                if not chunk:
                    continue
                if current:
                    await self.durable(head, document, current, final=False)
                current = chunk
            await self.durable(head, document, current, final=True)
        finally:
            self._spool.close()

    async def durable(
        self,
        head: DocumentHead,
        document: DocumentRecord,
        summaries: Sequence[tuple[Any, ...]],
        *,
        final: bool,
    ) -> None:
        """One call of every hook with these events' items; a failing hook stops no other.

        The hooks run side by side: each waits on its own store (or the projection worker's
        commit), and the ledger's appends need not wait for the projection's commit."""
        batch = CommittedBatch(head, document, first=self._calls == 0, final=final)
        self._calls += 1
        stages = self._stages or {}

        async def call(position: int, hook: CaptureHook) -> None:
            stage = stages.get(position)
            items = (
                [] if stage is not None and stage.keeps_items else [s[position] for s in summaries]
            )
            try:
                await (stage or hook).committed(batch, items)
            except Exception:
                # The events are stored and stay stored; what failed here is logged loudly so
                # that an operator can run 'dscsa rebuild' or 'dscsa ledger verify'.
                logger.exception(
                    "%s failed after capture of document %s",
                    type(hook).__name__,
                    document.document_id,
                )

        await asyncio.gather(*(call(position, hook) for position, hook in enumerate(self.hooks)))

    def discard(self) -> None:
        self._spool.close()
