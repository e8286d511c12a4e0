"""Group commit of the SQLite verification log: concurrent appends share transactions, every
caller returns only once its own entry is committed, in call order, and failures reach exactly
the callers whose entries were not written."""

from __future__ import annotations

import asyncio
import hashlib
import json
import sqlite3
import time
from collections.abc import AsyncIterator, Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

import service.sqlite_verification_log as module
from service.audit_records import verification_leaf
from service.sqlite_verification_log import SQLiteVerificationLog
from service.verification_log import LogFilter, entry_digest, entry_from_dict, entry_to_dict
from tests.service.test_verification_stores import _entry
from verification.messages import AdditionalInfo, FailureReason
from verification.ports import Direction


@pytest.fixture
async def log(tmp_path: Path) -> AsyncIterator[SQLiteVerificationLog]:
    opened = SQLiteVerificationLog(tmp_path / "v.sqlite")
    await opened.open()
    yield opened
    await opened.close()


def _stored_ids(path: Path) -> list[str]:
    # A separate connection sees only committed rows.
    with sqlite3.connect(path) as db:
        return [i for (i,) in db.execute("SELECT entry_id FROM verifications ORDER BY seq")]


def _count_transactions(monkeypatch: pytest.MonkeyPatch) -> list[int]:
    sizes: list[int] = []
    insert = module._insert

    def counting(db: sqlite3.Connection, rows: Sequence[Any]) -> None:
        sizes.append(len(rows))
        insert(db, rows)

    monkeypatch.setattr(module, "_insert", counting)
    return sizes


