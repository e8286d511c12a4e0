"""Log entry ids: 32 hex digits, unique, and ordered by the millisecond they were made in."""

from __future__ import annotations

import time

from verification.ports import new_entry_id


def test_entry_ids_are_unique_hex_and_start_with_the_time() -> None:
    before = time.time_ns() // 1_000_000
    ids = [new_entry_id() for _ in range(5000)]
    after = time.time_ns() // 1_000_000
    assert len(set(ids)) == len(ids)
    assert all(len(i) == 32 and int(i, 16) >= 0 for i in ids)
    stamps = [int(i[:12], 16) for i in ids]
    assert stamps == sorted(stamps)
    assert before <= stamps[0] <= stamps[-1] <= after
