"""GET /events, /events/{eventID} and /epcs/{epc}/events over the project's DSCSA shipment."""

from __future__ import annotations

from typing import Any
from urllib.parse import quote

import pytest
from lxml import etree

from tests.service.conftest import Client, capture

QUERY_NS = "urn:epcglobal:epcis-query:xsd:2"


@pytest.fixture
async def captured(
    client: Client, operator: dict[str, str], pharma_example: bytes
) -> dict[str, str]:
    job = await capture(client, pharma_example, operator)
    assert job["success"], job
    return operator


def _events(body: dict[str, Any]) -> list[dict[str, Any]]:
    assert body["type"] == "EPCISQueryDocument"
    events: list[dict[str, Any]] = body["epcisBody"]["queryResults"]["resultsBody"]["eventList"]
    return events


async def _query(client: Client, headers: dict[str, str], query: str) -> list[dict[str, Any]]:
    response = await client.get(f"/events?{query}", headers=headers)
    assert response.status == 200, await response.text()
    assert response.content_type == "application/ld+json"
    return _events(await response.json())


# One capture, many queries: (query string, number of the shipment's 7 events it selects).
QUERIES = [
    ("", 7),
    ("eventType=ObjectEvent", 4),
    ("eventType=ObjectEvent|AggregationEvent", 7),
    ("EQ_bizStep=shipping", 1),
    ("EQ_bizStep=urn:epcglobal:cbv:bizstep:commissioning", 3),
    ("EQ_bizStep=https://ref.gs1.org/cbv/BizStep-packing", 3),
    ("EQ_action=OBSERVE", 1),
    ("EQ_disposition=in_progress", 3),
    ("MATCH_epc=urn:epc:id:sgtin:030001.0012345.1001", 2),
    ("MATCH_epc=urn:epc:idpat:sgtin:030001.1012345.*", 2),
    ("MATCH_parentID=urn:epc:id:sscc:030001.10000000101", 1),
    ("MATCH_anyEPC=urn:epc:id:sscc:030001.10000000101", 3),
    ("EQ_bizTransaction_po=urn:epcglobal:cbv:bt:0399999999991:PO-2026-0042", 1),
    ("EQ_source_owning_party=urn:epc:id:sgln:030001.111111.0", 1),
    ("EQ_destination_owning_party=urn:epc:id:sgln:039999.999999.0", 1),
    ("GE_eventTime=2026-03-03T00:00:00Z", 3),
    ("LT_eventTime=2026-03-03T00:00:00Z", 4),
    ("EQ_ILMD_cbvmda:lotNumber=LOT2026A", 2),
    ("EXISTS_errorDeclaration=true", 0),
    ("EQ_readPoint=urn:epc:id:sgln:030001.111121.0", 3),
    ("EQ_bizLocation=urn:epc:id:sgln:030001.111111.0", 4),
    ("EQ_ILMD_cbvmda:itemExpirationDate=2028-03-31", 2),
    ("GE_recordTime=2000-01-01T00:00:00Z", 7),
    ("LT_recordTime=2000-01-01T00:00:00Z", 0),
]


async def test_query_parameters_select_events(client: Client, captured: dict[str, str]) -> None:
    counts = {
        query: len(await _query(client, captured, f"perPage=100&{query}")) for query, _ in QUERIES
    }
    assert counts == dict(QUERIES)


async def test_query_by_event_id(client: Client, captured: dict[str, str]) -> None:
    (shipping,) = await _query(client, captured, "EQ_bizStep=shipping")
    found = await _query(client, captured, f"EQ_eventID={quote(shipping['eventID'], safe='')}")
    assert [event["eventID"] for event in found] == [shipping["eventID"]]


async def test_order_by_event_time(client: Client, captured: dict[str, str]) -> None:
    events = await _query(client, captured, "orderBy=eventTime&orderDirection=ASC")
    times = [event["eventTime"] for event in events]
    assert times == sorted(times)


async def test_a_bad_parameter_is_a_400_problem(client: Client, captured: dict[str, str]) -> None:
    response = await client.get("/events?EQ_nonsense=1", headers=captured)
    assert response.status == 400
    assert response.content_type == "application/problem+json"
    assert "EQ_nonsense" in (await response.json())["detail"]


async def test_paging_follows_link_headers_to_every_event_once(
    client: Client, captured: dict[str, str]
) -> None:
    url: str | None = "/events?perPage=3"
    seen: list[str] = []
    pages = 0
    while url is not None:
        response = await client.get(url, headers=captured)
        assert response.status == 200
        seen += [event["eventID"] for event in _events(await response.json())]
        link = response.headers.get("Link")
        url = link.split(">")[0].lstrip("<") if link else None
        if url is not None:
            assert link is not None
            assert link.endswith('rel="next"')
            assert "nextPageToken=" in url
        pages += 1
    assert pages == 3
    assert len(seen) == len(set(seen)) == 7


async def test_xml_on_accept(client: Client, captured: dict[str, str]) -> None:
    response = await client.get(
        "/events?EQ_bizStep=shipping", headers={**captured, "Accept": "application/xml"}
    )
    assert response.status == 200
    assert response.content_type == "application/xml"
    root = etree.fromstring(await response.read())
    assert root.tag == f"{{{QUERY_NS}}}EPCISQueryDocument"
    events = root.findall(f"EPCISBody/{{{QUERY_NS}}}QueryResults/resultsBody/EventList/ObjectEvent")
    assert len(events) == 1
    assert events[0].findtext("epcList/epc") == "urn:epc:id:sscc:030001.10000000101"


async def test_unacceptable_media_type_is_406(client: Client, captured: dict[str, str]) -> None:
    response = await client.get("/events", headers={**captured, "Accept": "text/csv"})
    assert response.status == 406
    assert (await response.json())["type"] == "epcisException:NotAcceptableException"


@pytest.mark.parametrize(
    ("epc_format", "expected"),
    [
        ("Always_GS1_Digital_Link", "https://id.gs1.org/00/"),
        ("Always_EPC_URN", "urn:epc:id:sscc:"),
        ("No_Preference", "urn:epc:id:sscc:"),
    ],
)
async def test_gs1_epc_format_is_honoured(
    client: Client, captured: dict[str, str], epc_format: str, expected: str
) -> None:
    response = await client.get(
        "/events?EQ_bizStep=shipping", headers={**captured, "GS1-EPC-Format": epc_format}
    )
    assert response.status == 200
    (event,) = _events(await response.json())
    assert event["epcList"][0].startswith(expected)


async def test_an_unknown_epc_format_is_400(client: Client, captured: dict[str, str]) -> None:
    response = await client.get("/events", headers={**captured, "GS1-EPC-Format": "Sometimes"})
    assert response.status == 400


async def test_event_by_id_and_404(client: Client, captured: dict[str, str]) -> None:
    (shipping,) = await _query(client, captured, "EQ_bizStep=shipping")
    response = await client.get(f"/events/{quote(shipping['eventID'], safe='')}", headers=captured)
    assert response.status == 200
    assert _events(await response.json())[0]["eventID"] == shipping["eventID"]
    missing = await client.get("/events/ni%3A%2F%2F%2Fsha-256%3Bdeadbeef", headers=captured)
    assert missing.status == 404
    assert (await missing.json())["type"] == "epcisException:NoSuchResourceException"


async def test_events_of_one_epc(client: Client, captured: dict[str, str]) -> None:
    epc = quote("urn:epc:id:sscc:030001.10000000101", safe="")
    response = await client.get(f"/epcs/{epc}/events?perPage=10", headers=captured)
    assert response.status == 200
    assert len(_events(await response.json())) == 3
