"""Chain-of-custody trace over the manufacturer -> wholesaler -> pharmacy scenario."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest

from epcis.errors import InvalidIdentifierError
from service.master_data import extract_master_data
from service.serial_state import SerialStateProjection
from service.sqlite_traceability_store import SQLiteTraceabilityStore
from service.trace import UnknownIdentifierError, trace
from tests.service.dscsa_scenario import (
    CASES,
    ITEMS,
    MANUFACTURER,
    PALLET,
    PHARMACY,
    WHOLESALER,
    facts,
    header,
    scenario_events,
)


@pytest.fixture
async def store() -> AsyncIterator[SQLiteTraceabilityStore]:
    backend = SQLiteTraceabilityStore(":memory:")
    await backend.open()
    master = extract_master_data(header())
    await backend.put_products(master.products)
    await backend.put_parties(master.parties)
    await SerialStateProjection(backend).apply(facts(scenario_events()))
    yield backend
    await backend.close()


async def test_trace_marks_events_inferred_through_case_and_pallet(
    store: SQLiteTraceabilityStore,
) -> None:
    result = await trace(store, f"  {ITEMS[0]} ")
    assert result.identifier == ITEMS[0]
    assert result.status == "dispensed"
    steps = [(e.biz_step, e.inferred, e.via) for e in result.events]
    assert steps == [
        ("commissioning", False, ()),
        ("packing", False, ()),
        ("packing", True, (CASES[0],)),
        ("shipping", True, (CASES[0], PALLET)),
        ("receiving", True, (CASES[0], PALLET)),
        ("unpacking", True, (CASES[0], PALLET)),
        ("unpacking", True, (CASES[0],)),
        ("shipping", False, ()),
        ("receiving", False, ()),
        ("dispensing", False, ()),
    ]
    times = [e.event_time for e in result.events]
    assert times == sorted(times)


async def test_each_ownership_change_carries_transaction_information(
    store: SQLiteTraceabilityStore,
) -> None:
    changes = (await trace(store, ITEMS[0])).ownership_changes
    assert [(c.seller and c.seller.id, c.buyer and c.buyer.id) for c in changes] == [
        (MANUFACTURER, WHOLESALER),
        (WHOLESALER, PHARMACY),
    ]
    first = changes[0]
    assert first.seller is not None
    assert first.seller.name == "GS1 Pharma"
    assert first.buyer is not None
    assert first.buyer.address == "230 Park Ave S, New York NY, US"
    assert first.purchase_orders == ("urn:epcglobal:cbv:bt:0399999999991:PO-1",)
    assert first.despatch_advices == ("urn:epcglobal:cbv:bt:0300011111215:DESADV-1",)
    assert (first.product_name, first.strength, first.dosage_form, first.ndc) == (
        "Epcistra",
        "100mg",
        "PILL",
        "0001-0123-45",
    )
    assert first.lot == "L1"
    assert str(first.expiry) == "2027-06-30"
    assert first.via == (CASES[0], PALLET)
    assert first.transaction_date == first.shipment_date.date()


async def test_trace_json_is_plain_data(store: SQLiteTraceabilityStore) -> None:
    data = (await trace(store, PALLET)).to_json()
    assert data["state"]["kind"] == "sscc"
    assert data["events"][0]["event_time"].startswith("2026-03-02T09:02")
    assert data["ownership_changes"][0]["product_name"] is None


async def test_unknown_and_malformed_identifiers(store: SQLiteTraceabilityStore) -> None:
    with pytest.raises(UnknownIdentifierError):
        await trace(store, "urn:epc:id:sgtin:030001.0012345.999")
    with pytest.raises(InvalidIdentifierError):
        await trace(store, "   ")
