"""GS1 dates (AI 11, 12, 13, 15, 16, 17): YYMMDD, day 00 = the month's last day, sliding century."""

from __future__ import annotations

import calendar
from dataclasses import dataclass
from datetime import date

from epcis.errors import InvalidIdentifierError

__all__ = ["Gs1Date", "as_date", "format_yymmdd", "is_expired", "parse_yymmdd", "same_expiry"]


@dataclass(frozen=True, slots=True)
class Gs1Date:
    """A GS1 date as scanned (``raw``, 6 digits) and the calendar date it stands for."""

    raw: str
    date: date

    @property
    def day_unspecified(self) -> bool:
        """Day ``00``: the date is the month's last day, as GS1 reads it."""
        return self.raw.endswith("00")


def _century_year(yy: int, today: date) -> int:
    """GS1 GenSpecs 7.12 sliding window: 49 years back to 50 years ahead of ``today``."""
    current = today.year % 100
    difference = yy - current
    base = today.year - current
    if 51 <= difference <= 99:
        return base - 100 + yy
    if -99 <= difference <= -50:
        return base + 100 + yy
    return base + yy


def parse_yymmdd(raw: str, *, today: date | None = None) -> Gs1Date:
    """A YYMMDD GS1 date; the century is chosen relative to ``today`` (default: the real today)."""
    if len(raw) != 6 or not raw.isascii() or not raw.isdigit():
        raise InvalidIdentifierError(f"a GS1 date is YYMMDD, not {raw!r}")
    year = _century_year(int(raw[:2]), today or date.today())
    month, day = int(raw[2:4]), int(raw[4:6])
    if not 1 <= month <= 12:
        raise InvalidIdentifierError(f"GS1 date {raw} has no month {month}")
    last = calendar.monthrange(year, month)[1]
    if day > last:
        raise InvalidIdentifierError(f"GS1 date {raw}: {year}-{month:02d} has no day {day}")
    return Gs1Date(raw, date(year, month, day or last))


def format_yymmdd(value: date) -> str:
    """The YYMMDD form of a date (always with the real day, never ``00``)."""
    return f"{value.year % 100:02d}{value.month:02d}{value.day:02d}"


def as_date(value: Gs1Date | date | str, *, today: date | None = None) -> date:
    """The calendar date of a GS1 date, a date, a YYMMDD string or an ISO ``YYYY-MM-DD``."""
    if isinstance(value, Gs1Date):
        return value.date
    if isinstance(value, date):
        return value
    text = value.strip()
    if len(text) == 10 and text[4] == "-":
        try:
            return date.fromisoformat(text)
        except ValueError as error:
            raise InvalidIdentifierError(f"not a date: {value!r}") from error
    return parse_yymmdd(text, today=today).date


def same_expiry(
    first: Gs1Date | date | str, second: Gs1Date | date | str, *, today: date | None = None
) -> bool:
    """Whether two expiry dates are the same day (``250200`` equals ``2025-02-28``)."""
    return as_date(first, today=today) == as_date(second, today=today)


def is_expired(expiry: Gs1Date | date | str, *, today: date | None = None) -> bool:
    """Whether a product with this expiry date is expired on ``today`` (it is usable on the day)."""
    when = today or date.today()
    return as_date(expiry, today=when) < when
