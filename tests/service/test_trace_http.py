"""Traceability HTTP endpoints on a small app with the real SQLite traceability store."""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

import pytest
from aiohttp import web
from aiohttp.test_utils import TestClient

from service.dscsa_checks import on_events_committed
from service.handlers.traceability import TRACEABILITY, Caller, traceability_routes
from service.partners import party_keys
from service.problems import problems_middleware
from service.sqlite_traceability_store import SQLiteTraceabilityStore
from tests.service.dscsa_scenario import (
    CASES,
    ITEM_GTIN,
    ITEMS,
    MANUFACTURER,
    PALLET,
    PHARMACY,
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


def _identify(request: web.Request) -> Caller:
    # A partner's identifiers as service.partners.add_partner derives them from its GLN.
    role = request.headers.get("X-Test-Role", "")
    gln = request.headers.get("X-Test-GLN")
    return Caller(f"{role}-1", role, frozenset(party_keys(gln)) if gln else frozenset())


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
    app.add_routes(traceability_routes(_authorize, _identify))
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


async def test_roles_other_than_readers_and_partners_may_not_trace(
    client: TestClient[Any, Any],
) -> None:
    for path in (f"/trace/{ITEMS[0]}", f"/lots/{ITEM_GTIN}/L1"):
        assert (await client.get(path, headers={"X-Test-Role": "robot"})).status == 403


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


async def _open_exception_of(client: TestClient[Any, Any], epc: str) -> str:
    listed = await client.get("/exceptions", params={"identifier": epc}, headers=AUDITOR)
    records = (await listed.json())["exceptions"]
    assert records
    return str(records[0]["exception_id"])


async def test_illegitimate_determination_is_final_and_shows_everywhere(
    client: TestClient[Any, Any],
) -> None:
    path = f"/exceptions/{await _open_exception_of(client, ITEMS[1])}/resolution"
    body = {"note": "counterfeit", "determination": "illegitimate", "form3911": 20260042}
    determined = await client.post(path, json=body, headers=OPERATOR)
    assert determined.status == 201
    record = await determined.json()
    assert (record["status"], record["hold"], record["determination"]) == (
        "resolved",
        "illegitimate",
        "illegitimate",
    )
    assert record["form3911"] == "20260042"
    assert record["resolutions"][0]["determination"] == "illegitimate"
    for refused in ({"note": "n", "determination": "cleared"}, {"note": "n", "status": "open"}):
        response = await client.post(path, json=refused, headers=OPERATOR)
        assert response.status == 409
        assert response.content_type == "application/problem+json"
    note = await client.post(path, json={"note": "destroyed", "form3911": "IN-7"}, headers=OPERATOR)
    assert note.status == 201
    assert ((await note.json())["hold"], (await note.json())["form3911"]) == (
        "illegitimate",
        "IN-7",
    )
    traced = await (await client.get(f"/trace/{ITEMS[1]}", headers=AUDITOR)).json()
    assert traced["status"] == "illegitimate"
    assert traced["holds"] == ["illegitimate"]
    lot = await (await client.get(f"/lots/{ITEM_GTIN}/L1", headers=AUDITOR)).json()
    assert {r["identifier"]: r["status"] for r in lot["serials"]}[ITEMS[1]] == "illegitimate"
    only = await client.get(
        "/exceptions", params={"determination": "illegitimate"}, headers=AUDITOR
    )
    assert [r["exception_id"] for r in (await only.json())["exceptions"]] == [
        record["exception_id"]
    ]


async def test_cleared_determination_releases_the_hold(client: TestClient[Any, Any]) -> None:
    path = f"/exceptions/{await _open_exception_of(client, ITEMS[1])}/resolution"
    cleared = await client.post(
        path, json={"note": "carrier mix-up", "determination": "cleared"}, headers=OPERATOR
    )
    assert cleared.status == 201
    assert ((await cleared.json())["hold"], (await cleared.json())["determination"]) == (
        "none",
        "cleared",
    )
    traced = await (await client.get(f"/trace/{ITEMS[1]}", headers=AUDITOR)).json()
    assert (traced["status"], traced["holds"]) == ("received", [])


@pytest.mark.parametrize(
    ("body", "status"),
    [
        ({"note": "n", "determination": "fake"}, 400),
        ({"note": "n", "determination": "cleared", "status": "open"}, 400),
        ({"note": "n", "status": "closed"}, 400),
        ({"note": "n", "determination": "illegitimate", "form3911": ""}, 400),
        ({"note": "n", "determination": "illegitimate", "form3911": True}, 400),
        ({"note": "n", "form3911": "IN-1"}, 409),
    ],
)
async def test_malformed_or_refused_resolutions(
    client: TestClient[Any, Any], body: dict[str, Any], status: int
) -> None:
    path = f"/exceptions/{await _open_exception_of(client, ITEMS[1])}/resolution"
    response = await client.post(path, json=body, headers=OPERATOR)
    assert response.status == status
    after = await client.get("/exceptions", params={"identifier": ITEMS[1]}, headers=AUDITOR)
    assert (await after.json())["exceptions"][0]["resolutions"] == []


async def test_trace_shows_the_recall_records(client: TestClient[Any, Any]) -> None:
    plain = await (await client.get(f"/trace/{ITEMS[2]}", headers=AUDITOR)).json()
    assert plain["recalls"] == []
    await client.post(
        "/recalls", json={"gtin": ITEM_GTIN, "lot": "L1", "reason": "label"}, headers=OPERATOR
    )
    await client.post(
        "/recalls", json={"serials": [CASES[1]], "reason": "damaged seal"}, headers=OPERATOR
    )
    traced = await (await client.get(f"/trace/{ITEMS[2]}", headers=AUDITOR)).json()
    recalls = traced["recalls"]
    assert [(r["reason"], r["scope"], r["created_by"]) for r in recalls] == [
        ("label", "lot", "operator-1"),
        ("damaged seal", "serials", "operator-1"),
    ]
    assert (recalls[0]["gtin"], recalls[0]["lot"]) == (ITEM_GTIN, "L1")
    assert recalls[0]["created_at"] <= recalls[1]["created_at"]
    assert traced["view"] == "full"
    other = await (await client.get(f"/trace/{ITEMS[0]}", headers=AUDITOR)).json()
    assert [r["reason"] for r in other["recalls"]] == ["label"]


def _partner(sgln: str) -> dict[str, str]:
    """Headers of a trading partner registered with the GLN of ``sgln`` (extension 0)."""
    (key,) = party_keys(sgln)
    return {"X-Test-Role": "partner", "X-Test-GLN": key.rsplit("/", 1)[1]}


def _steps(body: dict[str, Any]) -> list[tuple[str, bool]]:
    return [(e["biz_step"], e["inferred"]) for e in body["events"]]


async def test_a_partner_sees_only_the_events_it_is_party_to(
    client: TestClient[Any, Any],
) -> None:
    full = await (await client.get(f"/trace/{ITEMS[0]}", headers=AUDITOR)).json()
    response = await client.get(f"/trace/{ITEMS[0]}", headers=_partner(WHOLESALER))
    assert response.status == 200
    body = await response.json()
    assert body["view"] == "partner"
    # Bought on the pallet (through case and pallet), sold on alone; not the manufacturer's
    # packing, its own unpacking (no party named) or the pharmacy's dispensing.
    assert _steps(body) == [
        ("shipping", True),
        ("receiving", True),
        ("shipping", False),
        ("receiving", False),
    ]
    assert len(full["events"]) > len(body["events"])
    assert body["events"][0]["via"] == [CASES[0], PALLET]
    sellers = [c["seller"]["name"] for c in body["ownership_changes"]]
    assert sellers == ["GS1 Pharma", "GS1 Drug Distributor"]
    assert body["status"] == "dispensed"
    assert body["holds"] == []


async def test_a_partner_sees_its_own_custody_but_not_anothers(
    client: TestClient[Any, Any],
) -> None:
    pharmacy = await (await client.get(f"/trace/{ITEMS[0]}", headers=_partner(PHARMACY))).json()
    assert _steps(pharmacy) == [("shipping", False), ("receiving", False), ("dispensing", False)]
    assert [c["buyer"]["name"] for c in pharmacy["ownership_changes"]] == ["Corner Pharmacy"]
    state = pharmacy["state"]
    assert (state["owner"], state["custodian"], state["location"]) == (PHARMACY,) * 3
    assert (state["commissioner"], state["last_event"], state["parent"]) == (None, None, None)
    # The manufacturer sold it: it sees its sale, not who holds the package now.
    maker = await (await client.get(f"/trace/{ITEMS[3]}", headers=_partner(MANUFACTURER))).json()
    assert _steps(maker) == [("commissioning", False), ("shipping", True), ("receiving", True)]
    assert (maker["state"]["owner"], maker["state"]["custodian"]) == (None, None)
    assert maker["state"]["parent"] is None
    assert (maker["state"]["lot"], maker["state"]["expiry"]) == ("L1", "2027-06-30")
    # The wholesaler holds it, in case 2: its own custody and the case are shown.
    held = await (await client.get(f"/trace/{ITEMS[3]}", headers=_partner(WHOLESALER))).json()
    assert (held["state"]["custodian"], held["state"]["parent"]) == (WHOLESALER, CASES[1])


async def test_an_identifier_a_partner_is_no_party_to_is_not_found(
    client: TestClient[Any, Any],
) -> None:
    headers = _partner(PHARMACY)
    unknown = "urn:epc:id:sgtin:030001.0012345.404"
    for epc in (ITEMS[3], unknown):
        response = await client.get(f"/trace/{epc}", headers=headers)
        assert response.status == 404
        problem = await response.json()
        assert problem["type"] == "epcisException:NoSuchResourceException"
        assert problem["detail"] == f"no event names {epc}"
    stranger = {"X-Test-Role": "partner", "X-Test-GLN": "0312345000006"}
    assert (await client.get(f"/trace/{ITEMS[0]}", headers=stranger)).status == 404
    nobody = {"X-Test-Role": "partner"}
    assert (await client.get(f"/trace/{ITEMS[0]}", headers=nobody)).status == 404


async def test_a_partner_sees_recalls_without_who_recorded_them(
    client: TestClient[Any, Any],
) -> None:
    await client.post(
        "/recalls", json={"gtin": ITEM_GTIN, "lot": "L1", "reason": "label"}, headers=OPERATOR
    )
    body = await (await client.get(f"/trace/{ITEMS[3]}", headers=_partner(WHOLESALER))).json()
    assert body["status"] == "recalled"
    assert [(r["reason"], r["scope"], r["created_by"]) for r in body["recalls"]] == [
        ("label", "lot", None)
    ]


async def test_a_partner_sees_the_serials_of_a_lot_it_holds_now(
    client: TestClient[Any, Any],
) -> None:
    path = f"/lots/{ITEM_GTIN}/L1"
    wholesaler = await (await client.get(path, headers=_partner(WHOLESALER))).json()
    rows = {r["identifier"]: r for r in wholesaler["serials"]}
    # Items 3 and 4 are in its warehouse; items 1 and 2 went on to the pharmacy.
    assert set(rows) == {ITEMS[2], ITEMS[3]}
    assert rows[ITEMS[2]]["custodian"] == WHOLESALER
    pharmacy = await (await client.get(path, headers=_partner(PHARMACY))).json()
    statuses = {r["identifier"]: r["status"] for r in pharmacy["serials"]}
    assert statuses == {ITEMS[0]: "dispensed", ITEMS[1]: "quarantined"}
    maker = await (await client.get(path, headers=_partner(MANUFACTURER))).json()
    assert maker["serials"] == []
    everything = await (await client.get(path, headers=AUDITOR)).json()
    assert len(everything["serials"]) == 4
