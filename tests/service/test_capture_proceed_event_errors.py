"""Proceed captures store every readable event when bad ones sit mid-document (issue 3).

With ``GS1-Capture-Error-Behaviour: proceed`` the EPCIS 2.0 REST binding stores the valid
events and reports each failed one. These documents pass the XSD yet hold events the model
cannot take (fixtures/epcis/bad-events); reading them with ``event_errors=True`` is what lets
the capture go on after a bad event.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from service.state import STORE
from tests.service.conftest import Client, capture

BAD_EVENTS = Path(__file__).parents[2] / "fixtures" / "epcis" / "bad-events"
PROCEED = {"GS1-Capture-Error-Behaviour": "proceed"}
JSONLD = {"Content-Type": "application/ld+json"}

# (file, extra headers, {position of each bad event: where its problem is})
_CASES = [
    ("mixed-1.2.xml", {}, {2: "body:35:", 4: "body:55:", 5: "body:67:", 7: "body:100:"}),
    ("mixed-2.0.xml", {}, {2: "body:30:", 4: "body:56:", 5: "body:66:"}),
    (
        "mixed.jsonld",
        JSONLD,
        {
            2: "/epcisBody/eventList/1/epcList",
            4: "/epcisBody/eventList/3/action",
            6: "/epcisBody/eventList/5/bizStep",
        },
    ),
]


@pytest.mark.parametrize(("name", "headers", "bad"), _CASES, ids=[case[0] for case in _CASES])
async def test_proceed_stores_the_good_events_around_the_bad_ones(
    client: Client,
    operator: dict[str, str],
    name: str,
    headers: dict[str, str],
    bad: dict[int, str],
) -> None:
    job = await capture(client, (BAD_EVENTS / name).read_bytes(), operator, **PROCEED, **headers)
    assert job["captureErrorBehaviour"] == "proceed"
    assert job["success"] is False
    assert job["captured"] == 4
    assert await client.app[STORE].count_events() == 4
    details = [error["detail"] for error in job["errors"]]
    assert len(details) == len(bad), details
    for detail, (position, where) in zip(details, sorted(bad.items()), strict=True):
        assert f"event {position}:" in detail
        assert where in detail
    assert all(error["type"] == "epcisException:ValidationException" for error in job["errors"])


async def test_proceed_stores_the_receiving_event_after_the_bad_ones(
    client: Client, operator: dict[str, str]
) -> None:
    await capture(client, (BAD_EVENTS / "mixed.jsonld").read_bytes(), operator, **PROCEED, **JSONLD)
    response = await client.get("/events?EQ_bizStep=receiving", headers=operator)
    assert response.status == 200
    body = await response.json()
    events = body["epcisBody"]["queryResults"]["resultsBody"]["eventList"]
    assert [event["epcList"] for event in events] == [["urn:epc:id:sgtin:030001.1012345.2001"]]


async def test_a_partner_may_proceed_without_an_sbdh(
    client: Client, manufacturer: dict[str, str]
) -> None:
    # The sender check reads every event's owning party: a bad event must not refuse the
    # document before the job exists (the shipping event names the manufacturer).
    job = await capture(
        client, (BAD_EVENTS / "mixed-1.2.xml").read_bytes(), manufacturer, **PROCEED
    )
    assert job["captured"] == 4
    assert len(job["errors"]) == 4


async def test_rollback_still_stores_nothing(client: Client, operator: dict[str, str]) -> None:
    job = await capture(client, (BAD_EVENTS / "mixed-2.0.xml").read_bytes(), operator)
    assert job["success"] is False
    assert job["captured"] == 0
    assert job["errors"]
    assert "event 2" in json.dumps(job["errors"][0]) or "ObjectEvent[2]" in json.dumps(
        job["errors"][0]
    )
    assert await client.app[STORE].count_events() == 0
