"""Retention: nothing younger than six years goes; older events and documents are purged,
their ledger leaves stay, and the purge is logged."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from pathlib import Path

import pytest

from epcis.query import EventQuery
from service.retention import (
    SQLitePurger,
    purger_for,
    retention_cutoff,
    retention_years,
    run_retention,
)
from service.store import PageRequest, Visibility
from tests.service.export_fixtures import (
    PHARMA_EXAMPLE,
    ExportStores,
    index_captured,
    open_export_stores,
)

# The shipment's events happened in March 2026 and were captured today.
CAPTURED_AT = datetime.now(UTC)


@pytest.fixture
async def stores(tmp_path: Path) -> AsyncIterator[ExportStores]:
    opened = await open_export_stores(tmp_path)
    await index_captured(opened.events, opened.trace, opened.ledger, PHARMA_EXAMPLE)
    yield opened
    await opened.close()


def test_the_period_is_never_below_six_years() -> None:
    assert retention_years(2) == 6
    assert retention_years(10) == 10
    now = datetime(2032, 2, 29, 12, 0, tzinfo=UTC)
    assert retention_cutoff(now, 6) == datetime(2026, 2, 28, 12, 0, tzinfo=UTC)
    assert retention_cutoff(now, 7.5) < datetime(2024, 12, 1, tzinfo=UTC)


async def _count(stores: ExportStores) -> int:
    page = await stores.events.query_events(
        EventQuery(), Visibility.everything(), PageRequest(per_page=1000)
    )
    return len(page.records)


async def test_nothing_younger_than_six_years_is_purged(
    stores: ExportStores, tmp_path: Path
) -> None:
    before = await _count(stores)
    # Events are three years old but were captured today: both times must be old.
    result = await run_retention(
        SQLitePurger(stores.events, tmp_path / "data" / "documents"),
        years=1,
        log_dir=tmp_path / "retention",
    )
    assert result.events == []
    assert result.documents == []
    assert await _count(stores) == before
    assert not (tmp_path / "retention" / "purged.jsonl").exists()


async def test_old_records_are_purged_and_their_leaves_kept(
    stores: ExportStores, tmp_path: Path
) -> None:
    before = await _count(stores)
    leaves = stores.ledger.size
    root = stores.ledger.root()
    purger = purger_for(stores.events, tmp_path / "data")
    later = CAPTURED_AT.replace(year=CAPTURED_AT.year + 7)
    result = await run_retention(purger, now=later, log_dir=tmp_path / "retention")
    assert len(result.events) == before
    assert len(result.documents) == 1
    assert result.contents_removed == 1
    assert await _count(stores) == 0
    document_id, sha256 = result.documents[0]
    assert await stores.events.get_document(document_id) is None
    with pytest.raises(KeyError):
        [chunk async for chunk in stores.events.open_document_content(sha256)]
    # The ledger is untouched: its leaves (and so every old proof) still stand.
    await stores.ledger.load()
    assert stores.ledger.size == leaves
    assert stores.ledger.root() == root
    log = [json.loads(line) for line in (tmp_path / "retention" / "purged.jsonl").open()]
    assert len(log) == before + 1
    digests = {(e.kind, e.record_id): e.digest async for e in stores.ledger.store.iter_entries()}
    assert all(digests[(entry["kind"], entry["record_id"])] == entry["digest"] for entry in log)
