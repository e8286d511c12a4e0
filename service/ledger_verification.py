"""``dscsa ledger verify``: recompute the ledger from the stored records and check every checkpoint.

Three kinds of damage are found: a record whose stored bytes no longer hash to the digest its
leaf committed to (changed), a record that is gone (deleted), and a leaf sequence or tree that
no longer matches the signed checkpoints (the ledger itself was edited). Signatures are checked
with the public keys, including retired ones.
"""

from __future__ import annotations

import asyncio
import hashlib
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Protocol

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

from service.checkpoints import Checkpoint, verify_checkpoint
from service.ledger import LedgerEntry, LedgerStore
from service.merkle import MerkleTree

__all__ = ["Finding", "LedgerReport", "RecordDigests", "verify_ledger"]

_BATCH = 5_000


class RecordDigests(Protocol):
    """Recomputes the digests of kept records from what the stores hold now."""

    async def digests(self, kind: str, record_ids: Sequence[str]) -> Mapping[str, str]:
        """hex SHA-256 of each record's stored bytes; absent records are left out."""
        ...


@dataclass(frozen=True, slots=True)
class Finding:
    problem: str  # changed | deleted | missing-leaf | checkpoint-root | checkpoint-signature | ...
    detail: str
    leaf_index: int | None = None


@dataclass(slots=True)
class LedgerReport:
    leaves: int = 0
    checkpoints: int = 0
    findings: list[Finding] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.findings


async def verify_ledger(
    store: LedgerStore,
    records: RecordDigests,
    public_key: Callable[[str], Ed25519PublicKey | None],
) -> LedgerReport:
    report = LedgerReport()
    tree = MerkleTree()
    batch: list[LedgerEntry] = []
    # The records of one batch are fetched and hashed (store threads) while the next batch's
    # leaves are hashed into the tree here; findings are still added in leaf order.
    pending: asyncio.Task[list[Finding]] | None = None
    try:
        async for entry in store.iter_entries():
            expected = tree.size + len(batch)
            if entry.index != expected:
                if pending is not None:
                    report.findings.extend(await pending)
                    pending = None
                report.findings.append(
                    Finding(
                        "missing-leaf",
                        f"leaves {expected} to {entry.index - 1} are missing from the ledger",
                        expected,
                    )
                )
                break
            batch.append(entry)
            if len(batch) >= _BATCH:
                _extend(tree, batch)
                if pending is not None:
                    report.findings.extend(await pending)
                pending = asyncio.create_task(_check_records(batch, records))
                batch = []
        _extend(tree, batch)
        if pending is not None:
            report.findings.extend(await pending)
        report.findings.extend(await _check_records(batch, records))
    finally:
        if pending is not None and not pending.done():
            pending.cancel()
    report.leaves = tree.size
    for checkpoint in await store.checkpoints():
        report.checkpoints += 1
        _check_checkpoint(checkpoint, tree, public_key, report)
    return report


def _extend(tree: MerkleTree, entries: Sequence[LedgerEntry]) -> None:
    """Add the entries' leaves: hashed inline (the same bytes as ``LedgerEntry.leaf_hash``)."""
    sha256 = hashlib.sha256
    tree.extend_leaf_hashes(
        [
            sha256(b"\x00" + f"{e.kind}\n{e.record_id}\n{e.digest}".encode()).digest()
            for e in entries
        ]
    )


async def _check_records(entries: Sequence[LedgerEntry], records: RecordDigests) -> list[Finding]:
    findings: list[Finding] = []
    by_kind: dict[str, list[LedgerEntry]] = {}
    for entry in entries:
        by_kind.setdefault(entry.kind, []).append(entry)
    for kind, kind_entries in by_kind.items():
        current = await records.digests(kind, [e.record_id for e in kind_entries])
        for entry in kind_entries:
            digest = current.get(entry.record_id)
            if digest is None:
                findings.append(
                    Finding("deleted", f"{kind} {entry.record_id} is gone", entry.index)
                )
            elif digest != entry.digest:
                findings.append(
                    Finding(
                        "changed",
                        f"{kind} {entry.record_id} was altered: SHA-256 is {digest}, "
                        f"the ledger committed to {entry.digest}",
                        entry.index,
                    )
                )
    return findings


def _check_checkpoint(
    checkpoint: Checkpoint,
    tree: MerkleTree,
    public_key: Callable[[str], Ed25519PublicKey | None],
    report: LedgerReport,
) -> None:
    key = public_key(checkpoint.key_id)
    label = f"checkpoint of size {checkpoint.size} at {checkpoint.timestamp}"
    if key is None:
        report.findings.append(
            Finding("checkpoint-key", f"{label}: unknown key {checkpoint.key_id}")
        )
    elif not verify_checkpoint(checkpoint, key):
        report.findings.append(Finding("checkpoint-signature", f"{label}: bad signature"))
    if checkpoint.size > tree.size:
        report.findings.append(
            Finding("checkpoint-size", f"{label}: the ledger has only {tree.size} leaves")
        )
    elif tree.root(checkpoint.size).hex() != checkpoint.root:
        report.findings.append(
            Finding("checkpoint-root", f"{label}: the leaves no longer give the signed root")
        )
