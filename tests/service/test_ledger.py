"""The audit ledger on every store adapter: leaves, checkpoints, proofs, reload.

MongoDB runs on mongomock-motor, an in-process emulator; a live server is used as well when
DSCSA_TEST_MONGODB_URL is set.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import AsyncIterator, Mapping, Sequence
from datetime import UTC, datetime
from pathlib import Path

import pytest

from service.checkpoints import verify_checkpoint
from service.keys import KeyRing, load_public_key
from service.ledger import Ledger, LedgerError, LedgerStore
from service.ledger_verification import verify_ledger
from service.merkle import verify_consistency, verify_inclusion
from service.mongo_ledger_store import MongoLedgerStore
from service.sqlite_ledger_store import SQLiteLedgerStore

ADAPTERS = ["sqlite", "mongomock"] + (
    ["mongodb"] if os.environ.get("DSCSA_TEST_MONGODB_URL") else []
)


@pytest.fixture(params=ADAPTERS)
async def ledger_store(
    request: pytest.FixtureRequest, tmp_path: Path
) -> AsyncIterator[LedgerStore]:
    store: LedgerStore
    if request.param == "sqlite":
        store = SQLiteLedgerStore(tmp_path / "ledger.sqlite3")
    elif request.param == "mongomock":
        from mongomock_motor import AsyncMongoMockClient

        store = MongoLedgerStore(AsyncMongoMockClient()["ledger_test"])
    else:
        from pymongo import AsyncMongoClient

        client: AsyncMongoClient[dict[str, object]] = AsyncMongoClient(
            os.environ["DSCSA_TEST_MONGODB_URL"]
        )
        store = MongoLedgerStore(client[f"dscsa_test_{uuid.uuid4().hex[:8]}"])
    await store.open()
    yield store
    await store.close()


def records(n: int, kind: str = "event") -> list[tuple[str, str, str]]:
    return [(kind, f"ni:///sha-256;{i:064x}?ver=CBV2.0", f"{i:064x}") for i in range(n)]


async def test_append_assigns_consecutive_indexes(ledger_store: LedgerStore) -> None:
    now = datetime.now(UTC)
    first = await ledger_store.append(records(3), now)
    second = await ledger_store.append(records(2, "document"), now)
    assert [e.index for e in (*first, *second)] == [0, 1, 2, 3, 4]
    assert await ledger_store.size() == 5
    listed = [entry async for entry in ledger_store.iter_entries()]
    assert [(e.kind, e.record_id) for e in listed] == [
        (e.kind, e.record_id) for e in (*first, *second)
    ]
    assert [e.index async for e in ledger_store.iter_entries(3)] == [3, 4]


async def test_find_names_kind_and_record(ledger_store: LedgerStore) -> None:
    await ledger_store.append(records(4), datetime.now(UTC))
    found = await ledger_store.find("event", records(4)[2][1])
    assert found is not None
    assert found.index == 2
    assert found.digest == records(4)[2][2]
    assert await ledger_store.find("document", records(4)[2][1]) is None


async def test_iteration_pages_through_large_ledgers(ledger_store: LedgerStore) -> None:
    await ledger_store.append(records(12_345), datetime.now(UTC))
    indexes = [entry.index async for entry in ledger_store.iter_entries()]
    assert indexes == list(range(12_345))


async def test_ledger_proofs_and_signed_checkpoints(
    ledger_store: LedgerStore, tmp_path: Path
) -> None:
    keyring = KeyRing(tmp_path / "keys", b"passphrase")
    keyring.generate()
    ledger = Ledger(ledger_store)
    await ledger.load()
    await ledger.append(records(5))
    first = await ledger.checkpoint(keyring)
    await ledger.append(records(9, "verification"))
    second = await ledger.checkpoint(keyring)

    public_key = load_public_key(keyring.public_pem())
    stored = await ledger_store.checkpoints()
    assert [c.size for c in stored] == [5, 14]
    assert all(verify_checkpoint(c, public_key) for c in stored)

    proof = await ledger.inclusion("event", records(5)[3][1], size=first.size)
    assert verify_inclusion(
        proof.entry.leaf_hash,
        proof.entry.index,
        first.size,
        [bytes.fromhex(p) for p in proof.path],
        bytes.fromhex(first.root),
    )
    consistency = ledger.consistency(first.size, second.size)
    assert verify_consistency(
        first.size,
        second.size,
        bytes.fromhex(first.root),
        bytes.fromhex(second.root),
        [bytes.fromhex(p) for p in consistency],
    )
    with pytest.raises(LedgerError):
        await ledger.inclusion("verification", records(9, "verification")[0][1], size=5)

    reloaded = Ledger(ledger_store)
    await reloaded.load()
    assert reloaded.root() == ledger.root()
    assert reloaded.size == 14


class DictDigests:
    """Stand-in for the stores: the digests of records as they are now."""

    def __init__(self, current: dict[tuple[str, str], str]) -> None:
        self.current = current

    async def digests(self, kind: str, record_ids: Sequence[str]) -> Mapping[str, str]:
        return {
            record_id: self.current[(kind, record_id)]
            for record_id in record_ids
            if (kind, record_id) in self.current
        }


async def test_verify_finds_changed_and_deleted_records(
    ledger_store: LedgerStore, tmp_path: Path
) -> None:
    keyring = KeyRing(tmp_path / "keys", b"passphrase")
    keyring.generate()
    ledger = Ledger(ledger_store)
    await ledger.append(records(6))
    await ledger.checkpoint(keyring)
    current = {(kind, rid): digest for kind, rid, digest in records(6)}
    key = load_public_key(keyring.public_pem())
    report = await verify_ledger(ledger_store, DictDigests(current), lambda _: key)
    assert report.ok
    assert (report.leaves, report.checkpoints) == (6, 1)

    changed_id = records(6)[1][1]
    deleted_id = records(6)[4][1]
    current[("event", changed_id)] = "ff" * 32
    del current[("event", deleted_id)]
    report = await verify_ledger(ledger_store, DictDigests(current), lambda _: key)
    assert [(f.problem, f.leaf_index) for f in report.findings] == [("changed", 1), ("deleted", 4)]
    assert changed_id in report.findings[0].detail


async def test_verify_finds_a_forged_checkpoint_key(
    ledger_store: LedgerStore, tmp_path: Path
) -> None:
    keyring = KeyRing(tmp_path / "keys", b"passphrase")
    keyring.generate()
    ledger = Ledger(ledger_store)
    await ledger.append(records(3))
    await ledger.checkpoint(keyring)
    other = KeyRing(tmp_path / "other", b"passphrase")
    other.generate()
    wrong_key = load_public_key(other.public_pem())
    current = {(kind, rid): digest for kind, rid, digest in records(3)}
    report = await verify_ledger(ledger_store, DictDigests(current), lambda _: wrong_key)
    assert [f.problem for f in report.findings] == ["checkpoint-signature"]


async def test_two_processes_appending_to_one_store_keep_one_tree(
    ledger_store: LedgerStore, tmp_path: Path
) -> None:
    """``dscsa capture`` beside ``dscsa serve``: each ledger catches up with the other's leaves."""
    keyring = KeyRing(tmp_path / "keys", b"passphrase")
    keyring.generate()
    server, command_line = Ledger(ledger_store), Ledger(ledger_store)
    await server.load()
    await command_line.load()
    await server.append(records(3))
    await command_line.append(records(4, "document"))  # behind by 3: reads them first
    await server.append(records(2, "verification"))  # behind by 4
    assert server.size == command_line.size + 2 == 9

    proof = await command_line.inclusion("verification", records(2, "verification")[1][1])
    assert proof.tree_size == 9
    checkpoint = await command_line.checkpoint(keyring)
    reloaded = Ledger(ledger_store)
    await reloaded.load()
    assert checkpoint.size == 9
    assert bytes.fromhex(checkpoint.root) == reloaded.root() == server.root()
    assert verify_inclusion(
        proof.entry.leaf_hash,
        proof.entry.index,
        proof.tree_size,
        [bytes.fromhex(p) for p in proof.path],
        reloaded.root(),
    )
    await server.refresh()
    assert server.size == 9
