"""Every row of the responder decision table, and the precedence when several apply."""

from __future__ import annotations

from dataclasses import replace
from datetime import date

import pytest

from verification.decisions import Decision, DecisionInput, SerialFacts, decide
from verification.messages import AdditionalInfo as Info
from verification.messages import FailureReason as Reason

TODAY = date(2026, 3, 1)
EXPIRY = date(2027, 6, 30)
CLEAN = SerialFacts(lot="L1", expiry=EXPIRY)


def _ask(found: SerialFacts | None, lot: str = "L1", expiry: date = EXPIRY) -> Decision:
    return decide(DecisionInput(lot=lot, expiry=expiry, found=found, today=TODAY))


@pytest.mark.parametrize(
    ("found", "lot", "expiry", "expected"),
    [
        (None, "L1", EXPIRY, Decision(False, Reason.NO_MATCH_GTIN_SERIAL)),
        (CLEAN, "L1", EXPIRY, Decision(True)),
        (CLEAN, "L2", EXPIRY, Decision(False, Reason.NO_MATCH_LOT)),
        (CLEAN, "L1", date(2027, 6, 29), Decision(False, Reason.NO_MATCH_EXPIRY)),
        (CLEAN, "L2", date(2027, 6, 29), Decision(False, Reason.NO_MATCH_LOT_EXPIRY)),
        (
            replace(CLEAN, decommissioned=True),
            "L1",
            EXPIRY,
            Decision(False, Reason.NOT_FOR_REDISTRIBUTION),
        ),
        (
            replace(CLEAN, destroyed=True),
            "L1",
            EXPIRY,
            Decision(False, Reason.NOT_FOR_REDISTRIBUTION),
        ),
        (
            replace(CLEAN, dispensed=True),
            "L1",
            EXPIRY,
            Decision(False, Reason.NOT_FOR_REDISTRIBUTION),
        ),
        (replace(CLEAN, recalled=True), "L1", EXPIRY, Decision(True, None, Info.RECALLED)),
        (
            replace(CLEAN, expiry=date(2026, 2, 28)),
            "L1",
            date(2026, 2, 28),
            Decision(True, None, Info.EXPIRED),
        ),
        (replace(CLEAN, suspect=True), "L1", EXPIRY, Decision(True, None, Info.SUSPECT)),
        (replace(CLEAN, quarantined=True), "L1", EXPIRY, Decision(True, None, Info.SUSPECT)),
        (
            replace(CLEAN, illegitimate=True),
            "L1",
            EXPIRY,
            Decision(False, Reason.NOT_FOR_REDISTRIBUTION, Info.ILLEGITIMATE),
        ),
    ],
)
def test_table_rows(found: SerialFacts | None, lot: str, expiry: date, expected: Decision) -> None:
    assert _ask(found, lot, expiry) == expected


def test_expiry_day_is_still_valid() -> None:
    assert _ask(replace(CLEAN, expiry=TODAY), "L1", TODAY) == Decision(True)


def test_unrecorded_lot_or_expiry_cannot_match() -> None:
    assert _ask(replace(CLEAN, lot=None)).reason is Reason.NO_MATCH_LOT
    assert _ask(replace(CLEAN, expiry=None)).reason is Reason.NO_MATCH_EXPIRY


def test_mismatch_wins_over_status() -> None:
    found = replace(CLEAN, dispensed=True, recalled=True, illegitimate=True)
    assert _ask(found, lot="L2") == Decision(False, Reason.NO_MATCH_LOT)


def test_end_of_life_carries_the_strongest_flag() -> None:
    found = replace(CLEAN, dispensed=True, recalled=True, suspect=True)
    assert _ask(found) == Decision(False, Reason.NOT_FOR_REDISTRIBUTION, Info.RECALLED)


@pytest.mark.parametrize(
    ("flags", "info"),
    [
        ({"illegitimate": True, "recalled": True}, Info.ILLEGITIMATE),
        ({"recalled": True, "suspect": True}, Info.RECALLED),
        ({"suspect": True, "expiry": date(2026, 1, 1)}, Info.SUSPECT),
        ({"quarantined": True, "expiry": date(2026, 1, 1)}, Info.SUSPECT),
    ],
)
def test_additional_info_precedence(flags: dict[str, object], info: Info) -> None:
    found = replace(CLEAN, **flags)  # type: ignore[arg-type]
    assert _ask(found, expiry=found.expiry or EXPIRY).info is info
