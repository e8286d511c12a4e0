"""Traceability HTTP endpoints on a small app with the real SQLite traceability store."""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

import pytest
from aiohttp import web
from aiohttp.test_utils import TestClient

from service.dscsa_checks import on_events_committed
from service.handlers.traceability import TRACEABILITY, traceability_routes
from service.problems import problems_middleware
from service.sqlite_traceability_store import SQLiteTraceabilityStore
from tests.service.dscsa_scenario import (
    CASES,
    ITEM_GTIN,
    ITEMS,
    WHOLESALER,
    facts,
    header,
    receive,
    scenario_events,
)

ClientFactory = Callable[[web.Application], Awaitable[TestClient[Any, Any]]]


def _authorize(request: web.Request, roles: tuple[str, ...]) -> str:
    # Stands in for the app's bearer-token middleware: the role comes in a test header.
    role = request.headers.get("X-Test-Role", "")
    if role not in roles:
        raise web.HTTPForbidden(text="role")
    return f"{role}-1"


@pytest.fixture
async def client(
    aiohttp_client: ClientFactory, tmp_path: Any
) -> AsyncIterator[TestClient[Any, Any]]:
    store = SQLiteTraceabilityStore(tmp_path / "trace.sqlite")
    await store.open()
    events = [*scenario_events(), receive(300, (ITEMS[1],), 2)]
    pairs = [(f.hash_id, e) for f, e in zip(facts(events), events, strict=True)]
    await on_events_committed(store, pairs, header=header(), document_id="d1", partner_id="mfg")
    app = web.Application(middlewares=[problems_middleware])
    app[TRACEABILITY] = store
    app.add_routes(traceability_routes(_authorize))
    yield await aiohttp_client(app)
    await store.close()


OPERATOR = {"X-Test-Role": "operator"}
AUDITOR = {"X-Test-Role": "auditor"}


async def test_trace_by_urn(client: TestClient[Any, Any]) -> None:
    response = await client.get(f"/trace/{ITEMS[3]}", headers=AUDITOR)
    assert response.status == 200
    body = await response.json()
    assert body["status"] == "packed"
    assert body["state"]["parent"] == CASES[1]
    assert body["ownership_changes"][0]["buyer"]["name"] == "GS1 Drug Distributor"
    assert body["events"][3]["inferred"] is True


async def test_trace_unknown_is_a_404_problem(client: TestClient[Any, Any]) -> None:
    response = await client.get("/trace/urn:epc:id:sgtin:030001.0012345.404", headers=AUDITOR)
    assert response.status == 404
    assert response.content_type == "application/problem+json"


async def test_partners_may_not_trace(client: TestClient[Any, Any]) -> None:
    response = await client.get(f"/trace/{ITEMS[0]}", headers={"X-Test-Role": "partner"})
    assert response.status == 403


async def test_lot_view_lists_serials_with_status_and_custodian(
    client: TestClient[Any, Any],
) -> None:
    body = await (await client.get(f"/lots/{ITEM_GTIN}/L1", headers=AUDITOR)).json()
    rows = {row["identifier"]: row for row in body["serials"]}
    assert rows[ITEMS[0]]["status"] == "dispensed"
    assert rows[ITEMS[2]]["custodian"] == WHOLESALER
    # Item 2 was received at the pharmacy without a shipment to it: quarantined.
    assert rows[ITEMS[1]]["status"] == "quarantined"


async def test_recall_is_for_operators_and_answers_the_scope(
    client: TestClient[Any, Any],
) -> None:
    denied = await client.post("/recalls", json={"gtin": ITEM_GTIN, "lot": "L1"}, headers=AUDITOR)
    assert denied.status == 403
    bad = await client.post("/recalls", json={"gtin": ITEM_GTIN}, headers=OPERATOR)
    assert bad.status == 400
    response = await client.post(
        "/recalls", json={"gtin": ITEM_GTIN, "lot": "L1", "reason": "label"}, headers=OPERATOR
    )
    assert response.status == 201
    scope = await response.json()
    assert scope["identifiers"] == 4
    assert sum(c["packages"] for c in scope["custodians"]) == 3
    traced = await (await client.get(f"/trace/{ITEMS[2]}", headers=AUDITOR)).json()
    assert traced["status"] == "recalled"


async def test_exceptions_filter_and_resolution_history(client: TestClient[Any, Any]) -> None:
    listed = await client.get(
        "/exceptions",
        params={"type": "received_not_shipped_to_us", "status": "open", "identifier": ITEMS[1]},
        headers=AUDITOR,
    )
    records = (await listed.json())["exceptions"]
    assert [r["type"] for r in records] == ["received_not_shipped_to_us"]
    assert records[0]["hold"] == "quarantined"
    path = f"/exceptions/{records[0]['exception_id']}/resolution"
    for note in ("carrier mix-up", "returned to wholesaler"):
        resolved = await client.post(path, json={"note": note}, headers=OPERATOR)
        assert resolved.status == 201
    body = await resolved.json()
    assert [r["note"] for r in body["resolutions"]] == ["carrier mix-up", "returned to wholesaler"]
    assert body["status"] == "resolved"
    lot = await (await client.get(f"/lots/{ITEM_GTIN}/L1", headers=AUDITOR)).json()
    assert {r["identifier"]: r["status"] for r in lot["serials"]}[ITEMS[1]] == "received"
    empty = await client.post(path, json={"note": " "}, headers=OPERATOR)
    assert empty.status == 400
    missing = await client.post("/exceptions/nope/resolution", json={"note": "x"}, headers=OPERATOR)
    assert missing.status == 404
    bad_type = await client.get("/exceptions", params={"type": "nope"}, headers=AUDITOR)
    assert bad_type.status == 400
