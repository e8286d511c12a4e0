"""POST /capture, capture jobs and POST /events against the real SQLite store."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from typing import Any

from pytest_aiohttp import AiohttpClient

from service.app import create_app, open_store
from service.handlers.capture import capture_job_json
from service.settings import Settings
from service.state import SETTINGS, STORE
from tests.service.conftest import PARTNER_FIXTURES, Client, capture, wait_for_job

BAD_EVENT_DOCUMENT = (PARTNER_FIXTURES / "shipment_with_bad_event.xml").read_bytes()
SINGLE_EVENT = (PARTNER_FIXTURES / "single_event.jsonld").read_bytes()


async def test_capture_returns_202_and_a_successful_job(
    client: Client, manufacturer: dict[str, str], pharma_example: bytes
) -> None:
    response = await client.post("/capture", data=pharma_example, headers=manufacturer)
    assert response.status == 202
    assert response.headers["Location"].startswith("/capture/")
    assert int(response.headers["GS1-EPCIS-Capture-File-Size-Limit"]) == 256 * 1024
    assert int(response.headers["GS1-EPCIS-Capture-Limit"]) > 0
    job = await wait_for_job(client, response.headers["Location"], manufacturer)
    assert job["success"] is True
    assert job["captureErrorBehaviour"] == "rollback"
    assert job["errors"] == []
    assert (job["captured"], job["duplicates"]) == (7, 0)
    assert job["finishedAt"] >= job["createdAt"]
    assert await client.app[STORE].count_events() == 7


async def test_the_same_document_twice_changes_nothing(
    client: Client, operator: dict[str, str], pharma_example: bytes
) -> None:
    await capture(client, pharma_example, operator)
    again = await capture(client, pharma_example, operator)
    assert again["success"] is True
    assert (again["captured"], again["duplicates"]) == (0, 7)
    assert await client.app[STORE].count_events() == 7


async def test_concurrent_captures_of_one_document_store_each_event_once(
    client: Client, operator: dict[str, str], pharma_example: bytes
) -> None:
    jobs = await asyncio.gather(*(capture(client, pharma_example, operator) for _ in range(4)))
    assert all(job["success"] for job in jobs)
    assert sum(job["captured"] for job in jobs) == 7
    assert sum(job["duplicates"] for job in jobs) == 21
    assert await client.app[STORE].count_events() == 7


async def test_rollback_stores_nothing_of_a_document_with_a_bad_event(
    client: Client, manufacturer: dict[str, str]
) -> None:
    job = await capture(client, BAD_EVENT_DOCUMENT, manufacturer)
    assert job["success"] is False
    assert job["captured"] == 0
    assert job["errors"][0]["type"] == "epcisException:ValidationException"
    assert job["errors"][0]["status"] == 400
    assert await client.app[STORE].count_events() == 0


async def test_proceed_stores_the_good_events_and_reports_the_bad_one(
    client: Client, manufacturer: dict[str, str]
) -> None:
    job = await capture(
        client, BAD_EVENT_DOCUMENT, manufacturer, **{"GS1-Capture-Error-Behaviour": "proceed"}
    )
    assert job["captureErrorBehaviour"] == "proceed"
    assert job["success"] is False
    assert job["captured"] == 2
    assert len(job["errors"]) == 1
    assert "sgtin" in job["errors"][0]["detail"].lower()
    assert await client.app[STORE].count_events() == 2


async def test_an_unknown_error_behaviour_is_refused(
    client: Client, operator: dict[str, str], pharma_example: bytes
) -> None:
    response = await client.post(
        "/capture",
        data=pharma_example,
        headers={**operator, "GS1-Capture-Error-Behaviour": "sometimes"},
    )
    assert response.status == 400


async def test_a_body_over_the_size_limit_is_413(client: Client, operator: dict[str, str]) -> None:
    body = b"<x>" + b" " * (300 * 1024) + b"</x>"
    response = await client.post("/capture", data=body, headers=operator)
    assert response.status == 413
    problem = await response.json()
    assert problem["type"] == "epcisException:CaptureLimitExceededException"


async def test_a_streamed_body_over_the_size_limit_is_413(
    client: Client, operator: dict[str, str]
) -> None:
    async def chunks() -> AsyncIterator[bytes]:
        for _ in range(40):
            yield b" " * 8192

    response = await client.post("/capture", data=chunks(), headers=operator)
    assert response.status == 413
    # Nothing is left behind in the spool directory.
    assert not list(client.app[SETTINGS].spool_dir.glob("*.part"))


async def test_hostile_xml_is_refused_with_a_problem(
    client: Client, operator: dict[str, str]
) -> None:
    hostile = (
        b'<?xml version="1.0"?>\n<!DOCTYPE lol [<!ENTITY lol "lol"><!ENTITY l2 "&lol;&lol;">]>\n'
        b'<epcis:EPCISDocument xmlns:epcis="urn:epcglobal:epcis:xsd:2">&l2;</epcis:EPCISDocument>'
    )
    response = await client.post("/capture", data=hostile, headers=operator)
    assert response.status == 400
    assert response.content_type == "application/problem+json"
    problem = await response.json()
    assert problem["type"] == "epcisException:ValidationException"
    assert "lol" not in problem["detail"]
    assert await client.app[STORE].count_events() == 0


async def test_garbage_is_415(client: Client, operator: dict[str, str]) -> None:
    response = await client.post("/capture", data=b"\x00\x01 not a document", headers=operator)
    assert response.status == 415
    assert (await response.json())["type"] == "epcisException:UnsupportedMediaTypeException"


async def test_a_schema_violation_points_at_the_line(
    client: Client, operator: dict[str, str]
) -> None:
    broken = BAD_EVENT_DOCUMENT.replace(b"<action>ADD</action>", b"<action>SOMETIMES</action>", 1)
    response = await client.post("/capture", data=broken, headers=operator)
    assert response.status == 400
    problem = await response.json()
    assert isinstance(problem["line"], int)
    assert problem["problems"]


async def test_capture_jobs_are_listed_newest_first_with_paging(
    client: Client, operator: dict[str, str], pharma_example: bytes
) -> None:
    for _ in range(3):
        await capture(client, pharma_example, operator)
    response = await client.get("/capture?perPage=2", headers=operator)
    first = await response.json()
    assert len(first) == 2
    assert 'rel="next"' in response.headers["Link"]
    next_url = response.headers["Link"].split(">")[0].lstrip("<")
    second = await (await client.get(next_url, headers=operator)).json()
    assert len(second) == 1
    assert {j["captureID"] for j in first}.isdisjoint(j["captureID"] for j in second)


async def test_unknown_capture_job_is_404(client: Client, operator: dict[str, str]) -> None:
    response = await client.get("/capture/nope", headers=operator)
    assert response.status == 404


async def test_post_events_is_201_then_409(client: Client, manufacturer: dict[str, str]) -> None:
    headers = {**manufacturer, "Content-Type": "application/ld+json"}
    created = await client.post("/events", data=SINGLE_EVENT, headers=headers)
    assert created.status == 201, await created.text()
    location = created.headers["Location"]
    assert location.startswith("/events/ni%3A%2F%2F%2Fsha-256")
    fetched = await client.get(location, headers=manufacturer)
    assert fetched.status == 200
    events = (await fetched.json())["epcisBody"]["queryResults"]["resultsBody"]["eventList"]
    assert events[0]["epcList"] == json.loads(SINGLE_EVENT)["epcList"]
    again = await client.post("/events", data=SINGLE_EVENT, headers=headers)
    assert again.status == 409
    assert (await again.json())["type"] == "epcisException:ResourceAlreadyExistsException"


async def test_post_events_accepts_an_xml_event(client: Client, operator: dict[str, str]) -> None:
    event = (
        b'<?xml version="1.0"?><ObjectEvent><eventTime>2024-03-02T10:00:00Z</eventTime>'
        b"<eventTimeZoneOffset>+00:00</eventTimeZoneOffset><epcList>"
        b"<epc>urn:epc:id:sgtin:030001.0012345.7002</epc></epcList><action>OBSERVE</action>"
        b"</ObjectEvent>"
    )
    response = await client.post(
        "/events", data=event, headers={**operator, "Content-Type": "application/xml"}
    )
    assert response.status == 201, await response.text()
    assert await client.app[STORE].count_events() == 1


async def test_post_events_refuses_another_partners_event(
    client: Client, wholesaler: dict[str, str]
) -> None:
    response = await client.post("/events", data=SINGLE_EVENT, headers=wholesaler)
    assert response.status == 403


async def _reopened_store_state(settings: Settings, capture_id: str) -> tuple[dict[str, Any], int]:
    store = open_store(settings)
    await store.open()
    try:
        job = await store.get_capture_job(capture_id)
        assert job is not None
        return capture_job_json(job), await store.count_events()
    finally:
        await store.close()


async def test_shutdown_lets_a_running_capture_finish(
    client: Client, settings: Settings, operator: dict[str, str], pharma_example: bytes
) -> None:
    response = await client.post("/capture", data=pharma_example, headers=operator)
    capture_id = response.headers["Location"].rsplit("/", 1)[1]
    await client.close()
    job, count = await _reopened_store_state(settings, capture_id)
    assert (job["running"], job["success"], count) == (False, True, 7)


async def test_shutdown_without_grace_rolls_a_capture_back_whole(
    aiohttp_client: AiohttpClient, settings: Settings, pharma_example: bytes
) -> None:
    impatient = settings.model_copy(update={"shutdown_timeout": 0.0})
    client = await aiohttp_client(create_app(impatient))
    token = impatient.operator_token_path.read_text().strip()
    response = await client.post(
        "/capture", data=pharma_example, headers={"Authorization": f"Bearer {token}"}
    )
    capture_id = response.headers["Location"].rsplit("/", 1)[1]
    await client.close()
    job, count = await _reopened_store_state(impatient, capture_id)
    assert job["running"] is False
    # Never half-written: either the capture had finished, or nothing of it is stored.
    assert (job["success"], count) in {(True, 7), (False, 0)}
