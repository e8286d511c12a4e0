"""Trading partners tracing through the app's own bearer-token authentication."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from aiohttp.test_utils import TestClient
from pytest_aiohttp import AiohttpClient

from tests.web.site import PACK, PACK_GTIN, build_app, capture_scenario, issue_token, site_settings

Client = TestClient[Any, Any]
DISTRIBUTOR_GLN = "0399999999991"  # GS1 Drug Distributor, the scenario's wholesaler


async def test_partner_tokens_open_their_own_view_of_trace_and_lot(
    aiohttp_client: AiohttpClient, tmp_path: Path
) -> None:
    settings = site_settings(tmp_path)
    client: Client = await aiohttp_client(build_app(settings))
    operator = settings.operator_token_path.read_text().strip()
    await capture_scenario(str(client.make_url("")), operator)
    distributor = await issue_token(client.app, "GS1 Drug Distributor", DISTRIBUTOR_GLN, "partner")
    stranger = await issue_token(client.app, "Someone", "0312345000006", "partner")

    def bearer(token: str) -> dict[str, str]:
        return {"Authorization": f"Bearer {token}"}

    full = await client.get(f"/trace/{PACK}.1002", headers=bearer(operator))
    assert full.status == 200
    mine = await client.get(f"/trace/{PACK}.1002", headers=bearer(distributor))
    assert mine.status == 200
    body = await mine.json()
    assert body["view"] == "partner"
    assert 0 < len(body["events"]) < len((await full.json())["events"])
    assert any(c["buyer"]["id"].endswith("039999.999999.0") for c in body["ownership_changes"])
    assert (await client.get(f"/trace/{PACK}.1002", headers=bearer(stranger))).status == 404
    lot = await client.get(f"/lots/{PACK_GTIN}/LOT2026A", headers=bearer(stranger))
    assert (lot.status, (await lot.json())["serials"]) == (200, [])
