"""The audit ledger: every kept record as a leaf of one append-only Merkle tree.

A leaf commits to a record by kind, ID and SHA-256 digest of its stored bytes (a captured
document's content, an event's stored JSON, a verification log entry, ...). Signed checkpoints
(tree heads) fix the tree at a size; inclusion and consistency proofs then show that a record
was there and that history was only ever appended to.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Literal, Protocol

from service.checkpoints import Checkpoint, sign_checkpoint
from service.keys import KeyRing
from service.merkle import MerkleTree, leaf_hash

__all__ = [
    "InclusionProof",
    "Ledger",
    "LedgerEntry",
    "LedgerError",
    "LedgerStore",
    "RecordKind",
    "leaf_data",
]

RecordKind = Literal["document", "event", "verification", "exception_resolution", "recall"]


class LedgerError(Exception):
    """A proof was asked for something the ledger does not hold."""


def leaf_data(kind: str, record_id: str, digest: str) -> bytes:
    """The bytes a leaf hashes: newline-separated, so no two records can share them."""
    return f"{kind}\n{record_id}\n{digest}".encode()


@dataclass(frozen=True, slots=True)
class LedgerEntry:
    index: int
    kind: str
    record_id: str
    digest: str  # hex SHA-256 of the record's stored bytes
    appended_at: datetime

    @property
    def leaf_hash(self) -> bytes:
        return leaf_hash(leaf_data(self.kind, self.record_id, self.digest))


@dataclass(frozen=True, slots=True)
class InclusionProof:
    entry: LedgerEntry
    tree_size: int
    root: str
    path: tuple[str, ...]  # hex node hashes, leaf to root


class LedgerStore(Protocol):
    """Where leaves and checkpoints are kept; adapters for SQLite and MongoDB."""

    async def open(self) -> None: ...

    async def close(self) -> None: ...

    async def append(
        self, records: Sequence[tuple[str, str, str]], at: datetime
    ) -> Sequence[LedgerEntry]:
        """Append (kind, record_id, digest) leaves at the next indexes, atomically, in order."""
        ...

    def iter_entries(self, start: int = 0) -> AsyncIterator[LedgerEntry]:
        """Every entry from ``start`` on, in index order."""
        ...

    async def find(self, kind: str, record_id: str) -> LedgerEntry | None: ...

    async def size(self) -> int: ...

    async def add_checkpoint(self, checkpoint: Checkpoint) -> None: ...

    async def checkpoints(self) -> Sequence[Checkpoint]:
        """Oldest first."""
        ...


class Ledger:
    """The tree in memory (rebuilt from the store at start) in front of its store.

    Another process may append to the same store (``dscsa capture`` beside ``dscsa serve``):
    the tree then catches up from the store before it appends, signs or proves, so it never
    signs a stale head or refuses a proof for a record the other process ledgered.
    """

    def __init__(self, store: LedgerStore) -> None:
        self.store = store
        self._tree = MerkleTree()
        self._lock = asyncio.Lock()

    @property
    def size(self) -> int:
        return self._tree.size

    async def load(self) -> None:
        tree = MerkleTree()
        await self._read_into(tree, None)
        self._tree = tree

    async def _read_into(self, tree: MerkleTree, stop: int | None) -> None:
        """Extend ``tree`` with the stored leaves from its size up to ``stop`` (or the end)."""
        batch: list[bytes] = []
        async for entry in self.store.iter_entries(tree.size):
            if stop is not None and entry.index >= stop:
                break
            if entry.index != tree.size + len(batch):
                missing = tree.size + len(batch)
                raise LedgerError(f"ledger leaf {missing} is missing; run 'dscsa ledger verify'")
            batch.append(entry.leaf_hash)
            if len(batch) >= 10_000:
                tree.extend_leaf_hashes(batch)
                batch = []
        tree.extend_leaf_hashes(batch)

    async def refresh(self) -> None:
        """Take in what other processes appended since the tree was last read."""
        async with self._lock:
            await self._catch_up()

    async def _catch_up(self) -> None:
        if await self.store.size() > self._tree.size:
            await self._read_into(self._tree, None)

    async def append(self, records: Sequence[tuple[str, str, str]]) -> Sequence[LedgerEntry]:
        """Append (kind, record_id, hex digest) records; answer their entries."""
        if not records:
            return ()
        async with self._lock:
            entries = await self.store.append(records, datetime.now(UTC))
            first = entries[0].index
            if first > self._tree.size:
                # Leaves another process appended before ours: read them, then add ours.
                await self._read_into(self._tree, first)
            if first != self._tree.size or any(
                entry.index != first + n for n, entry in enumerate(entries)
            ):
                raise LedgerError("the ledger store and the in-memory tree disagree")
            # One pass per tree level for the whole batch (appends come a page at a time).
            self._tree.extend_leaf_hashes([entry.leaf_hash for entry in entries])
            return entries

    def root(self, size: int | None = None) -> bytes:
        return self._tree.root(size)

    async def checkpoint(self, keyring: KeyRing) -> Checkpoint:
        """Sign the current tree head and keep it."""
        async with self._lock:
            await self._catch_up()
            checkpoint = sign_checkpoint(keyring, self._tree.size, self._tree.root())
            await self.store.add_checkpoint(checkpoint)
            return checkpoint

    async def inclusion(self, kind: str, record_id: str, size: int | None = None) -> InclusionProof:
        entry = await self.store.find(kind, record_id)
        if entry is not None and entry.index >= self._tree.size:
            await self.refresh()
        tree_size = self._tree.size if size is None else size
        if entry is None or entry.index >= tree_size:
            raise LedgerError(f"no {kind} {record_id} in the ledger at size {tree_size}")
        path = self._tree.inclusion_proof(entry.index, tree_size)
        return InclusionProof(
            entry=entry,
            tree_size=tree_size,
            root=self._tree.root(tree_size).hex(),
            path=tuple(node.hex() for node in path),
        )

    def consistency(self, old_size: int, new_size: int) -> tuple[str, ...]:
        try:
            return tuple(node.hex() for node in self._tree.consistency_proof(old_size, new_size))
        except ValueError as err:
            raise LedgerError(str(err)) from err
