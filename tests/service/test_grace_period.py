"""Grace-period jobs on the scenario files: product without data, data without product."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import UTC, date, datetime
from pathlib import Path

import pytest

from service.exception_records import ExceptionStatus, ExceptionType
from service.grace_period import (
    GracePolicy,
    OurParties,
    add_business_days,
    run_grace_period_checks,
)
from service.settings import Settings
from service.traceability_store import ExceptionFilter
from tests.service.scenario_instances import SCENARIO, Instance, open_instance

CASE = "urn:epc:id:sgtin:030001.1012345.2001"
PHARMACY_US = OurParties(gln="0388888888881")
WHOLESALER_US = OurParties(company_prefixes=("039999",))


def _at(day: int, hour: int) -> datetime:
    return datetime(2026, 3, day, hour, tzinfo=UTC)


def test_business_days_skip_weekends_and_holidays() -> None:
    friday = datetime(2026, 3, 6, 14, tzinfo=UTC)
    assert add_business_days(friday, 3) == datetime(2026, 3, 11, 14, tzinfo=UTC)
    assert add_business_days(friday, 3, {date(2026, 3, 9)}) == datetime(2026, 3, 12, 14, tzinfo=UTC)
    saturday = datetime(2026, 3, 7, 9, tzinfo=UTC)
    assert add_business_days(saturday, 1) == datetime(2026, 3, 9, 9, tzinfo=UTC)
    assert add_business_days(friday, 0) == friday


def test_our_parties_by_gln_prefix_or_identifier() -> None:
    assert PHARMACY_US.includes("urn:epc:id:sgln:038888.888888.0")
    assert PHARMACY_US.includes("urn:epc:id:pgln:038888.888888")
    assert PHARMACY_US.includes("urn:epc:id:sgln:038888.888888.7")  # a sub-location of ours
    assert not PHARMACY_US.includes("urn:epc:id:sgln:039999.999999.0")
    assert not PHARMACY_US.includes("not an identifier")
    assert not PHARMACY_US.includes(None)
    assert WHOLESALER_US.includes("urn:epc:id:sgln:039999.345678.0")
    assert OurParties(identifiers=frozenset({"x:y"})).includes("x:y")
    settings = Settings(gln="0388888888881", company_prefixes=("0399999",))
    ours = OurParties.from_settings(settings)
    assert ours.includes("urn:epc:id:sgln:038888.888888.0")
    assert ours.includes("urn:epc:id:sgln:0399999.99999.0")


@pytest.fixture
async def pharmacy(tmp_path: Path) -> AsyncIterator[Instance]:
    instance = await open_instance(tmp_path / "pharmacy")
    yield instance
    await instance.close()


async def _open(instance: Instance, kind: ExceptionType) -> list[str]:
    query = ExceptionFilter(type=kind, status=ExceptionStatus.OPEN)
    return [r.exception_id for r in await instance.traceability.list_exceptions(query)]


async def test_product_without_data_after_three_business_days(pharmacy: Instance) -> None:
    # The pharmacy records its receipt of case 2001 (Friday), but the wholesaler's data is late.
    await pharmacy.capture(SCENARIO / "4-pharmacy-operations.xml", "operator")
    checks = (pharmacy.events, pharmacy.traceability, PHARMACY_US)
    early = await run_grace_period_checks(*checks, now=_at(11, 13))
    assert early.recorded == ()
    due = await run_grace_period_checks(*checks, now=_at(11, 14))
    (record,) = due.recorded
    assert record.type is ExceptionType.PRODUCT_WITHOUT_DATA
    assert record.identifiers == (CASE,)
    assert record.document_id is not None
    again = await run_grace_period_checks(*checks, now=_at(12, 9))
    assert again.recorded == ()
    # The transaction information arrives: the next run resolves the exception.
    await pharmacy.capture(SCENARIO / "3-wholesaler-to-pharmacy.xml", "wholesaler")
    answered = await run_grace_period_checks(*checks, now=_at(12, 10))
    assert answered.resolved == (record.exception_id,)
    assert await _open(pharmacy, ExceptionType.PRODUCT_WITHOUT_DATA) == []
    stored = await pharmacy.traceability.get_exception(record.exception_id)
    assert stored is not None
    assert stored.resolutions[-1].resolved_by == "system"


async def test_a_longer_grace_period_waits_longer(pharmacy: Instance) -> None:
    await pharmacy.capture(SCENARIO / "4-pharmacy-operations.xml", "operator")
    policy = GracePolicy(business_days=5)
    checks = (pharmacy.events, pharmacy.traceability, PHARMACY_US)
    assert (await run_grace_period_checks(*checks, now=_at(12, 14), policy=policy)).recorded == ()
    assert len((await run_grace_period_checks(*checks, now=_at(13, 14), policy=policy)).recorded)


async def test_data_without_product_after_three_business_days(pharmacy: Instance) -> None:
    # The wholesaler's data for case 2001 (shipped Thursday 15:20) arrives; the case does not.
    await pharmacy.capture(SCENARIO / "3-wholesaler-to-pharmacy.xml", "wholesaler")
    checks = (pharmacy.events, pharmacy.traceability, PHARMACY_US)
    assert (await run_grace_period_checks(*checks, now=_at(10, 15))).recorded == ()
    (record,) = (await run_grace_period_checks(*checks, now=_at(10, 16))).recorded
    assert record.type is ExceptionType.DATA_WITHOUT_PRODUCT
    assert record.identifiers == (CASE,)
    await pharmacy.capture(SCENARIO / "4-pharmacy-operations.xml", "operator")
    answered = await run_grace_period_checks(*checks, now=_at(10, 17))
    assert answered.resolved == (record.exception_id,)
    assert await _open(pharmacy, ExceptionType.DATA_WITHOUT_PRODUCT) == []


async def test_received_inbound_and_our_own_outbound_shipments_are_not_flagged(
    tmp_path: Path,
) -> None:
    wholesaler = await open_instance(tmp_path / "wholesaler")
    try:
        await wholesaler.capture(SCENARIO / "1-manufacturer-to-wholesaler.xml", "manufacturer")
        await wholesaler.capture(SCENARIO / "2-wholesaler-operations.xml", "operator")
        report = await run_grace_period_checks(
            wholesaler.events, wholesaler.traceability, WHOLESALER_US, now=_at(30, 12)
        )
        assert report.recorded == ()
        # Someone else's receipts and shipments are none of these checks' business.
        other = await run_grace_period_checks(
            wholesaler.events, wholesaler.traceability, PHARMACY_US, now=_at(30, 12)
        )
        assert [r.type for r in other.recorded] == [ExceptionType.DATA_WITHOUT_PRODUCT]
    finally:
        await wholesaler.close()
