"""``/exports`` on the real app (create_app) over real SQLite stores."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import pytest
from pytest_aiohttp import AiohttpClient

from service.app import create_app
from service.export_verification import verify_bundle
from service.partners import add_partner
from service.settings import Settings
from service.state import STORE
from tests.service.conftest import Client, bearer, capture
from tests.service.export_fixtures import PHARMA_EXAMPLE

LOT_REQUEST = {
    "requester_kind": "state",
    "requester": "California Board of Pharmacy",
    "reason": "Suspect product investigation",
    "incident_number": "3911-77",
    "scope": {"kind": "lot", "gtin": "00300010123455", "lot": "LOT2026A"},
}


@pytest.fixture
async def app_client(aiohttp_client: AiohttpClient, settings: Settings) -> Client:
    # create_app wires the export routes, the export store and the capture hooks that
    # project each capture and append its ledger leaves.
    return await aiohttp_client(create_app(settings))


@pytest.fixture
def operator_headers(app_client: Client, settings: Settings) -> dict[str, str]:
    return bearer(settings.operator_token_path.read_text().strip())


async def _captured(client: Client, headers: dict[str, str]) -> None:
    job = await capture(client, PHARMA_EXAMPLE.read_bytes(), headers)
    assert job["success"], job


async def _ready(client: Client, location: str, headers: dict[str, str]) -> dict[str, Any]:
    for _ in range(300):
        body: dict[str, Any] = await (await client.get(location, headers=headers)).json()
        if body["status"] in ("ready", "failed"):
            return body
        await asyncio.sleep(0.02)
    raise AssertionError(f"export {location} never finished")


async def test_export_request_builds_a_verifiable_bundle(
    app_client: Client, operator_headers: dict[str, str], tmp_path: Path
) -> None:
    await _captured(app_client, operator_headers)
    response = await app_client.post("/exports", json=LOT_REQUEST, headers=operator_headers)
    assert response.status == 202, await response.text()
    location = response.headers["Location"]
    accepted = await response.json()
    assert accepted["due_at"] > accepted["created_at"]
    done = await _ready(app_client, location, operator_headers)
    assert done["status"] == "ready", done
    assert done["summary"]["identifiers"] == 8
    listed = await (await app_client.get("/exports", headers=operator_headers)).json()
    assert [e["export_id"] for e in listed["exports"]] == [done["export_id"]]
    assert listed["exports"][0]["due_at"] == done["due_at"]
    bundle = await app_client.get(done["bundle"], headers=operator_headers)
    assert bundle.status == 200
    assert bundle.content_type == "application/zip"
    path = tmp_path / "downloaded.zip"
    path.write_bytes(await bundle.read())
    report = verify_bundle(path)
    assert report.ok, report.failures()


async def test_partners_may_not_request_or_read_exports(
    app_client: Client, operator_headers: dict[str, str]
) -> None:
    issued = await add_partner(app_client.app[STORE], "Wholesaler", "0399999999991", "partner")
    partner = bearer(issued.token)
    assert (await app_client.post("/exports", json=LOT_REQUEST, headers=partner)).status == 403
    assert (await app_client.get("/exports", headers=partner)).status == 403


async def test_auditors_may_request_and_bad_requests_are_problems(
    app_client: Client, operator_headers: dict[str, str]
) -> None:
    issued = await add_partner(app_client.app[STORE], "Auditor", "0614141000005", "auditor")
    auditor = bearer(issued.token)
    bad = await app_client.post(
        "/exports", json={**LOT_REQUEST, "scope": {"kind": "lot"}}, headers=auditor
    )
    assert bad.status == 400
    assert bad.content_type == "application/problem+json"
    missing = await app_client.get("/exports/0123abcd", headers=auditor)
    assert missing.status == 404
    accepted = await app_client.post("/exports", json=LOT_REQUEST, headers=auditor)
    assert accepted.status == 202
