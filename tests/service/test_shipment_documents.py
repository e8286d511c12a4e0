"""Outbound shipment documents: content, reduced copies, both schemas, the same trace on the
buyer's instance, the command and the HTTP route."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from functools import cache
from pathlib import Path
from typing import Any
from urllib.parse import quote

import pytest
import xmlschema
from pydantic import SecretStr
from pytest_aiohttp import AiohttpClient

from epcis.event_hash import event_hash
from epcis.model import Event, ObjectEvent
from epcis.reading import read_document
from epcis.validation import validate_xml
from service.app import create_app
from service.cli import main
from service.exception_records import ExceptionType
from service.handlers.shipments import shipment_routes
from service.handlers.traceability import TRACEABILITY
from service.partners import add_partner
from service.settings import Settings
from service.shipment_documents import (
    IncompleteShipmentError,
    NoSuchShipmentError,
    NotAShipmentError,
    ShipmentDocument,
    build_shipment_document,
    shipment_document_bytes,
)
from service.sqlite_store import SQLiteEventStore
from service.state import STORE
from service.trace import Trace, trace
from tests.service.scenario_instances import SCENARIO, Instance, open_instance

OFFICIAL_XSD = (
    Path(__file__).resolve().parents[3]
    / "shared/reference/data/gs1-epcis/XSL/1.2/XSD/EPCglobal-epcis-1_2.xsd"
)
MANUFACTURER_DOC = SCENARIO / "1-manufacturer-to-wholesaler.xml"
WHOLESALER_OPS = SCENARIO / "2-wholesaler-operations.xml"
PACK = "urn:epc:id:sgtin:030001.0012345"
CASE = "urn:epc:id:sgtin:030001.1012345"
PALLET = "urn:epc:id:sscc:030001.10000000101"
MANUFACTURER = "urn:epc:id:sgln:030001.111111.0"
WHOLESALER = "urn:epc:id:sgln:039999.999999.0"
PHARMACY = "urn:epc:id:sgln:038888.888888.0"


@cache
def official_schema() -> xmlschema.XMLSchema10:
    if not OFFICIAL_XSD.exists():
        pytest.skip("the shared reference data (/work/shared/reference) is not present")
    return xmlschema.XMLSchema10(str(OFFICIAL_XSD))


async def _shipping_id(instance: Instance, path: Path) -> str:
    """The stored eventID of the last shipping event of a captured file."""
    events = read_document(await asyncio.to_thread(path.read_bytes)).events
    last = [e for e in events if e.biz_step == "shipping"][-1]
    record = await instance.events.get_event(event_hash(last), _everything())
    assert record is not None
    return record.event_id


def _everything() -> Any:
    from service.store import Visibility

    return Visibility.everything()


@pytest.fixture
async def manufacturer(tmp_path: Path) -> AsyncIterator[Instance]:
    instance = await open_instance(tmp_path / "manufacturer")
    await instance.capture(MANUFACTURER_DOC, "operator")
    yield instance
    await instance.close()


@pytest.fixture
async def wholesaler(tmp_path: Path) -> AsyncIterator[Instance]:
    instance = await open_instance(tmp_path / "wholesaler")
    await instance.capture(MANUFACTURER_DOC, "manufacturer")
    await instance.capture(WHOLESALER_OPS, "operator")
    yield instance
    await instance.close()


def _without_ids(events: tuple[Event, ...]) -> list[Event]:
    return [e.model_copy(update={"event_id": None, "record_time": None}) for e in events]


async def test_a_whole_pallet_shipment_carries_every_event_unchanged(
    manufacturer: Instance,
) -> None:
    event_id = await _shipping_id(manufacturer, MANUFACTURER_DOC)
    shipment = await build_shipment_document(
        manufacturer.events, manufacturer.traceability, event_id
    )
    sent = read_document(MANUFACTURER_DOC.read_bytes())
    assert _without_ids(shipment.document.events) == _without_ids(sent.events)
    assert shipment.reduced == ()
    assert all(original == written for original, written in shipment.hashes.items())
    assert set(shipment.serials) == {
        PALLET,
        f"{CASE}.2001",
        f"{CASE}.2002",
        *(f"{PACK}.{n}" for n in range(1001, 1009)),
    }


async def test_header_names_seller_buyer_products_parties_and_the_statement(
    manufacturer: Instance,
) -> None:
    event_id = await _shipping_id(manufacturer, MANUFACTURER_DOC)
    shipment = await build_shipment_document(
        manufacturer.events, manufacturer.traceability, event_id, instance_identifier="X-1"
    )
    header = shipment.document.head.header
    assert header is not None
    assert header.standard_business_document_header is not None
    sbdh = header.standard_business_document_header
    assert [p.identifier for p in sbdh.sender] == [MANUFACTURER]
    assert [p.identifier for p in sbdh.receiver] == [WHOLESALER]
    assert sbdh.document_identification.instance_identifier == "X-1"
    assert header.gs1ushc is not None
    assert header.gs1ushc.dscsa_transaction_statement is not None
    assert header.gs1ushc.dscsa_transaction_statement.affirm_transaction_statement
    products, parties = header.master_data
    assert [e.id for e in products.vocabulary_element_list] == [
        "urn:epc:idpat:sgtin:030001.0012345.*",
        "urn:epc:idpat:sgtin:030001.1012345.*",
    ]
    first = products.vocabulary_element_list[0]
    assert first.attribute("urn:epcglobal:cbv:mda#regulatedProductName") == "Epcistra"
    assert first.attribute("urn:epcglobal:cbv:mda#netContentDescription") == "30 tablets"
    assert len(parties.vocabulary_element_list) == 4


async def test_reduced_copies_name_only_the_shipped_serials(wholesaler: Instance) -> None:
    event_id = await _shipping_id(wholesaler, WHOLESALER_OPS)
    shipment = await build_shipment_document(wholesaler.events, wholesaler.traceability, event_id)
    events = shipment.document.events
    assert [e.biz_step for e in events] == ["commissioning", "commissioning", "packing", "shipping"]
    named = {epc for e in events for epc in e.epcs()}
    assert named == {f"{CASE}.2001", *(f"{PACK}.{n}" for n in range(1001, 1005))}
    assert len(shipment.reduced) == 2
    for original in shipment.reduced:
        written = shipment.hashes[original]
        event = next(e for e in events if e.event_id == written)
        assert written != original
        assert event_hash(event) == written
    packing = events[2]
    assert shipment.hashes[packing.event_id or ""] == packing.event_id


@pytest.mark.parametrize("leg", ["manufacturer", "wholesaler"])
async def test_the_document_passes_our_schema_and_the_official_xsd(
    leg: str, manufacturer: Instance, wholesaler: Instance
) -> None:
    instance, path = (
        (manufacturer, MANUFACTURER_DOC) if leg == "manufacturer" else (wholesaler, WHOLESALER_OPS)
    )
    shipment = await build_shipment_document(
        instance.events, instance.traceability, await _shipping_id(instance, path)
    )
    data = shipment_document_bytes(shipment)
    assert validate_xml(data) == []
    official_schema().validate(data)


def _custody(result: Trace, shipment: ShipmentDocument, hashes: dict[str, str]) -> tuple[Any, ...]:
    """The part of a trace the document carries; ``hashes`` maps its event hashes to the
    hashes the buyer computes."""
    events = [
        (hashes[e.hash_id], e.event_type, e.event_time, e.biz_step, e.inferred, e.via)
        for e in result.events
        if e.hash_id in hashes
    ]
    changes = [c for c in result.ownership_changes if c.event_hash == shipment.shipment_hash]
    state = result.state
    commissioning = state.commissioning_event
    state = type(state)(
        **{
            **{name: getattr(state, name) for name in state.__slots__},
            "commissioning_event": hashes.get(commissioning or "", commissioning),
        }
    )
    return events, changes, state, result.status


@pytest.mark.parametrize("leg", ["manufacturer", "wholesaler"])
async def test_the_buyer_gets_the_same_trace_for_every_shipped_serial(
    leg: str, manufacturer: Instance, wholesaler: Instance, tmp_path: Path
) -> None:
    seller, path, partner = (
        (manufacturer, MANUFACTURER_DOC, "manufacturer")
        if leg == "manufacturer"
        else (wholesaler, WHOLESALER_OPS, "wholesaler")
    )
    shipment = await build_shipment_document(
        seller.events, seller.traceability, await _shipping_id(seller, path)
    )
    document = tmp_path / "shipment.xml"
    await asyncio.to_thread(document.write_bytes, shipment_document_bytes(shipment))
    buyer = await open_instance(tmp_path / "buyer")
    try:
        outcome = await buyer.capture(document, partner)
        assert outcome.exceptions == ()
        as_written = {written: written for written in shipment.hashes.values()}
        for serial in shipment.serials:
            sold = _custody(await trace(seller.traceability, serial), shipment, shipment.hashes)
            bought = await trace(buyer.traceability, serial)
            assert _custody(bought, shipment, as_written) == sold, serial
            # The buyer knows nothing about the serial beyond the document.
            assert len(bought.events) == len(sold[0])
    finally:
        await buyer.close()


async def test_unknown_and_non_shipping_events_and_missing_history(
    wholesaler: Instance, tmp_path: Path
) -> None:
    with pytest.raises(NoSuchShipmentError):
        await build_shipment_document(wholesaler.events, wholesaler.traceability, "urn:uuid:0")
    receipt = read_document(WHOLESALER_OPS.read_bytes()).events[0]
    with pytest.raises(NotAShipmentError):
        await build_shipment_document(
            wholesaler.events, wholesaler.traceability, event_hash(receipt)
        )
    # An instance that never saw the manufacturer's document cannot vouch for the serials.
    blind = await open_instance(tmp_path / "blind")
    try:
        await blind.capture(WHOLESALER_OPS)
        with pytest.raises(IncompleteShipmentError) as caught:
            await build_shipment_document(
                blind.events, blind.traceability, await _shipping_id(blind, WHOLESALER_OPS)
            )
        assert caught.value.status == 409
        # Without the packing events it does not even know what is inside the case.
        assert [p.reason for p in caught.value.problems] == [
            f"{CASE}.2001 was never commissioned here"
        ]
    finally:
        await blind.close()


def _capture_sync(directory: Path) -> str:
    async def work() -> str:
        instance = await open_instance(directory)
        try:
            await instance.capture(MANUFACTURER_DOC)
            await instance.capture(WHOLESALER_OPS)
            return await _shipping_id(instance, WHOLESALER_OPS)
        finally:
            await instance.close()

    return asyncio.run(work())


def test_dscsa_shipment_document_writes_the_file(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    event_id = _capture_sync(tmp_path / "store")
    monkeypatch.setenv("DSCSA_STORE", f"sqlite:///{tmp_path}/store/events.sqlite3")
    monkeypatch.setenv("DSCSA_DATA_DIR", str(tmp_path / "store"))
    out = tmp_path / "out.xml"
    assert main(["shipment-document", event_id, "-o", str(out)]) == 0
    document = read_document(out.read_bytes())
    assert isinstance(document.events[-1], ObjectEvent)
    assert document.events[-1].event_id == event_id
    assert main(["shipment-document", "urn:uuid:nope", "-o", str(out)]) == 1
    assert "no event urn:uuid:nope" in capsys.readouterr().err


async def test_get_shipment_document_over_http(
    wholesaler: Instance, tmp_path: Path, aiohttp_client: AiohttpClient
) -> None:
    event_id = await _shipping_id(wholesaler, WHOLESALER_OPS)
    await wholesaler.events.close()
    settings = Settings(
        store=SecretStr(f"sqlite:///{tmp_path}/wholesaler/events.sqlite3"),
        data_dir=tmp_path / "data",
    )
    app = create_app(settings, store=SQLiteEventStore(settings.sqlite_path, tmp_path / "data"))
    app[TRACEABILITY] = wholesaler.traceability
    app.add_routes(shipment_routes())
    client = await aiohttp_client(app)
    operator = {"Authorization": f"Bearer {settings.operator_token_path.read_text().strip()}"}
    response = await client.get(f"/shipments/{quote(event_id, safe='')}/epcis", headers=operator)
    assert response.status == 200, await response.text()
    assert response.content_type == "application/xml"
    body = await response.read()
    assert validate_xml(body) == []
    assert read_document(body).events[-1].event_id == event_id
    missing = await client.get("/shipments/urn:uuid:0/epcis", headers=operator)
    assert (missing.status, missing.content_type) == (404, "application/problem+json")
    issued = await add_partner(client.app[STORE], "Pharmacy", "0388888888881", "partner")
    denied = await client.get(
        f"/shipments/{quote(event_id, safe='')}/epcis",
        headers={"Authorization": f"Bearer {issued.token}"},
    )
    assert denied.status == 403
    # The fixture closes the event store again: reopen a fresh one for it.
    wholesaler.events = SQLiteEventStore(tmp_path / "wholesaler/events.sqlite3", tmp_path)
    await wholesaler.events.open()


async def test_an_original_commissioning_and_its_reduced_copy_are_one_commissioning(
    wholesaler: Instance, tmp_path: Path
) -> None:
    """An instance holding the manufacturer's commissioning events captures the wholesaler's
    shipment document, which carries reduced copies of them: the same commissioning again."""
    shipment = await build_shipment_document(
        wholesaler.events, wholesaler.traceability, await _shipping_id(wholesaler, WHOLESALER_OPS)
    )
    assert shipment.reduced  # the copies differ from the originals: other hashes
    document = tmp_path / "shipment.xml"
    await asyncio.to_thread(document.write_bytes, shipment_document_bytes(shipment))
    other = await open_instance(tmp_path / "other")
    try:
        await other.capture(MANUFACTURER_DOC, "manufacturer")
        before = await other.traceability.get_states(shipment.serials)
        outcome = await other.capture(document, "wholesaler")
        kinds = {record.type for record in await other.exceptions()}
        assert ExceptionType.DUPLICATE_COMMISSIONING not in kinds
        assert ExceptionType.LOT_OR_EXPIRY_MISMATCH not in kinds
        assert outcome.exceptions == ()
        after = await other.traceability.get_states(shipment.serials)
        for serial in shipment.serials:
            commissioned = (before[serial].lot, before[serial].expiry)
            assert (after[serial].lot, after[serial].expiry) == commissioned
            assert after[serial].commissioned_at == before[serial].commissioned_at
    finally:
        await other.close()
