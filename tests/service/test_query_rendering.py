"""The JSON-LD query document spliced from stored bodies: the same bytes as a full dump."""

from __future__ import annotations

import json
import re
from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

from epcis.query import parse_query_params
from service.handlers.events import _query_document_head, _query_document_json
from service.state import STORE
from service.store import PageRequest, Visibility
from tests.service.conftest import Client, capture

_DATE = re.compile(rb'"creationDate":"([^"]+)"')

_scalars = st.one_of(
    st.none(), st.booleans(), st.integers(), st.text(max_size=8), st.floats(allow_nan=False)
)
_events = st.lists(st.dictionaries(st.text(max_size=6), _scalars, max_size=4), max_size=5)


def _dumped(creation_date: str, events: list[dict[str, Any]]) -> bytes:
    """The document as one json.dumps of the whole, as the handler once built it."""
    document = _query_document_head(creation_date)
    body: dict[str, Any] = document["epcisBody"]  # type: ignore[assignment]
    body["queryResults"]["resultsBody"]["eventList"] = events
    return json.dumps(document, separators=(",", ":"), ensure_ascii=False).encode()


@settings(max_examples=50, deadline=None)
@given(_events)
def test_the_spliced_document_equals_a_full_dump(events: list[dict[str, Any]]) -> None:
    bodies = [json.dumps(e, separators=(",", ":"), ensure_ascii=False).encode() for e in events]
    spliced = _query_document_json(bodies)
    found = _DATE.search(spliced)
    assert found is not None
    assert spliced == _dumped(found.group(1).decode(), events)


def test_the_creation_date_is_now_in_utc_milliseconds() -> None:
    found = _DATE.search(_query_document_json([]))
    assert found is not None
    assert re.fullmatch(rb"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}\+00:00", found.group(1))


async def test_a_query_answers_with_the_stored_bodies_verbatim(
    client: Client, operator: dict[str, str], pharma_example: bytes
) -> None:
    job = await capture(client, pharma_example, operator)
    assert job["success"], job
    for accept in ("*/*", "application/ld+json", "application/json;q=0.5, */*;q=0.1"):
        response = await client.get("/events?perPage=3", headers={**operator, "Accept": accept})
        assert response.status == 200
        assert response.content_type in {"application/ld+json", "application/json"}
        raw = await response.read()
        document = json.loads(raw)
        assert list(document) == ["@context", "type", "schemaVersion", "creationDate", "epcisBody"]
        events = document["epcisBody"]["queryResults"]["resultsBody"]["eventList"]
        assert len(events) == 3
        page = await client.app[STORE].query_events(
            parse_query_params({}), Visibility.everything(), PageRequest(3)
        )
        assert b"[" + b",".join(record.body for record in page.records) + b"]" in raw
        assert 'rel="next"' in response.headers["Link"]
