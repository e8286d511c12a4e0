"""Investigation outcomes: cleared and illegitimate determinations on exception records, their
finality, and what they do to holds, serial status and verification answers."""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import replace
from datetime import UTC, date, datetime
from typing import Any

import pytest

from service.exception_records import (
    Determination,
    ExceptionRecord,
    ExceptionStatus,
    ExceptionType,
    Finding,
    Hold,
    Resolution,
)
from service.recalls import effective_statuses
from service.serial_state import SerialStateProjection, Status
from service.sqlite_traceability_store import SQLiteTraceabilityStore
from service.traceability_store import ExceptionFilter, resolution_from_dict, resolution_to_dict
from service.verification_responder import LocalResponder
from tests.service.dscsa_scenario import ITEM_GTIN, ITEMS, facts, scenario_events
from verification.decisions import DecisionInput, decide
from verification.messages import AdditionalInfo, FailureReason

NOW = datetime(2026, 3, 3, tzinfo=UTC)


def _record(kind: ExceptionType = ExceptionType.LOT_OR_EXPIRY_MISMATCH) -> ExceptionRecord:
    return ExceptionRecord.of(Finding(kind, "d", (ITEMS[1],)), NOW)


def _with(record: ExceptionRecord, *resolutions: Resolution) -> ExceptionRecord:
    return replace(record, resolutions=resolutions)


def _resolution(record: ExceptionRecord, **fields: Any) -> Resolution:
    return Resolution(record.exception_id, "n", "ops", NOW, **fields)


def test_cleared_releases_the_hold_like_any_resolution() -> None:
    record = _record()
    assert record.hold is Hold.SUSPECT
    cleared = _with(record, _resolution(record, determination=Determination.CLEARED))
    assert (cleared.hold, cleared.status) == (Hold.NONE, ExceptionStatus.RESOLVED)
    assert cleared.determination is Determination.CLEARED


def test_illegitimate_holds_whatever_follows() -> None:
    record = _record()
    determined = _resolution(record, determination=Determination.ILLEGITIMATE, form3911="IN-1")
    later = _with(record, determined, _resolution(record), _resolution(record, form3911="IN-2"))
    assert later.hold is Hold.ILLEGITIMATE
    assert later.illegitimate == determined
    assert later.determination is Determination.ILLEGITIMATE
    assert later.form3911 == "IN-2"


def test_a_data_gap_without_a_hold_can_still_be_determined_illegitimate() -> None:
    record = _record(ExceptionType.DATA_WITHOUT_PRODUCT)
    assert record.hold is Hold.NONE
    determined = _resolution(record, determination=Determination.ILLEGITIMATE)
    assert _with(record, determined).hold is Hold.ILLEGITIMATE


@pytest.mark.parametrize(
    ("fields", "refused"),
    [
        ({"determination": Determination.CLEARED}, True),
        ({"determination": Determination.ILLEGITIMATE}, True),
        ({"status": ExceptionStatus.OPEN}, True),
        ({}, False),
        ({"form3911": "IN-9"}, False),
    ],
)
def test_after_an_illegitimate_determination_only_notes_are_accepted(
    fields: dict[str, Any], refused: bool
) -> None:
    record = _record()
    final = _with(record, _resolution(record, determination=Determination.ILLEGITIMATE))
    assert (final.refusal(_resolution(record, **fields)) is not None) is refused


def test_a_form3911_number_needs_an_illegitimate_determination() -> None:
    record = _record()
    assert record.refusal(_resolution(record, form3911="IN-1")) is not None
    with_it = _resolution(record, determination=Determination.ILLEGITIMATE, form3911="IN-1")
    assert record.refusal(with_it) is None


def test_a_determination_cannot_leave_the_exception_open() -> None:
    with pytest.raises(ValueError, match="determination"):
        Resolution("e", "n", "ops", NOW, ExceptionStatus.OPEN, Determination.CLEARED)


def test_stored_form_keeps_the_determination_and_reads_older_records() -> None:
    resolution = Resolution("e", "n", "ops", NOW, determination=Determination.ILLEGITIMATE)
    stored = resolution_to_dict(resolution)
    assert stored["determination"] == "illegitimate"
    assert resolution_from_dict(stored) == resolution
    older = {k: v for k, v in stored.items() if k not in ("determination", "form3911")}
    assert resolution_from_dict(older) == Resolution("e", "n", "ops", NOW)


@pytest.fixture
async def store(tmp_path: Any) -> AsyncIterator[SQLiteTraceabilityStore]:
    backend = SQLiteTraceabilityStore(tmp_path / "trace.sqlite")
    await backend.open()
    await SerialStateProjection(backend).apply(facts(scenario_events()))
    yield backend
    await backend.close()


async def _determine_illegitimate(store: SQLiteTraceabilityStore) -> ExceptionRecord:
    record = _record()
    await store.add_exceptions([record])
    determined = _resolution(record, determination=Determination.ILLEGITIMATE, form3911="IN-7")
    found = await store.add_resolution(determined)
    assert found is not None
    return found


async def test_status_and_holds_show_the_determination(store: SQLiteTraceabilityStore) -> None:
    await _determine_illegitimate(store)
    assert await store.holds_for([ITEMS[1]]) == {ITEMS[1]: {Hold.ILLEGITIMATE}}
    states = list((await store.get_states([ITEMS[1], ITEMS[2]])).values())
    statuses = await effective_statuses(store, states)
    assert statuses == {ITEMS[1]: Status.ILLEGITIMATE, ITEMS[2]: Status.PACKED}
    only = ExceptionFilter(determination=Determination.ILLEGITIMATE)
    assert [r.form3911 for r in await store.list_exceptions(only)] == ["IN-7"]
    assert await store.list_exceptions(ExceptionFilter(determination=Determination.CLEARED)) == []


async def test_the_responder_answers_illegitimate_from_the_store(
    store: SQLiteTraceabilityStore,
) -> None:
    responder = LocalResponder(store, ["030001"], "0300011111116")
    serial = ITEMS[1].rsplit(".", 1)[1]
    before = await responder.facts(ITEM_GTIN, serial)
    assert before is not None
    assert before.illegitimate is False
    await _determine_illegitimate(store)
    found = await responder.facts(ITEM_GTIN, serial)
    assert found is not None
    assert found.illegitimate is True
    decision = decide(DecisionInput("L1", date(2027, 6, 30), found, date(2026, 3, 3)))
    assert decision.verified is False
    assert decision.reason is FailureReason.NOT_FOR_REDISTRIBUTION
    assert decision.info is AdditionalInfo.ILLEGITIMATE
