"""The Trace page for trading partners, over HTTP without a browser: the same view as
``GET /trace`` and ``GET /lots`` give the same token, and the same "not found" for what is
not theirs as for an unknown identifier."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pytest
from aiohttp.test_utils import TestClient
from pytest_aiohttp import AiohttpClient

from service.settings import Settings
from tests.web.site import (
    CASE,
    PACK,
    PACK_GTIN,
    build_app,
    capture_scenario,
    issue_token,
    site_settings,
)

Client = TestClient[Any, Any]
PHARMACY_GLN = "0388888888881"  # Corner Pharmacy, urn:epc:id:sgln:038888.888888.0
DISTRIBUTOR_GLN = "0399999999991"  # GS1 Drug Distributor, urn:epc:id:sgln:039999.999999.0
STRANGER_GLN = "0312345000006"  # in none of the scenario's events
PALLET_SSCC = "103000100000001019"  # urn:epc:id:sscc:030001.10000000101, as 18 digits


@pytest.fixture
def settings(tmp_path: Path) -> Settings:
    return site_settings(tmp_path)


@pytest.fixture
async def client(aiohttp_client: AiohttpClient, settings: Settings) -> Client:
    client = await aiohttp_client(build_app(settings))
    await capture_scenario(str(client.make_url("")), _operator_token(settings))
    return client


def _operator_token(settings: Settings) -> str:
    return settings.operator_token_path.read_text().strip()


def _csrf(html: str) -> str:
    found = re.search(r'name="csrf" value="([^"]+)"', html)
    assert found, "no CSRF field in the page"
    return found.group(1)


async def _sign_in(client: Client, token: str) -> None:
    client.session.cookie_jar.clear()
    page = await client.get("/ui/sign-in")
    response = await client.post(
        "/ui/sign-in",
        data={"csrf": _csrf(await page.text()), "token": token, "next": ""},
        allow_redirects=False,
    )
    assert response.status == 303, await response.text()


async def _partner(client: Client, name: str, gln: str) -> str:
    token = await issue_token(client.app, name, gln, "partner")
    await _sign_in(client, token)
    return token


async def _page(client: Client, q: str) -> tuple[int, str]:
    response = await client.get("/ui/trace", params={"q": q})
    return response.status, await response.text()


async def _json(client: Client, path: str, token: str) -> Any:
    response = await client.get(path, headers={"Authorization": f"Bearer {token}"})
    assert response.status == 200, await response.text()
    return await response.json()


def _timeline(html: str) -> list[str]:
    """The timeline entries' times as the page writes them (machine-readable attribute)."""
    section = html.split('id="timeline-title"', 1)[1]
    return re.findall(r'<div class="when"><time datetime="([^"]+)"', section)


def _lot_serials(html: str) -> list[str]:
    section = html.split('id="lot-title"', 1)[1]
    return re.findall(r"<td><a href=\"[^\"]+\"><code>([^<]+)</code></a></td>", section)


def _navigation(html: str) -> list[str]:
    nav = html.split('<nav aria-label="Main">', 1)[1].split("</nav>", 1)[0]
    return re.findall(r">([A-Za-z]+)</a>", nav)


async def test_partners_have_the_trace_page_in_their_navigation(client: Client) -> None:
    await _partner(client, "Corner Pharmacy", PHARMACY_GLN)
    home = await client.get("/ui/verify")
    assert _navigation(await home.text()) == ["Verify", "Trace"]
    page = await client.get("/ui/trace")
    assert page.status == 200
    assert 'aria-current="page">Trace<' in await page.text()
    # Still no operator pages.
    assert (await client.get("/ui/exceptions")).status == 403
    assert (await client.get("/ui/")).status == 403


async def test_a_pharmacy_sees_its_shipment_and_not_the_manufacturers(client: Client) -> None:
    token = await _partner(client, "Corner Pharmacy", PHARMACY_GLN)
    status, html = await _page(client, f"{PACK}.1002")
    assert status == 200
    assert 'id="partner-view"' in html
    # Its own purchase from the distributor, with the transaction information.
    assert "PO-7781" in html
    assert "DEL-W-5531" in html
    assert "GS1 Drug Distributor" in html
    # Not the manufacturer's sale to the distributor, nor the events at the plant.
    assert "PO-2026-0042" not in html
    assert "DEL-2026-0101" not in html
    assert "Commissioned" not in html
    # Exactly the events GET /trace gives the same token.
    body = await _json(client, f"/trace/{PACK}.1002", token)
    assert body["view"] == "partner"
    assert _timeline(html) == [e["event_time"] for e in body["events"]]
    assert len(_timeline(html)) == 3