async def test_concurrent_appends_are_committed_in_groups_in_call_order(
    log: SQLiteVerificationLog, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    sizes = _count_transactions(monkeypatch)
    path = tmp_path / "v.sqlite"
    committed_on_return: list[bool] = []

    async def append(n: int) -> None:
        await log.append(_entry(n))
        committed_on_return.append(f"e{n}" in _stored_ids(path))

    await asyncio.gather(*(append(n) for n in range(120)))
    assert committed_on_return == [True] * 120
    assert _stored_ids(path) == [f"e{n}" for n in range(120)]
    # Appends made in one turn of the loop go to the log's thread as one group.
    assert sizes == [120]
    assert [e.entry_id for e in await log.query(LogFilter(limit=500))][:3] == ["e0", "e1", "e2"]


async def test_appends_during_a_commit_wait_for_the_next_group(
    log: SQLiteVerificationLog, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    sizes: list[int] = []
    insert = module._insert

    def slow(db: sqlite3.Connection, rows: Sequence[Any]) -> None:
        sizes.append(len(rows))
        time.sleep(0.2)
        insert(db, rows)

    monkeypatch.setattr(module, "_insert", slow)
    first = asyncio.ensure_future(log.append(_entry(0)))
    await asyncio.sleep(0.01)
    # The first group is being committed: these queue up, over several turns of the loop.
    later = [asyncio.ensure_future(log.append(_entry(n))) for n in range(1, 6)]
    await asyncio.sleep(0.01)
    later += [asyncio.ensure_future(log.append(_entry(n))) for n in range(6, 9)]
    assert not first.done()
    await asyncio.gather(first, *later)
    assert sizes == [1, 8]
    assert _stored_ids(tmp_path / "v.sqlite") == [f"e{n}" for n in range(9)]


async def test_sequential_appends_each_commit_before_returning(
    log: SQLiteVerificationLog, tmp_path: Path
) -> None:
    for n in range(5):
        await log.append(_entry(n))
        assert _stored_ids(tmp_path / "v.sqlite")[-1] == f"e{n}"


async def test_a_bad_entry_fails_only_its_own_caller(
    log: SQLiteVerificationLog, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    await log.append(_entry(0))
    sizes = _count_transactions(monkeypatch)
    # e0 again (a repeated entry id) in the middle of a group of fresh entries.
    entries = [_entry(1), _entry(2), _entry(0, serial="again"), _entry(3)]
    outcomes = await asyncio.gather(*(log.append(e) for e in entries), return_exceptions=True)
    assert [outcomes[n] for n in (0, 1, 3)] == [entry_digest(entries[n]) for n in (0, 1, 3)]
    assert isinstance(outcomes[2], sqlite3.IntegrityError)
    assert _stored_ids(tmp_path / "v.sqlite") == ["e0", "e1", "e2", "e3"]
    # The four were tried as one group, then one by one.
    assert sizes == [4, 1, 1, 1, 1]
    (original,) = await log.query(LogFilter(serial="0"))
    assert original == _entry(0)


async def test_a_failed_commit_surfaces_to_every_caller_of_its_group(
    log: SQLiteVerificationLog, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    def failing(db: sqlite3.Connection, rows: Sequence[Any]) -> None:
        raise sqlite3.OperationalError("disk I/O error")

    monkeypatch.setattr(module, "_insert", failing)
    outcomes = await asyncio.gather(
        *(log.append(_entry(n)) for n in range(6)), return_exceptions=True
    )
    assert all(isinstance(o, sqlite3.OperationalError) for o in outcomes)
    assert _stored_ids(tmp_path / "v.sqlite") == []
    monkeypatch.undo()
    # The log keeps working once the disk does.
    await asyncio.gather(*(log.append(_entry(n)) for n in range(6, 9)))
    assert _stored_ids(tmp_path / "v.sqlite") == ["e6", "e7", "e8"]


async def test_an_error_outside_sqlite_fails_the_whole_group(
    log: SQLiteVerificationLog, monkeypatch: pytest.MonkeyPatch
) -> None:
    def broken(db: sqlite3.Connection, rows: Sequence[Any]) -> list[BaseException | None]:
        raise MemoryError

    await log.append(_entry(0))
    monkeypatch.setattr(module, "_write_group", broken)
    outcomes = await asyncio.gather(
        *(log.append(_entry(n)) for n in range(1, 4)), return_exceptions=True
    )
    assert [type(o) for o in outcomes] == [MemoryError] * 3


async def test_close_writes_what_is_queued(tmp_path: Path) -> None:
    log = SQLiteVerificationLog(tmp_path / "v.sqlite")
    await log.open()
    pending = [asyncio.ensure_future(log.append(_entry(n))) for n in range(10)]
    await asyncio.sleep(0)
    await log.close()
    await asyncio.gather(*pending)
    assert _stored_ids(tmp_path / "v.sqlite") == [f"e{n}" for n in range(10)]


async def test_append_before_open_fails(tmp_path: Path) -> None:
    log = SQLiteVerificationLog(tmp_path / "v.sqlite")
    with pytest.raises(RuntimeError, match="not open"):
        await log.append(_entry(0))
    await log.close()


@pytest.mark.parametrize(
    "changes",
    [
        {},
        {"failure_reason": FailureReason.NO_MATCH_LOT, "verified": False},
        {"additional_info": AdditionalInfo.RECALLED, "answer": {"data": {"verified": True}}},
        {"direction": Direction.OUTBOUND, "req_gln": None, "corr_uuid": None, "status": 0},
        {"gtin": None, "serial": None, "lot": None, "error": 'bad "lot" \u00e9', "extras": {}},
        {"time": datetime(2026, 3, 1, 12, 0, 0, 123456, tzinfo=UTC), "latency_ms": 0.1 + 0.2},
    ],
)
def test_row_is_entry_to_dict_as_canonical_json(changes: dict[str, Any]) -> None:
    entry = _entry(7, **changes)
    row, digest = module._row(entry)
    data = entry_to_dict(entry)
    text = json.dumps(data, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    assert row[-1] == text
    # What the entry's ledger leaf commits to, and what `dscsa ledger verify` recomputes.
    assert digest == entry_digest(entry) == verification_leaf(entry)[2]
    assert digest == hashlib.sha256(text.encode()).hexdigest()
    assert row[:-1] == (
        entry.entry_id,
        data["time"],
        data["direction"],
        entry.requestor,
        entry.req_gln,
        entry.corr_uuid,
        entry.gtin,
        entry.serial,
        entry.lot,
    )
    assert entry_from_dict(json.loads(row[-1])) == entry


async def test_an_entry_that_cannot_be_written_fails_only_its_caller(
    log: SQLiteVerificationLog, tmp_path: Path
) -> None:
    # The rows are made on the log's thread: an answer that is not JSON fails there, alone.
    await log.append(_entry(0))
    entries = [_entry(1), _entry(2, answer={"x": object()}), _entry(3)]
    outcomes = await asyncio.gather(*(log.append(e) for e in entries), return_exceptions=True)
    assert [outcomes[0], outcomes[2]] == [entry_digest(entries[0]), entry_digest(entries[2])]
    assert isinstance(outcomes[1], TypeError)
    assert _stored_ids(tmp_path / "v.sqlite") == ["e0", "e1", "e3"]
