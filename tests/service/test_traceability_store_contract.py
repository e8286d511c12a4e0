"""One contract suite for every traceability store adapter (SQLite; MongoDB via mongomock-motor).

mongomock-motor emulates the Motor API in memory: it does not emulate transactions, index
build options or server-side performance, so those are not covered here. Set
DSCSA_TEST_MONGODB_URL to run the same suite against a live server too.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from typing import Any

import pytest
from mongomock_motor import AsyncMongoMockClient

from service.exception_records import (
    Determination,
    ExceptionRecord,
    ExceptionStatus,
    ExceptionType,
    Hold,
    Resolution,
)
from service.master_data import PartyRecord, ProductRecord
from service.mongo_traceability_store import MongoTraceabilityStore
from service.serial_state import SerialState, SerialStateProjection, Status
from service.sqlite_traceability_store import SQLiteTraceabilityStore
from service.traceability_store import (
    ExceptionFilter,
    RecallRecord,
    TraceabilityStore,
    VerificationView,
    gather_trace_view,
)
from tests.service.dscsa_scenario import (
    CASES,
    ITEM_GTIN,
    ITEMS,
    PALLET,
    WHOLESALER,
    facts,
    scenario_events,
)

NOW = datetime(2026, 3, 3, tzinfo=UTC)
BACKENDS = ["sqlite", "mongomock"] + (
    ["mongodb"] if os.environ.get("DSCSA_TEST_MONGODB_URL") else []
)


@pytest.fixture(params=BACKENDS)
async def store(
    request: pytest.FixtureRequest, tmp_path: object
) -> AsyncIterator[TraceabilityStore]:
    backend: TraceabilityStore
    client: Any = None
    if request.param == "sqlite":
        backend = SQLiteTraceabilityStore(f"{tmp_path}/trace.sqlite")
    elif request.param == "mongomock":
        backend = MongoTraceabilityStore(AsyncMongoMockClient()["trace"])
    else:
        from pymongo import AsyncMongoClient

        client = AsyncMongoClient(os.environ["DSCSA_TEST_MONGODB_URL"])
        backend = MongoTraceabilityStore(client[f"trace_{uuid.uuid4().hex}"])
    await backend.open()
    yield backend
    await backend.close()
    if client is not None:
        await client.close()


def _exception(key: str, kind: ExceptionType, epcs: tuple[str, ...]) -> ExceptionRecord:
    return ExceptionRecord(
        exception_id=uuid.uuid4().hex,
        key=key,
        type=kind,
        detail="d",
        created_at=NOW,
        partner_id="wholesaler",
        identifiers=epcs,
    )


async def test_facts_are_stored_once_and_found_by_every_identifier(
    store: TraceabilityStore,
) -> None:
    all_facts = facts(scenario_events())
    assert len(await store.add_facts(all_facts)) == len(all_facts)
    assert await store.add_facts(all_facts[:3]) == []
    found = await store.facts_for([PALLET, "urn:epc:id:sgtin:0.0.nothing"])
    assert {f.hash_id for f in found[PALLET]} == {
        f.hash_id for f in all_facts if PALLET in f.names()
    }
    assert set(await store.all_fact_epcs()) == {*ITEMS, *CASES, PALLET}


async def test_projection_gives_the_same_states_on_every_backend(
    store: TraceabilityStore,
) -> None:
    await SerialStateProjection(store).apply(facts(scenario_events()))
    states = await store.get_states([*ITEMS, PALLET])
    assert states[ITEMS[0]].status is Status.DISPENSED
    assert states[ITEMS[2]].parent == CASES[1]
    assert await store.children_ever([PALLET]) == set(CASES)
    by_lot = await store.states_by_lot(ITEM_GTIN, "L1")
    assert [s.epc for s in by_lot] == sorted(ITEMS)


async def test_exceptions_are_deduplicated_and_resolutions_appended(
    store: TraceabilityStore,
) -> None:
    first = _exception("k1", ExceptionType.NEVER_COMMISSIONED, (ITEMS[0],))
    second = _exception("k2", ExceptionType.NOT_IN_CONTAINER, (ITEMS[0], ITEMS[1]))
    assert len(await store.add_exceptions([first, second])) == 2
    assert (
        await store.add_exceptions([_exception("k1", ExceptionType.NEVER_COMMISSIONED, ())]) == []
    )
    assert await store.holds_for([ITEMS[0], ITEMS[1], ITEMS[2]]) == {
        ITEMS[0]: {Hold.SUSPECT, Hold.QUARANTINED},
        ITEMS[1]: {Hold.QUARANTINED},
    }
    for note in ("checked", "checked again"):
        await store.add_resolution(Resolution(first.exception_id, note, "ops", NOW))
    resolved = await store.get_exception(first.exception_id)
    assert resolved is not None
    assert [r.note for r in resolved.resolutions] == ["checked", "checked again"]
    assert resolved.status is ExceptionStatus.RESOLVED
    assert await store.holds_for([ITEMS[0]]) == {ITEMS[0]: {Hold.QUARANTINED}}
    assert await store.add_resolution(Resolution("missing", "n", "ops", NOW)) is None
    open_ = await store.list_exceptions(ExceptionFilter(status=ExceptionStatus.OPEN))
    assert [r.key for r in open_] == ["k2"]
    by_epc = await store.list_exceptions(ExceptionFilter(identifier=ITEMS[1]))
    assert [r.key for r in by_epc] == ["k2"]
    by_type = await store.list_exceptions(ExceptionFilter(type=ExceptionType.NEVER_COMMISSIONED))
    assert [r.key for r in by_type] == ["k1"]
    assert await store.list_exceptions(ExceptionFilter(partner_id="nobody")) == []


async def test_an_illegitimate_determination_is_stored_and_holds(
    store: TraceabilityStore,
) -> None:
    await SerialStateProjection(store).apply(facts(scenario_events()))
    suspect = _exception("k1", ExceptionType.LOT_OR_EXPIRY_MISMATCH, (ITEMS[1],))
    other = _exception("k2", ExceptionType.NEVER_COMMISSIONED, (ITEMS[2],))
    await store.add_exceptions([suspect, other])
    determined = Resolution(
        suspect.exception_id,
        "counterfeit",
        "ops",
        NOW,
        determination=Determination.ILLEGITIMATE,
        form3911="IN-42",
    )
    await store.add_resolution(determined)
    await store.add_resolution(Resolution(suspect.exception_id, "destroyed", "ops", NOW))
    await store.add_resolution(
        Resolution(other.exception_id, "fine", "ops", NOW, determination=Determination.CLEARED)
    )
    record = await store.get_exception(suspect.exception_id)
    assert record is not None
    assert record.resolutions[0] == determined
    assert (record.hold, record.form3911) == (Hold.ILLEGITIMATE, "IN-42")
    assert await store.holds_for([ITEMS[1], ITEMS[2]]) == {ITEMS[1]: {Hold.ILLEGITIMATE}}
    view = await store.verification_view(ITEMS[1])
    assert view is not None
    assert view.holds == {Hold.ILLEGITIMATE}
    assert (await store.trace_view(ITEMS[1])).holds == {Hold.ILLEGITIMATE}
    for determination, key in ((Determination.ILLEGITIMATE, "k1"), (Determination.CLEARED, "k2")):
        found = await store.list_exceptions(ExceptionFilter(determination=determination))
        assert [r.key for r in found] == [key]
    both = ExceptionFilter(status=ExceptionStatus.OPEN, determination=Determination.ILLEGITIMATE)
    assert await store.list_exceptions(both) == []


async def test_recalls_by_lot_and_by_serial(store: TraceabilityStore) -> None:
    await SerialStateProjection(store).apply(facts(scenario_events()))
    states = list((await store.get_states([*ITEMS, *CASES, PALLET])).values())
    assert await store.recalled(states) == set()
    await store.add_recall(RecallRecord("r1", NOW, "ops", serials=(PALLET,)))
    assert await store.recalled(states) == {PALLET}
    await store.add_recall(RecallRecord("r2", NOW, "ops", gtin=ITEM_GTIN, lot="L1"))
    assert await store.recalled(states) == {PALLET, *ITEMS}


async def test_get_recall_gives_the_whole_record_back(store: TraceabilityStore) -> None:
    serials = (PALLET, CASES[0], ITEMS[0])
    recall = RecallRecord("r1", NOW, "ops", reason="seal", serials=serials)
    lot = RecallRecord("r2", NOW, "qa", gtin=ITEM_GTIN, lot="L1")
    await store.add_recall(recall)
    await store.add_recall(lot)
    assert await store.get_recall("r1") == recall
    assert await store.get_recall("r2") == lot
    assert await store.get_recall("r3") is None


async def test_recalls_of_a_serial_by_lot_and_by_listed_serials(store: TraceabilityStore) -> None:
    await SerialStateProjection(store).apply(facts(scenario_events()))
    states = await store.get_states([*ITEMS, *CASES, PALLET])
    assert await store.recalls_of(states[ITEMS[2]]) == []
    later = datetime(2026, 3, 4, tzinfo=UTC)
    # A recall of the pallet lists what was inside it then (recalls.recall does that).
    await store.add_recall(
        RecallRecord("r2", later, "ops", reason="seal", serials=(PALLET, CASES[1], ITEMS[2]))
    )
    await store.add_recall(RecallRecord("r1", NOW, "qa", reason="label", gtin=ITEM_GTIN, lot="L1"))
    item = await store.recalls_of(states[ITEMS[2]])
    assert [(r.recall_id, r.scope, r.reason, r.created_by) for r in item] == [
        ("r1", "lot", "label", "qa"),
        ("r2", "serials", "seal", "ops"),
    ]
    assert (item[0].gtin, item[0].lot, item[0].created_at) == (ITEM_GTIN, "L1", NOW)
    assert [r.recall_id for r in await store.recalls_of(states[ITEMS[0]])] == ["r1"]
    assert [r.recall_id for r in await store.recalls_of(states[PALLET])] == ["r2"]
    for epc, state in states.items():
        assert bool(await store.recalls_of(state)) is (epc in await store.recalled([state]))
    view = await store.trace_view(ITEMS[2])
    assert (view.recalled, view.recalls) == (True, tuple(item))


async def test_master_data_newest_wins(store: TraceabilityStore) -> None:
    await store.put_products([ProductRecord(gtin=ITEM_GTIN, class_id="c", name="Old")])
    await store.put_products([ProductRecord(gtin=ITEM_GTIN, class_id="c", name="New")])
    await store.put_parties([PartyRecord(party_id="p", name="Pharmacy", city="Brooklyn")])
    assert (await store.get_products([ITEM_GTIN, "x"]))[ITEM_GTIN].name == "New"
    assert (await store.get_parties(["p"]))["p"].city == "Brooklyn"


async def _three_calls(store: TraceabilityStore, epc: str) -> VerificationView | None:
    """What ``verification_view`` must equal: the three separate calls it replaces."""
    state = (await store.get_states([epc])).get(epc)
    if state is None:
        return None
    recalled = state.recalled_in_data or bool(await store.recalled([state]))
    holds = frozenset((await store.holds_for([epc])).get(epc, set()))
    return VerificationView(state=state, recalled=recalled, holds=holds)


async def test_verification_view_equals_state_recall_and_holds(store: TraceabilityStore) -> None:
    await SerialStateProjection(store).apply(facts(scenario_events()))
    unknown = "urn:epc:id:sgtin:030001.0012345.999"
    assert await store.verification_view(unknown) is None
    plain = await store.verification_view(ITEMS[1])
    assert plain is not None
    assert plain.state == (await store.get_states([ITEMS[1]]))[ITEMS[1]]
    assert (plain.recalled, plain.holds) == (False, frozenset())
    # Several spellings of one package: the view of the first that has state.
    assert await store.verification_view(unknown, ITEMS[1]) == plain
    assert await store.verification_view(unknown, unknown + "0") is None
    suspect = _exception("k1", ExceptionType.NEVER_COMMISSIONED, (ITEMS[0],))
    quarantine = _exception("k2", ExceptionType.NOT_IN_CONTAINER, (ITEMS[0], ITEMS[1]))
    await store.add_exceptions([suspect, quarantine])
    await store.add_resolution(Resolution(quarantine.exception_id, "ok", "ops", NOW))
    await store.add_recall(RecallRecord("r1", NOW, "ops", serials=(ITEMS[2],)))
    views = {epc: await store.verification_view(epc) for epc in (*ITEMS, *CASES, PALLET)}
    holds = {epc: view.holds for epc, view in views.items() if view is not None}
    assert holds[ITEMS[0]] == {Hold.SUSPECT}
    assert holds[ITEMS[1]] == frozenset()
    assert [epc for epc, view in views.items() if view and view.recalled] == [ITEMS[2]]
    await store.add_recall(RecallRecord("r2", NOW, "ops", gtin=ITEM_GTIN, lot="L1"))
    for epc in (*ITEMS, *CASES, PALLET):
        view = await store.verification_view(epc)
        assert view == await _three_calls(store, epc)
        assert view is not None
        assert view.recalled is (epc in ITEMS)


async def test_verification_view_counts_a_recall_in_the_data(store: TraceabilityStore) -> None:
    state = SerialState(epc=ITEMS[3], kind="sgtin", gtin=ITEM_GTIN, lot="L9", recalled_in_data=True)
    await store.put_states([state])
    assert await store.verification_view(ITEMS[3]) == VerificationView(state, True, frozenset())


async def test_trace_view_equals_the_single_purpose_calls(store: TraceabilityStore) -> None:
    await SerialStateProjection(store).apply(facts(scenario_events()))
    await store.put_products([ProductRecord(gtin=ITEM_GTIN, class_id="c", name="Drug")])
    await store.put_parties([PartyRecord(party_id=WHOLESALER, name="Wholesaler")])
    await store.add_exceptions([_exception("k1", ExceptionType.NOT_IN_CONTAINER, (ITEMS[0],))])
    await store.add_recall(RecallRecord("r1", NOW, "ops", gtin=ITEM_GTIN, lot="L1"))
    for epc in (*ITEMS, *CASES, PALLET, "urn:epc:id:sgtin:030001.0012345.999"):
        view = await store.trace_view(epc)
        assert view == await gather_trace_view(store, epc)
    item = await store.trace_view(ITEMS[0])
    assert item.recalled
    assert item.holds == {Hold.QUARANTINED}
    assert item.products[ITEM_GTIN].name == "Drug"
    assert item.parties[WHOLESALER].name == "Wholesaler"
    assert (CASES[0], PALLET) in {e.via for e in item.entries}
    assert (await store.trace_view(CASES[0])).products == {}


async def test_pending_projections_are_named_once_listed_oldest_first_and_cleared(
    store: TraceabilityStore,
) -> None:
    assert await store.pending_projections() == []
    await store.add_pending_projection("doc-b", "cap-b", NOW)
    await store.add_pending_projection("doc-a", "cap-a", NOW.replace(hour=1))
    # Named again: kept as first named.
    await store.add_pending_projection("doc-b", "cap-x", NOW.replace(hour=2))
    await store.add_pending_projection("doc-c", "cap-c", NOW.replace(hour=3))
    assert await store.pending_projections() == [
        ("doc-b", "cap-b"),
        ("doc-a", "cap-a"),
        ("doc-c", "cap-c"),
    ]
    await store.clear_pending_projections(["doc-b", "doc-c", "never-named"])
    assert await store.pending_projections() == [("doc-a", "cap-a")]
    await store.clear_pending_projections([])
    assert await store.pending_projections() == [("doc-a", "cap-a")]