async def test_a_distributor_sees_both_of_its_shipments_and_no_holds(client: Client) -> None:
    token = await _partner(client, "GS1 Drug Distributor", DISTRIBUTOR_GLN)
    status, html = await _page(client, f"{PACK}.1002")
    assert status == 200
    assert "PO-2026-0042" in html
    assert "PO-7781" in html
    # The pharmacy has the pack now: no custody of another partner on the distributor's page.
    facts = html.split('id="state-title"', 1)[1].split("</dl>", 1)[0]
    assert "038888.888888.0" not in facts
    assert "Not packed in anything now" not in facts
    body = await _json(client, f"/trace/{PACK}.1002", token)
    assert _timeline(html) == [e["event_time"] for e in body["events"]]
    # Case 2002 has an open exception (received where it was never shipped): the operator's
    # page lists it, a partner's does not, and has no "Ever held" contents either.
    status, html = await _page(client, f"{CASE}.2002")
    assert status == 200
    assert 'id="exc-title"' not in html
    assert "Open in the queue" not in html
    assert "Ever held" not in html
    # The pallet by its 18-digit SSCC.
    status, html = await _page(client, PALLET_SSCC)
    assert status == 200
    assert "urn:epc:id:sscc:030001.10000000101" in html
    assert "PO-2026-0042" in html


async def test_what_is_not_theirs_is_the_same_not_found_as_unknown(client: Client) -> None:
    await _partner(client, "Someone Else", STRANGER_GLN)
    unknown_status, unknown = await _page(client, f"{PACK}.4040")
    assert unknown_status == 404
    assert "Nothing is recorded for this identifier" in unknown
    for identifier in (f"{PACK}.1002", f"{CASE}.2001"):
        status, html = await _page(client, identifier)
        assert status == 404
        assert html.replace(identifier, f"{PACK}.4040") == unknown
    # The pharmacy was never party to the pallet: not found for it, too.
    await _partner(client, "Corner Pharmacy", PHARMACY_GLN)
    status, html = await _page(client, PALLET_SSCC)
    assert status == 404
    assert "Nothing is recorded for this identifier" in html


async def test_a_lot_shows_a_partner_only_what_get_lots_gives_it(client: Client) -> None:
    lot_path = f"/lots/{PACK_GTIN}/LOT2026A"
    scan = f"(01){PACK_GTIN}(10)LOT2026A"
    token = await _partner(client, "GS1 Drug Distributor", DISTRIBUTOR_GLN)
    status, html = await _page(client, scan)
    assert status == 200
    expected = [row["identifier"] for row in (await _json(client, lot_path, token))["serials"]]
    assert _lot_serials(html) == sorted(expected)
    assert 0 < len(expected) < 8
    # Cases 2002's packs are the distributor's but with the pharmacy now: not its custodian.
    assert "038888.888888.0" not in html.split('id="lot-title"', 1)[1]
    stranger = await _partner(client, "Someone Else", STRANGER_GLN)
    status, html = await _page(client, scan)
    assert status == 200
    assert (await _json(client, lot_path, stranger))["serials"] == []
    assert _lot_serials(html) == []
    # Lot search by product code and lot gives the same.
    response = await client.get("/ui/trace", params={"gtin": PACK_GTIN, "lot": "LOT2026A"})
    assert _lot_serials(await response.text()) == []


async def test_operators_and_auditors_still_see_everything(
    client: Client, settings: Settings
) -> None:
    operator = _operator_token(settings)
    await _sign_in(client, operator)
    status, html = await _page(client, f"{PACK}.1002")
    assert status == 200
    assert 'id="partner-view"' not in html
    for shown in ("PO-2026-0042", "PO-7781", "Commissioned"):
        assert shown in html
    full = await _json(client, f"/trace/{PACK}.1002", operator)
    assert full["view"] == "full"
    assert _timeline(html) == [e["event_time"] for e in full["events"]]
    _, html = await _page(client, f"{CASE}.2002")
    assert 'id="exc-title"' in html
    _, html = await _page(client, f"(01){PACK_GTIN}(10)LOT2026A")
    assert len(_lot_serials(html)) == 8
    auditor = await issue_token(client.app, "Auditor", STRANGER_GLN, "auditor")
    await _sign_in(client, auditor)
    status, html = await _page(client, f"{PACK}.1002")
    assert status == 200
    assert _timeline(html) == [e["event_time"] for e in full["events"]]


async def test_the_partners_page_keeps_the_session_and_csrf_rules(client: Client) -> None:
    anonymous = await client.get("/ui/trace", params={"q": f"{PACK}.1002"}, allow_redirects=False)
    assert anonymous.status == 303
    assert anonymous.headers["Location"].startswith("/ui/sign-in?next=/ui/trace")
    await _partner(client, "Corner Pharmacy", PHARMACY_GLN)
    response = await client.get("/ui/trace", params={"q": f"{PACK}.1002"})
    assert "script-src 'self'" in response.headers["Content-Security-Policy"]
    html = await response.text()
    # Signing out without the session's CSRF token is refused and keeps the session.
    refused = await client.post("/ui/sign-out", data={"csrf": "forged"}, allow_redirects=False)
    assert refused.status == 403
    assert (await client.get("/ui/trace", allow_redirects=False)).status == 200
    signed_out = await client.post(
        "/ui/sign-out", data={"csrf": _csrf(html)}, allow_redirects=False
    )
    assert signed_out.status == 303
    assert (await client.get("/ui/trace", allow_redirects=False)).status == 303
