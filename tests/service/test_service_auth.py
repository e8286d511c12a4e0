"""Bearer tokens, roles, sender checks and partner visibility, through HTTP."""

from __future__ import annotations

from service.partners import hash_token, party_keys
from service.state import STORE
from tests.service.conftest import (
    MANUFACTURER_GLN,
    Client,
    bearer,
    capture,
)


async def test_every_endpoint_but_health_needs_a_token(client: Client) -> None:
    for method, path in [
        ("GET", "/events"),
        ("GET", "/capture"),
        ("POST", "/capture"),
        ("GET", "/openapi.yaml"),
        ("GET", "/events/x"),
    ]:
        response = await client.request(method, path)
        assert response.status == 401, path
        assert response.content_type == "application/problem+json"
        assert (await response.json())["type"] == "epcisException:SecurityException"
        assert response.headers["WWW-Authenticate"].startswith("Bearer")


async def test_an_unknown_token_is_refused(client: Client) -> None:
    response = await client.get("/events", headers=bearer("not-a-token"))
    assert response.status == 401


async def test_tokens_are_stored_only_as_hashes(
    client: Client, manufacturer: dict[str, str]
) -> None:
    token = manufacturer["Authorization"].removeprefix("Bearer ")
    partners = await client.app[STORE].list_partners()
    record = next(p for p in partners if p.gln == MANUFACTURER_GLN)
    assert record.token_hash == hash_token(token)
    assert token not in repr(record)


async def test_a_revoked_token_stops_working(client: Client, manufacturer: dict[str, str]) -> None:
    from datetime import UTC, datetime

    assert (await client.get("/events", headers=manufacturer)).status == 200
    store = client.app[STORE]
    record = next(p for p in await store.list_partners() if p.gln == MANUFACTURER_GLN)
    assert await store.revoke_partner(record.partner_id, datetime.now(UTC))
    assert (await client.get("/events", headers=manufacturer)).status == 401


def test_gln_and_sgln_forms_share_a_match_key() -> None:
    assert party_keys("urn:epc:id:sgln:030001.111111.0") & party_keys(MANUFACTURER_GLN)
    assert not party_keys("urn:epc:id:sgln:039999.999999.0") & party_keys(MANUFACTURER_GLN)


async def test_a_partner_may_not_capture_another_senders_document(
    client: Client, wholesaler: dict[str, str], pharma_example: bytes
) -> None:
    response = await client.post("/capture", data=pharma_example, headers=wholesaler)
    assert response.status == 403
    assert (await response.json())["type"] == "epcisException:SecurityException"
    assert await client.app[STORE].count_events() == 0


async def test_an_auditor_reads_but_may_not_capture(
    client: Client, auditor: dict[str, str], pharma_example: bytes
) -> None:
    assert (await client.post("/capture", data=pharma_example, headers=auditor)).status == 403
    assert (await client.get("/events", headers=auditor)).status == 200


async def _event_count(client: Client, headers: dict[str, str]) -> int:
    response = await client.get("/events?perPage=100", headers=headers)
    assert response.status == 200
    body = await response.json()
    return len(body["epcisBody"]["queryResults"]["resultsBody"]["eventList"])


async def test_partners_see_their_own_documents_and_events_naming_them(
    client: Client,
    manufacturer: dict[str, str],
    wholesaler: dict[str, str],
    stranger: dict[str, str],
    operator: dict[str, str],
    pharma_example: bytes,
) -> None:
    job = await capture(client, pharma_example, manufacturer)
    assert job["success"], job
    assert await _event_count(client, manufacturer) == 7  # it sent the document
    assert await _event_count(client, wholesaler) == 1  # only the shipment names it
    assert await _event_count(client, stranger) == 0
    assert await _event_count(client, operator) == 7


async def test_a_partner_sees_only_its_own_capture_jobs(
    client: Client, manufacturer: dict[str, str], stranger: dict[str, str], pharma_example: bytes
) -> None:
    response = await client.post("/capture", data=pharma_example, headers=manufacturer)
    location = response.headers["Location"]
    assert (await client.get(location, headers=stranger)).status == 404
    assert await (await client.get("/capture", headers=stranger)).json() == []
