"""``dscsa rebuild`` reads the event store page by page and gives the incremental state."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Any

from epcis.jsonld_writer import event_to_jsonld
from epcis.query import EventQuery
from service.commands.traceability import stored_facts
from service.serial_state import SerialStateProjection
from service.sqlite_traceability_store import SQLiteTraceabilityStore
from service.store import EventIndex, EventRecord, Page, PageRequest, Visibility
from tests.service.dscsa_scenario import CASES, ITEMS, PALLET, facts, scenario_events


class _PagedEvents:
    """Just the ``query_events`` paging of the event store port, over fixed records."""

    def __init__(self, records: list[EventRecord]) -> None:
        self.records = records

    async def query_events(
        self, query: EventQuery, visibility: Visibility, page: PageRequest
    ) -> Page:
        start = int(page.token or 0)
        end = start + page.per_page
        token = str(end) if end < len(self.records) else None
        return Page(tuple(self.records[start:end]), token)


def _records() -> list[EventRecord]:
    events = scenario_events()
    return [
        EventRecord(
            hash_id=f.hash_id,
            event_id=f.hash_id,
            event_type=f.event_type,
            event_time=f.event_time,
            record_time=datetime.now(UTC),
            document_id="d1",
            body=json.dumps(event_to_jsonld(e, {})).encode(),  # type: ignore[arg-type]
            index=EventIndex(),
        )
        for f, e in zip(facts(events), events, strict=True)
    ]


async def test_rebuild_from_event_store_equals_incremental() -> None:
    store = SQLiteTraceabilityStore(":memory:")
    await store.open()
    projection = SerialStateProjection(store)
    await projection.apply(facts(scenario_events()))
    everything = (*ITEMS, *CASES, PALLET)
    incremental = await store.get_states(everything)
    source: Any = _PagedEvents(list(reversed(_records())))
    rebuilt_facts = [f async for f in stored_facts(source, per_page=4)]
    assert len(rebuilt_facts) == len(scenario_events())
    assert await projection.rebuild(rebuilt_facts) == len(everything)
    assert await store.get_states(everything) == incremental
    await store.close()
