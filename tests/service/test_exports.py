"""Export requests: scope rules, due times, JSON round trips, the stores and deadline flags."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from mongomock_motor import AsyncMongoMockClient

from service.export_jobs import flag_deadlines
from service.export_store import ExportStore
from service.exports import (
    ExportRequest,
    ExportRequestError,
    ExportScope,
    ExportStatus,
    ScopeKind,
    default_due,
    new_request,
    parse_moment,
    request_from_dict,
    request_to_dict,
)
from service.mongo_export_store import MongoExportStore
from service.sqlite_export_store import SQLiteExportStore

FRIDAY = datetime(2026, 3, 6, 15, 30, tzinfo=UTC)
LOT = ExportScope(ScopeKind.LOT, gtin="00300010123455", lot="A123")


def _request(now: datetime = FRIDAY, due_at: datetime | None = None) -> ExportRequest:
    return new_request(
        scope=LOT,
        requester_kind="fda",
        requester="FDA",
        reason="recall",
        created_by="op",
        now=now,
        due_at=due_at,
    )


def test_default_due_is_one_business_day_later() -> None:
    assert default_due(FRIDAY) == datetime(2026, 3, 9, 15, 30, tzinfo=UTC)  # Monday
    tuesday = datetime(2026, 3, 3, 9, 0, tzinfo=UTC)
    assert default_due(tuesday) == tuesday + timedelta(days=1)


@pytest.mark.parametrize(
    ("scope", "message"),
    [
        ({"kind": ScopeKind.SERIALS}, "at least one serial"),
        ({"kind": ScopeKind.LOT, "gtin": "123"}, "14-digit GTIN"),
        ({"kind": ScopeKind.LOT, "gtin": "00300010123455"}, "lot number"),
        ({"kind": ScopeKind.GTIN, "gtin": "00300010123455"}, "date range"),
        ({"kind": ScopeKind.PARTNER, "partner_gln": "12"}, "13-digit GLN"),
        (
            {
                "kind": ScopeKind.PARTNER,
                "partner_gln": "0399999999991",
                "date_from": FRIDAY,
                "date_to": FRIDAY,
            },
            "empty",
        ),
    ],
)
def test_scopes_are_checked(scope: dict[str, Any], message: str) -> None:
    with pytest.raises(ExportRequestError, match=message):
        ExportScope(**scope)


def test_requests_need_a_requester_kind_and_reason() -> None:
    with pytest.raises(ExportRequestError, match="requester kind"):
        new_request(scope=LOT, requester_kind="press", requester="x", reason="y", created_by="o")
    with pytest.raises(ExportRequestError, match="reason"):
        new_request(scope=LOT, requester_kind="fda", requester="x", reason=" ", created_by="o")


def test_dates_and_round_trip() -> None:
    assert parse_moment("2026-03-06") == datetime(2026, 3, 6, tzinfo=UTC)
    assert parse_moment("2026-03-06", end_of_day=True) == datetime(2026, 3, 7, tzinfo=UTC)
    with pytest.raises(ExportRequestError, match="time zone"):
        parse_moment("2026-03-06T10:00:00")
    request = new_request(
        scope=ExportScope(
            ScopeKind.GTIN,
            gtin="00300010123455",
            date_from=parse_moment("2026-01-01"),
            date_to=parse_moment("2026-02-01"),
        ),
        requester_kind="trading_partner",
        requester="Wholesaler",
        reason="suspect product",
        incident_number="3911-1",
        created_by="auditor-1",
    )
    assert request_from_dict(request_to_dict(request)) == request


@pytest.fixture(params=["sqlite", "mongo"])
async def store(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[ExportStore]:
    # mongomock-motor stands in for MongoDB here (no live server needed); the adapter only
    # uses plain CRUD and indexes, which it emulates.
    opened: ExportStore
    if request.param == "sqlite":
        opened = SQLiteExportStore(tmp_path / "exports.sqlite3", tmp_path / "bundles")
    else:
        opened = MongoExportStore(AsyncMongoMockClient()["exports_test"])
    await opened.open()
    yield opened
    await opened.close()


async def test_store_keeps_requests_by_due_time_and_bundles(
    store: ExportStore, tmp_path: Path
) -> None:
    late = _request(FRIDAY)
    early = _request(FRIDAY - timedelta(days=3))
    for request in (late, early):
        await store.put_request(request)
    listed = await store.list_requests()
    assert [r.export_id for r in listed] == [early.export_id, late.export_id]
    ready = early.with_status(ExportStatus.READY)
    await store.put_request(ready)
    assert [r.export_id for r in await store.list_requests(open_only=True)] == [late.export_id]
    assert await store.get_request(ready.export_id) == ready
    data = bytes(range(256)) * 40_000
    source = tmp_path / "bundle.zip"
    source.write_bytes(data)
    await store.put_bundle(ready.export_id, source)
    assert b"".join([c async for c in store.open_bundle(ready.export_id)]) == data
    with pytest.raises(KeyError):
        [c async for c in store.open_bundle(late.export_id)]


async def test_deadline_job_flags_each_request_once(store: ExportStore) -> None:
    soon = _request(FRIDAY, due_at=FRIDAY + timedelta(hours=2))
    later = _request(FRIDAY, due_at=FRIDAY + timedelta(days=2))
    done = _request(FRIDAY, due_at=FRIDAY + timedelta(hours=1)).with_status(ExportStatus.READY)
    for request in (soon, later, done):
        await store.put_request(request)
    flagged = await flag_deadlines(store, now=FRIDAY)
    assert [r.export_id for r in flagged] == [soon.export_id]
    assert await flag_deadlines(store, now=FRIDAY + timedelta(minutes=5)) == []
    stored = await store.get_request(soon.export_id)
    assert stored is not None
    assert stored.flagged_at == FRIDAY
