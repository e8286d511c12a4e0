"""The DSCSA scenario files: valid, clean when captured party by party, and each faulty variant
caught as the exception it is about."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from epcis.reading import read_document
from service.commands.documents import validate_file
from service.exception_records import ExceptionType
from service.shipment_documents import build_shipment_document
from service.trace import trace
from tests.service.scenario_instances import SCENARIO, Instance, open_instance

FILES = sorted(SCENARIO.glob("*.xml")) + sorted((SCENARIO / "faulty").glob("*.xml"))
MANUFACTURER_DOC = SCENARIO / "1-manufacturer-to-wholesaler.xml"
WHOLESALER_OPS = SCENARIO / "2-wholesaler-operations.xml"
WHOLESALER_DOC = SCENARIO / "3-wholesaler-to-pharmacy.xml"
PHARMACY_OPS = SCENARIO / "4-pharmacy-operations.xml"
PACK = "urn:epc:id:sgtin:030001.0012345"
CASE = "urn:epc:id:sgtin:030001.1012345"
WHOLESALER = "urn:epc:id:sgln:039999.999999.0"
WAREHOUSE = "urn:epc:id:sgln:039999.345678.0"
PHARMACY = "urn:epc:id:sgln:038888.888888.0"


def test_there_are_eight_files_each_with_a_readme() -> None:
    assert len(FILES) == 8
    for directory in {path.parent for path in FILES}:
        readme = (directory / "README.md").read_text()
        assert all(path.name in readme for path in FILES if path.parent == directory)


@pytest.mark.parametrize("path", FILES, ids=lambda path: path.name)
def test_every_file_passes_dscsa_validate(path: Path) -> None:
    assert validate_file(path) == []
    assert read_document(path.read_bytes()).head.schema_version == "1.2"


@pytest.fixture
async def wholesaler(tmp_path: Path) -> AsyncIterator[Instance]:
    instance = await open_instance(tmp_path / "wholesaler")
    await instance.capture(MANUFACTURER_DOC, "manufacturer")
    await instance.capture(WHOLESALER_OPS, "operator")
    yield instance
    await instance.close()


@pytest.fixture
async def pharmacy(tmp_path: Path) -> AsyncIterator[Instance]:
    instance = await open_instance(tmp_path / "pharmacy")
    await instance.capture(WHOLESALER_DOC, "wholesaler")
    await instance.capture(PHARMACY_OPS, "operator")
    yield instance
    await instance.close()


async def test_the_wholesaler_sees_the_pallet_received_and_one_case_sold(
    wholesaler: Instance,
) -> None:
    assert await wholesaler.exceptions() == []
    states = await wholesaler.traceability.get_states(
        [f"{CASE}.2001", f"{CASE}.2002", f"{PACK}.1001", f"{PACK}.1005"]
    )
    sold, kept = states[f"{CASE}.2001"], states[f"{CASE}.2002"]
    assert (sold.status, sold.owner, sold.destination) == ("in_transit", PHARMACY, PHARMACY)
    assert (kept.status, kept.owner, kept.custodian) == ("received", WHOLESALER, WHOLESALER)
    assert states[f"{PACK}.1001"].status == "in_transit"
    assert states[f"{PACK}.1005"].parent == f"{CASE}.2002"
    assert states[f"{PACK}.1005"].lot == "LOT2026A"


async def test_the_pharmacy_has_a_clean_history_of_what_it_bought(pharmacy: Instance) -> None:
    assert await pharmacy.exceptions() == []
    dispensed = await trace(pharmacy.traceability, f"{PACK}.1001")
    assert dispensed.status == "dispensed"
    assert [e.biz_step for e in dispensed.events] == [
        "commissioning",
        "packing",
        "shipping",
        "receiving",
        "unpacking",
        "dispensing",
    ]
    (change,) = dispensed.ownership_changes
    assert change.seller is not None
    assert change.seller.name == "GS1 Drug Distributor"
    assert change.buyer is not None
    assert (change.buyer.address or "").startswith("5 Main St")
    assert (change.product_name, change.ndc, change.lot) == ("Epcistra", "0001-0123-45", "LOT2026A")
    on_shelf = await trace(pharmacy.traceability, f"{PACK}.1002")
    assert (on_shelf.status, on_shelf.state.custodian, on_shelf.state.parent) == (
        "received",
        PHARMACY,
        None,
    )


async def test_file_3_is_what_the_wholesaler_instance_builds(wholesaler: Instance) -> None:
    fixture = read_document(WHOLESALER_DOC.read_bytes())
    shipping = fixture.events[-1]
    assert shipping.event_id is not None
    built = await build_shipment_document(
        wholesaler.events, wholesaler.traceability, shipping.event_id
    )
    assert built.document.events == fixture.events
    assert fixture.head.header is not None
    assert built.document.head.header is not None
    assert built.document.head.header.master_data == fixture.head.header.master_data


@pytest.mark.parametrize(
    ("name", "before", "expected"),
    [
        ("missing-transaction-statement.xml", (), ExceptionType.MISSING_TRANSACTION_STATEMENT),
        ("never-commissioned-serial.xml", (), ExceptionType.NEVER_COMMISSIONED),
        ("lot-mismatch.xml", (MANUFACTURER_DOC,), ExceptionType.LOT_OR_EXPIRY_MISMATCH),
        (
            "received-not-shipped-to-us.xml",
            # One instance holding the whole chain; file 3 left out, see test below.
            (MANUFACTURER_DOC, WHOLESALER_OPS, PHARMACY_OPS),
            ExceptionType.RECEIVED_NOT_SHIPPED_TO_US,
        ),
    ],
)
async def test_each_faulty_variant_is_caught(
    tmp_path: Path, name: str, before: tuple[Path, ...], expected: ExceptionType
) -> None:
    instance = await open_instance(tmp_path / "instance")
    try:
        for path in before:
            await instance.capture(path)
        assert await instance.exceptions() == []
        outcome = await instance.capture(SCENARIO / "faulty" / name, "partner")
        assert {record.type for record in outcome.exceptions} == {expected}
        assert all(record.document_id for record in outcome.exceptions)
    finally:
        await instance.close()


async def test_one_instance_with_the_original_and_the_reduced_copy_sees_one_commissioning(
    tmp_path: Path,
) -> None:
    """The reduced copy of a commissioning event (same time, place, lot and expiry, fewer
    EPCs) in the same store as the original is the same commissioning, not a duplicate."""
    instance = await open_instance(tmp_path / "instance")
    try:
        for path in (MANUFACTURER_DOC, WHOLESALER_OPS, WHOLESALER_DOC):
            await instance.capture(path)
        assert await instance.exceptions() == []
    finally:
        await instance.close()
