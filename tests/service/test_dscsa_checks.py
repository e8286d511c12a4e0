"""DSCSA checks on capture: each faulty variant of the scenario gives its typed exception."""

from __future__ import annotations

import hashlib
from collections.abc import AsyncIterator, Sequence

import pytest

from epcis.model import Action, EPCISHeader, EventBase
from service.dscsa_checks import (
    CheckMode,
    DSCSACheckFailedError,
    on_events_committed,
    precheck,
)
from service.exception_records import ExceptionStatus, ExceptionType
from service.recalls import effective_statuses
from service.serial_state import Status
from service.sqlite_traceability_store import SQLiteTraceabilityStore
from service.traceability_store import ExceptionFilter
from tests.service.dscsa_scenario import (
    CASES,
    ITEMS,
    aggregate,
    commission,
    dispense,
    header,
    receive,
    scenario_events,
    ship,
)


@pytest.fixture
async def store() -> AsyncIterator[SQLiteTraceabilityStore]:
    backend = SQLiteTraceabilityStore(":memory:")
    await backend.open()
    yield backend
    await backend.close()


def _hashed(events: Sequence[EventBase]) -> list[tuple[str, EventBase]]:
    # A content hash stands in for the CBV event hash: same event, same identity.
    return [(hashlib.sha256(e.model_dump_json().encode()).hexdigest(), e) for e in events]


async def _types(
    store: SQLiteTraceabilityStore,
    events: Sequence[EventBase],
    document_header: EPCISHeader | None = None,
) -> set[ExceptionType]:
    outcome = await on_events_committed(
        store,
        _hashed(events),
        header=document_header or header(),
        document_id="d1",
        partner_id="mfg",
    )
    return {record.type for record in outcome.exceptions}


async def test_clean_scenario_has_no_exceptions(store: SQLiteTraceabilityStore) -> None:
    assert await _types(store, scenario_events()) == set()


async def test_shipment_without_statement_or_product_master_data(
    store: SQLiteTraceabilityStore,
) -> None:
    bare = header(with_statement=False, with_products=False)
    assert await _types(store, scenario_events()[:7], bare) == {
        ExceptionType.MISSING_TRANSACTION_STATEMENT,
        ExceptionType.MISSING_PRODUCT_MASTER_DATA,
    }


async def test_missing_party_master_data(store: SQLiteTraceabilityStore) -> None:
    no_parties = header().model_copy(update={"master_data": header().master_data[:1]})
    assert await _types(store, scenario_events()[:7], no_parties) == {
        ExceptionType.MISSING_PARTY_MASTER_DATA
    }


async def test_commissioning_without_lot(store: SQLiteTraceabilityStore) -> None:
    assert await _types(store, [commission(0, ITEMS, lot=None)]) == {
        ExceptionType.COMMISSIONING_WITHOUT_LOT_OR_EXPIRY
    }


async def test_duplicate_and_conflicting_commissioning(store: SQLiteTraceabilityStore) -> None:
    await _types(store, [commission(0, ITEMS)])
    assert await _types(store, [commission(5, ITEMS[:1])]) == {
        ExceptionType.DUPLICATE_COMMISSIONING
    }
    assert await _types(store, [commission(6, ITEMS[1:2], lot="L2")]) == {
        ExceptionType.LOT_OR_EXPIRY_MISMATCH
    }


async def test_event_after_dispensing_makes_the_item_suspect(
    store: SQLiteTraceabilityStore,
) -> None:
    await _types(store, scenario_events())
    assert await _types(store, [ship(200, (ITEMS[0],), 2)]) == {
        ExceptionType.EVENT_AFTER_END_OF_LIFE
    }
    states = await store.get_states([ITEMS[0]])
    assert states[ITEMS[0]].status is Status.DISPENSED
    # A dispensed serial seen again may be a counterfeit: suspect until resolved.
    assert (await effective_statuses(store, list(states.values())))[ITEMS[0]] is Status.SUSPECT


async def test_packing_and_unpacking_inconsistencies(store: SQLiteTraceabilityStore) -> None:
    events = [
        commission(0, ITEMS),
        commission(1, CASES),
        aggregate(3, CASES[0], ITEMS[:1]),
        aggregate(4, CASES[1], ITEMS[:1]),
        aggregate(5, CASES[0], ITEMS[1:2], Action.DELETE),
    ]
    assert await _types(store, events) == {
        ExceptionType.ALREADY_IN_CONTAINER,
        ExceptionType.NOT_IN_CONTAINER,
    }
    states = list((await store.get_states(ITEMS[:2])).values())
    assert set((await effective_statuses(store, states)).values()) == {Status.QUARANTINED}


async def test_receiving_what_was_not_shipped_to_us(store: SQLiteTraceabilityStore) -> None:
    await _types(store, scenario_events())
    assert await _types(store, [receive(300, (ITEMS[1],), 2)]) == {
        ExceptionType.RECEIVED_NOT_SHIPPED_TO_US
    }


async def test_late_commissioning_closes_the_never_commissioned_exception(
    store: SQLiteTraceabilityStore,
) -> None:
    events = scenario_events()
    assert await _types(store, [events[11]]) == {
        ExceptionType.NEVER_COMMISSIONED,
        ExceptionType.RECEIVED_NOT_SHIPPED_TO_US,
    }
    await _types(store, events[:11])
    never = await store.list_exceptions(ExceptionFilter(type=ExceptionType.NEVER_COMMISSIONED))
    assert [r.status for r in never] == [ExceptionStatus.RESOLVED]
    assert never[0].resolutions[0].resolved_by == "system"
    # Captured again, nothing new is recorded.
    assert await _types(store, events) == set()


async def test_strict_precheck_rejects_and_lenient_reports(
    store: SQLiteTraceabilityStore,
) -> None:
    bare = header(with_statement=False)
    events = _hashed(scenario_events()[:7])
    with pytest.raises(DSCSACheckFailedError) as failure:
        await precheck(store, bare, events, CheckMode.STRICT)
    assert "missing_transaction_statement" in str(failure.value.problems[0])
    found = await precheck(store, bare, events, CheckMode.LENIENT)
    assert [f.type for f in found] == [ExceptionType.MISSING_TRANSACTION_STATEMENT]
    assert await precheck(store, header(), events, CheckMode.STRICT) == []


def test_dispense_helper_is_dispensing() -> None:
    assert dispense(0, ITEMS[0]).biz_step == "dispensing"


async def test_a_return_from_our_customer_is_not_flagged(store: SQLiteTraceabilityStore) -> None:
    from tests.service.dscsa_scenario import PHARMACY, WHOLESALER, WHOLESALER_DC, _trade

    events = scenario_events()
    await _types(store, events)
    to_pharmacy = [e for e in events if e.biz_step == "shipping"][-1].epcs()
    returned = _trade(
        400, to_pharmacy, "receiving", (PHARMACY, PHARMACY), (WHOLESALER, WHOLESALER_DC), "RMA", "R"
    )
    assert ExceptionType.RECEIVED_NOT_SHIPPED_TO_US not in await _types(store, [returned])
    unknown = ("urn:epc:id:pgln:0399999.00000", "urn:epc:id:sgln:0399999.00000.0")
    stranger = _trade(410, to_pharmacy, "receiving", unknown, (WHOLESALER, WHOLESALER_DC), "X", "Y")
    assert ExceptionType.RECEIVED_NOT_SHIPPED_TO_US in await _types(store, [stranger])
