"""verify_ledger's batched, overlapped pass against the plain one-leaf-at-a-time algorithm."""

from __future__ import annotations

from collections.abc import AsyncIterator, Mapping, Sequence
from datetime import UTC, datetime
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import service.ledger_verification as verification
from service.checkpoints import Checkpoint
from service.ledger import Ledger, LedgerEntry, LedgerError, leaf_data
from service.ledger_verification import Finding, verify_ledger
from service.merkle import MerkleTree, leaf_hash
from service.sqlite_ledger_store import SQLiteLedgerStore

_AT = datetime(2026, 3, 2, tzinfo=UTC)


class ListLedgerStore:
    """Entries as given (gaps included), no checkpoints."""

    def __init__(self, entries: list[LedgerEntry]) -> None:
        self.entries = entries

    async def iter_entries(self, start: int = 0) -> AsyncIterator[LedgerEntry]:
        for entry in self.entries:
            if entry.index >= start:
                yield entry

    async def checkpoints(self) -> Sequence[Checkpoint]:
        return ()


class Digests:
    def __init__(self, current: dict[str, str]) -> None:
        self.current = current
        self.calls = 0

    async def digests(self, kind: str, record_ids: Sequence[str]) -> Mapping[str, str]:
        self.calls += 1
        return {r: self.current[r] for r in record_ids if r in self.current}


def _reference(entries: list[LedgerEntry], current: dict[str, str]) -> tuple[list[Finding], bytes]:
    """The former algorithm: one leaf at a time, records checked in batches of five."""
    tree = MerkleTree()
    findings: list[Finding] = []
    batch: list[LedgerEntry] = []

    def check(chunk: list[LedgerEntry]) -> None:
        for kind in dict.fromkeys(e.kind for e in chunk):
            for entry in (e for e in chunk if e.kind == kind):
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

    for entry in entries:
        if entry.index != tree.size:
            findings.append(
                Finding(
                    "missing-leaf",
                    f"leaves {tree.size} to {entry.index - 1} are missing from the ledger",
                    tree.size,
                )
            )
            break
        tree.append_leaf_hash(entry.leaf_hash)
        batch.append(entry)
        if len(batch) >= 5:
            check(batch)
            batch = []
    check(batch)
    return findings, tree.root()


@settings(
    max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(
    size=st.integers(min_value=0, max_value=40),
    data=st.data(),
)
async def test_batched_verify_equals_the_plain_algorithm(
    size: int, data: st.DataObject, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(verification, "_BATCH", 5)
    kinds = data.draw(
        st.lists(st.sampled_from(["event", "document"]), min_size=size, max_size=size)
    )
    entries = [LedgerEntry(i, kinds[i], f"record-{i}", f"{i:064x}", _AT) for i in range(size)]
    current = {e.record_id: e.digest for e in entries}
    for index in data.draw(st.sets(st.integers(min_value=0, max_value=max(size - 1, 0)))):
        if index < size:
            if data.draw(st.booleans()):
                current[f"record-{index}"] = "ff" * 32
            else:
                del current[f"record-{index}"]
    if size > 2 and data.draw(st.booleans()):
        gap = data.draw(st.integers(min_value=1, max_value=size - 1))
        del entries[gap]
    expected, root = _reference(entries, current)
    report = await verify_ledger(ListLedgerStore(entries), Digests(current), lambda _: None)  # type: ignore[arg-type]
    assert report.findings == expected
    assert report.leaves == len([e for n, e in enumerate(entries) if e.index == n])
    tree = MerkleTree(e.leaf_hash for n, e in enumerate(entries) if e.index == n)
    assert tree.root() == root


class FailingDigests:
    async def digests(self, kind: str, record_ids: Sequence[str]) -> Mapping[str, str]:
        raise OSError("store gone")


async def test_a_failing_record_store_is_not_swallowed(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(verification, "_BATCH", 2)
    entries = [LedgerEntry(i, "event", f"r{i}", f"{i:064x}", _AT) for i in range(7)]
    with pytest.raises(OSError, match="store gone"):
        await verify_ledger(ListLedgerStore(entries), FailingDigests(), lambda _: None)  # type: ignore[arg-type]


class WrongIndexStore(ListLedgerStore):
    """Answers appends with indexes that skip one, as a store edited behind our back would."""

    async def append(
        self, records: Sequence[tuple[str, str, str]], at: datetime
    ) -> Sequence[LedgerEntry]:
        return [LedgerEntry(n * 2, k, r, d, at) for n, (k, r, d) in enumerate(records)]


async def test_batched_appends_build_the_tree_of_their_leaves(tmp_path: Path) -> None:
    store = SQLiteLedgerStore(tmp_path / "ledger.sqlite3")
    await store.open()
    try:
        ledger = Ledger(store)
        records = [("event", f"r{n}", f"{n:064x}") for n in range(37)]
        for start, end in ((0, 1), (1, 2), (2, 19), (19, 37)):
            entries = await ledger.append(records[start:end])
            assert [e.index for e in entries] == list(range(start, end))
        expected = MerkleTree(leaf_hash(leaf_data(*record)) for record in records)
        assert ledger.size == 37
        assert ledger.root() == expected.root()
        assert ledger.root(20) == expected.root(20)
    finally:
        await store.close()


async def test_appends_the_store_numbers_wrongly_are_refused() -> None:
    ledger = Ledger(WrongIndexStore([]))  # type: ignore[arg-type]
    with pytest.raises(LedgerError, match="disagree"):
        await ledger.append([("event", "a", "00" * 32), ("event", "b", "11" * 32)])
    assert ledger.size == 0
