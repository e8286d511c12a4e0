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
from pathlib import Path
from typing import IO, Any, Protocol

from epcis.errors import Problem
from epcis.model import DocumentHead, EPCISHeader, EventBase
from service.containment import EventFacts
from service.dscsa_checks import (
    CheckMode,
    DSCSACheckFailedError,
    _document_findings,
    facts_committed,
)
from service.exception_records import Finding
from service.ledger import Ledger
from service.ledger_records import event_digest
from service.store import DocumentRecord, EventRecord
from service.traceability_store import TraceabilityStore

__all__ = [
    "CHUNK",
    "CaptureHook",
    "CapturePolicy",
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


class CaptureHook(Protocol):
    def summarize(self, hash_id: str, event: EventBase, record: EventRecord) -> Any:
        """On the reader thread: a compact, picklable item for one event."""
        ...

    async def committed(self, batch: CommittedBatch, items: Sequence[Any]) -> None:
        """On the event loop, once durable: the items of the events the store inserted."""
        ...


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
    """Keeps serial state, containment and DSCSA exceptions current as events arrive."""

    def __init__(self, store: TraceabilityStore) -> None:
        self.store = store
        # The projection reads, then writes, the state of the serials a batch names: two
        # captures must not interleave there.
        self._lock = asyncio.Lock()

    def summarize(self, hash_id: str, event: EventBase, record: EventRecord) -> EventFacts:
        return EventFacts.from_event(event, hash_id, record.document_id)

    async def committed(self, batch: CommittedBatch, items: Sequence[Any]) -> None:
        # The header goes with every chunk: a document's shipping event may sit in any chunk,
        # and findings are keyed, so checking it again records nothing twice.
        async with self._lock:
            await facts_committed(
                self.store,
                items,
                header=batch.head.header,
                document_id=batch.document.document_id,
                partner_id=batch.document.sender_partner_id,
            )


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


class HookRunner:
    """The hooks of one capture: summaries on the reader thread, ``committed`` calls after."""

    def __init__(self, hooks: Sequence[CaptureHook], spool_dir: Path | None = None) -> None:
        self.hooks = tuple(hooks)
        self._spool = _ItemSpool(spool_dir)
        self._calls = 0

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
        """One call of every hook with these events' items; a failing hook stops no other."""
        batch = CommittedBatch(head, document, first=self._calls == 0, final=final)
        self._calls += 1
        for position, hook in enumerate(self.hooks):
            items = [summary[position] for summary in summaries]
            try:
                await hook.committed(batch, items)
            except Exception:
                # The events are stored and stay stored; what failed here is logged loudly so
                # that an operator can run 'dscsa rebuild' or 'dscsa ledger verify'.
                logger.exception(
                    "%s failed after capture of document %s",
                    type(hook).__name__,
                    document.document_id,
                )

    def discard(self) -> None:
        self._spool.close()
