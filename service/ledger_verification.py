"""``dscsa ledger verify``: recompute the ledger from the stored records and check every checkpoint.

Three kinds of damage are found: a record whose stored bytes no longer hash to the digest its
leaf committed to (changed), a record that is gone (deleted), and a leaf sequence or tree that
no longer matches the signed checkpoints (the ledger itself was edited). Signatures are checked
with the public keys, including retired ones.
"""

from __future__ import annotations

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
    async for entry in store.iter_entries():
        if entry.index != tree.size:
            report.findings.append(
                Finding(
                    "missing-leaf",
                    f"leaves {tree.size} to {entry.index - 1} are missing from the ledger",
                    tree.size,
                )
            )
            break
        tree.append_leaf_hash(entry.leaf_hash)
        batch.append(entry)
        if len(batch) >= _BATCH:
            await _check_records(batch, records, report)
            batch = []
    await _check_records(batch, records, report)
    report.leaves = tree.size
    for checkpoint in await store.checkpoints():
        report.checkpoints += 1
        _check_checkpoint(checkpoint, tree, public_key, report)
    return report


async def _check_records(
    entries: Sequence[LedgerEntry], records: RecordDigests, report: LedgerReport
) -> None:
    by_kind: dict[str, list[LedgerEntry]] = {}
    for entry in entries:
        by_kind.setdefault(entry.kind, []).append(entry)
    for kind, kind_entries in by_kind.items():
        current = await records.digests(kind, [e.record_id for e in kind_entries])
        for entry in kind_entries:
            digest = current.get(entry.record_id)
            if digest is None:
                report.findings.append(
                    Finding("deleted", f"{kind} {entry.record_id} is gone", entry.index)
                )
            elif digest != entry.digest:
                report.findings.append(
                    Finding(
                        "changed",
                        f"{kind} {entry.record_id} was altered: SHA-256 is {digest}, "
                        f"the ledger committed to {entry.digest}",
                        entry.index,
                    )
                )


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
