"""The web pages over HTTP, without a browser: sessions, CSRF, each page's content."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pytest
from aiohttp import web
from aiohttp.test_utils import TestClient
from pytest_aiohttp import AiohttpClient

from service.handlers.verification import VERIFICATION
from service.lookup_directory import DirectoryEntry
from service.serial_state import gtin_of
from service.settings import Settings
from service.verification_log import LogFilter
from tests.web.site import PACK, PACK_GTIN, build_app, capture_scenario, issue_token, site_settings

Client = TestClient[Any, Any]


@pytest.fixture
def settings(tmp_path: Path) -> Settings:
    return site_settings(tmp_path)


@pytest.fixture
async def client(aiohttp_client: AiohttpClient, settings: Settings) -> Client:
    client = await aiohttp_client(build_app(settings))
    token = settings.operator_token_path.read_text().strip()
    await capture_scenario(str(client.make_url("")), token)
    return client


def _csrf(html: str) -> str:
    found = re.search(r'name="csrf" value="([^"]+)"', html)
    assert found, "no CSRF field in the page"
    return found.group(1)


async def sign_in(client: Client, token: str) -> None:
    page = await client.get("/ui/sign-in")
    response = await client.post(
        "/ui/sign-in",
        data={"csrf": _csrf(await page.text()), "token": token, "next": ""},
        allow_redirects=False,
    )
    assert response.status == 303, await response.text()


@pytest.fixture
async def operator(client: Client, settings: Settings) -> Client:
    await sign_in(client, settings.operator_token_path.read_text().strip())
    return client


async def test_pages_need_a_session(client: Client) -> None:
    response = await client.get("/ui/trace", allow_redirects=False)
    assert response.status == 303
    assert response.headers["Location"].startswith("/ui/sign-in?next=/ui/trace")


async def test_sign_in_cookie_is_httponly_strict_and_holds_no_token(
    client: Client, settings: Settings
) -> None:
    token = settings.operator_token_path.read_text().strip()
    page = await client.get("/ui/sign-in")
    response = await client.post(
        "/ui/sign-in",
        data={"csrf": _csrf(await page.text()), "token": token},
        allow_redirects=False,
    )
    cookie = response.headers["Set-Cookie"]
    assert "HttpOnly" in cookie
    assert "SameSite=Strict" in cookie
    assert "Secure" not in cookie  # plain HTTP in the test
    assert token not in cookie
    assert response.headers["Location"] == "/ui/"


async def test_sign_in_without_the_forms_csrf_token_is_refused(
    client: Client, settings: Settings
) -> None:
    await client.get("/ui/sign-in")
    response = await client.post(
        "/ui/sign-in",
        data={"csrf": "forged", "token": settings.operator_token_path.read_text().strip()},
        allow_redirects=False,
    )
    assert response.status == 403
    assert (await client.get("/ui/", allow_redirects=False)).status == 303


async def test_unknown_token_is_refused(client: Client) -> None:
    page = await client.get("/ui/sign-in")
    response = await client.post(
        "/ui/sign-in", data={"csrf": _csrf(await page.text()), "token": "nope"}
    )
    assert response.status == 401
    assert "not known or has been revoked" in await response.text()


async def test_a_tampered_cookie_is_no_session(operator: Client) -> None:
    cookie = operator.session.cookie_jar.filter_cookies(operator.make_url("/ui/"))
    value = cookie["dscsa_session"].value
    operator.session.cookie_jar.clear()
    body, _, signature = value.partition(".")
    forged = body.replace(body[5], "A" if body[5] != "A" else "B", 1) + "." + signature
    for cookie_value in (value, forged):
        response = await operator.get(
            "/ui/", headers={"Cookie": f"dscsa_session={cookie_value}"}, allow_redirects=False
        )
        assert response.status == (200 if cookie_value == value else 303)


async def test_dashboard_counts(operator: Client) -> None:
    html = await (await operator.get("/ui/")).text()
    assert re.search(r'id="count-exceptions">\s*[1-9]', html)
    assert "Received but not shipped to us" in html
    assert "<svg" in html
    assert 'class="bar events"' in html


async def test_verify_our_pack_in_parentheses_form(operator: Client) -> None:
    page = await operator.get("/ui/verify")
    scan = f"(01){PACK_GTIN}(21)1002(10)LOT2026A(17)280331"
    html = await (
        await operator.post("/ui/verify", data={"csrf": _csrf(await page.text()), "scan": scan})
    ).text()
    assert "Verified" in html
    assert "Not verified" not in html
    assert "Epcistra" in html
    assert "100mg" in html
    assert "2028-03-31" in html


async def test_verify_a_dispensed_pack_with_group_separators(operator: Client) -> None:
    page = await operator.get("/ui/verify")
    scan = f"]d201{PACK_GTIN}1728033110LOT2026A\x1d211001"
    html = await (
        await operator.post("/ui/verify", data={"csrf": _csrf(await page.text()), "scan": scan})
    ).text()
    assert "Not verified" in html
    assert "dispensed, decommissioned or destroyed" in html


async def test_verify_a_wrong_lot_says_so(operator: Client) -> None:
    page = await operator.get("/ui/verify")
    scan = f"https://id.gs1.org/01/{PACK_GTIN}/10/LOT9/21/1003?17=280331"
    html = await (
        await operator.post("/ui/verify", data={"csrf": _csrf(await page.text()), "scan": scan})
    ).text()
    assert "Not verified" in html
    assert "lot number on the package is not" in html


async def test_verify_a_scan_without_serial_explains(operator: Client) -> None:
    page = await operator.get("/ui/verify")
    response = await operator.post(
        "/ui/verify",
        data={"csrf": _csrf(await page.text()), "scan": f"(01){PACK_GTIN}(10)LOT2026A"},
    )
    assert response.status == 400
    assert "no serial number (21)" in await response.text()


async def test_verify_without_csrf_is_refused(operator: Client) -> None:
    response = await operator.post("/ui/verify", data={"scan": "(01)1(21)1"})
    assert response.status == 403


async def test_trace_shows_owners_with_names_and_addresses(operator: Client) -> None:
    response = await operator.get("/ui/trace", params={"q": f"{PACK}.1002"})
    html = await response.text()
    assert response.status == 200
    assert "GS1 Drug Distributor" in html
    assert "Shipped" in html
    assert "Received" in html
    assert "PO-2026-0042" in html


async def test_trace_a_lot_from_a_scan_without_serial(operator: Client) -> None:
    response = await operator.get("/ui/trace", params={"q": f"(01){PACK_GTIN}(10)LOT2026A"})
    html = await response.text()
    assert "Lot LOT2026A" in html
    assert f"{PACK}.1008" in html


async def test_trace_unknown_is_a_404_page(operator: Client) -> None:
    response = await operator.get("/ui/trace", params={"q": f"{PACK}.4040"})
    assert response.status == 404
    assert "Nothing is recorded" in await response.text()


async def test_resolve_an_exception(operator: Client) -> None:
    html = await (await operator.get("/ui/exceptions")).text()
    found = re.search(r'action="/ui/exceptions/([0-9a-f]+)/resolution"', html)
    assert found
    response = await operator.post(
        f"/ui/exceptions/{found.group(1)}/resolution",
        data={"csrf": _csrf(html), "note": "case found at the pharmacy", "status": "resolved"},
        allow_redirects=False,
    )
    assert response.status == 303
    listing = await (await operator.get("/ui/exceptions", params={"status": "resolved"})).text()
    assert "case found at the pharmacy" in listing


async def test_an_illegitimate_determination_from_the_page_is_final(operator: Client) -> None:
    html = await (await operator.get("/ui/exceptions")).text()
    found = re.search(r'action="/ui/exceptions/([0-9a-f]+)/resolution"', html)
    assert found
    path = f"/ui/exceptions/{found.group(1)}/resolution"
    form = {"csrf": _csrf(html), "note": "counterfeit", "status": "resolved"}
    determined = {**form, "determination": "illegitimate", "form3911": "IN-5"}
    response = await operator.post(path, data=determined, allow_redirects=False)
    assert response.status == 303
    listing = await (await operator.get("/ui/exceptions", params={"status": "resolved"})).text()
    assert "Determined illegitimate · Form 3911 incident IN-5" in listing
    assert "Holds product: illegitimate" in listing
    refused = await operator.post(path, data={**form, "determination": "cleared"})
    assert refused.status == 409
    assert "determination is final" in await refused.text()


async def test_trace_page_shows_recalls_with_their_reason(
    operator: Client, settings: Settings
) -> None:
    token = settings.operator_token_path.read_text().strip()
    recalled = await operator.post(
        "/recalls",
        json={"serials": [f"{PACK}.1002"], "reason": "broken tamper seal"},
        headers={"Authorization": f"Bearer {token}"},
    )
    assert recalled.status == 201
    html = await (await operator.get("/ui/trace", params={"q": f"{PACK}.1002"})).text()
    assert "Recall of listed packages" in html
    assert "broken tamper seal" in html


async def test_a_partner_may_verify_and_trace_but_not_see_exceptions(client: Client) -> None:
    # What the partner sees on the Trace page is tested in tests/web/test_trace_page.py.
    token = await issue_token(client.app, "Corner Pharmacy", "0388888888888", "partner")
    await sign_in(client, token)
    assert (await client.get("/ui/verify")).status == 200
    assert (await client.get("/ui/trace")).status == 200
    response = await client.get("/ui/exceptions")
    assert response.status == 403
    assert "not open to that role" in await response.text()


async def test_pages_send_a_content_security_policy(operator: Client) -> None:
    response = await operator.get("/ui/exports")
    assert "script-src 'self'" in response.headers["Content-Security-Policy"]
    assert response.headers["X-Frame-Options"] == "DENY"


OTHER_GTIN = gtin_of("urn:epc:id:sgtin:0614141.012345.1") or ""


async def _other_manufacturer(request: web.Request) -> web.Response:
    # Another company's responder: every package of its GTIN verified, and under recall.
    return web.json_response(
        {
            "verificationTimestamp": "2026-11-27T10:00:00.000Z",
            "responderGLN": "0614141000005",
            "data": {"verified": True, "additionalInfo": "Recalled"},
            "corrUUID": request.query["corrUUID"],
        }
    )


async def test_others_products_are_asked_of_their_manufacturer(
    operator: Client, aiohttp_server: Any
) -> None:
    responder = web.Application()
    responder.router.add_get("/{tail:.+}", _other_manufacturer)
    server = await aiohttp_server(responder)
    entry = DirectoryEntry(
        key="0614141", responder_id="acme", base_url=str(server.make_url("/vrs"))
    )
    await operator.app[VERIFICATION].directory.put(entry)
    page = await operator.get("/ui/verify")
    scan = f"(01){OTHER_GTIN}(21)X1(10)L1(17)290101"
    html = await (
        await operator.post("/ui/verify", data={"csrf": _csrf(await page.text()), "scan": scan})
    ).text()
    assert 'class="verdict good"' in html
    assert "The product is under recall." in html
    assert "the manufacturer (0614141000005)" in html
    outbound = await operator.app[VERIFICATION].log.query(LogFilter(gtin=OTHER_GTIN))
    assert [e.verified for e in outbound] == [True]


async def test_others_products_without_a_known_responder_are_not_verified(
    operator: Client,
) -> None:
    page = await operator.get("/ui/verify")
    scan = f"(01){OTHER_GTIN}(21)X2(10)L1(17)290101"
    html = await (
        await operator.post("/ui/verify", data={"csrf": _csrf(await page.text()), "scan": scan})
    ).text()
    assert "Could not be verified" in html
    assert "No verification service is known" in html


async def test_unknown_pages_are_an_html_404(operator: Client) -> None:
    response = await operator.get("/ui/no-such-page")
    assert response.status == 404
    assert response.content_type == "text/html"
    assert "There is no such page" in await response.text()
    assert (await operator.get("/ui/static/app.css")).status == 200
