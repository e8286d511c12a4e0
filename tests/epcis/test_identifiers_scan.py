"""Barcode scans (raw with GS, ``]d2``, HRI, Digital Link) and GS1 dates (standards.md 4.5)."""

from __future__ import annotations

from datetime import date

import pytest

from epcis.errors import InvalidIdentifierError
from epcis.identifiers import (
    ProductIdentifier,
    format_yymmdd,
    is_expired,
    parse_scan,
    parse_yymmdd,
    same_expiry,
)

TODAY = date(2025, 6, 1)
GS = "\x1d"
URN = "urn:epc:id:sgtin:030001.0012345.SN123"
DL = "https://id.gs1.org/01/00300010123455/21/SN123"


@pytest.mark.parametrize(
    "data",
    [
        "]d20100300010123455172503311" + f"0A123{GS}21SN123",
        "0100300010123455172503311" + f"0A123{GS}21SN123",
        f"{GS}01003000101234551725033121SN123{GS}10A123",
        "]C1010030001012345517250331" + f"21SN123{GS}10A123",
        "]Q3010030001012345517250331" + f"21SN123{GS}10A123",
        "(01)00300010123455(17)250331(10)A123(21)SN123",
        "(01) 00300010123455 (17) 250331 (10) A123 (21) SN123",
        "https://id.gs1.org/01/00300010123455/10/A123/21/SN123?17=250331",
        "https://example.com/pkg/01/00300010123455/21/SN123?17=250331&10=A123",
        "https://vrs.example.com/gtin/00300010123455/lot/A123/ser/SN123?exp=250331",
        "0100300010123455172503311" + "0A123<GS>21SN123",
    ],
)
def test_scan_forms_give_one_product_identifier(data: str) -> None:
    scanned = parse_scan(data, today=TODAY)
    assert scanned.gtin == "00300010123455"
    assert scanned.serial == "SN123"
    assert scanned.lot == "A123"
    assert scanned.expiry is not None
    assert scanned.expiry.raw == "250331"
    assert scanned.expiry.date == date(2025, 3, 31)
    assert scanned.sgtin_urn == URN
    assert scanned.digital_link == DL
    assert str(scanned) == URN


def test_serial_with_escapable_characters() -> None:
    scanned = parse_scan("]d20100300010123455" + "21A/B%C&D", today=TODAY)
    assert scanned.serial == "A/B%C&D"
    assert scanned.sgtin_urn == "urn:epc:id:sgtin:030001.0012345.A%2FB%25C%26D"
    assert scanned.digital_link.endswith("/21/A%2FB%25C%26D")


def test_gtin_12_scan_and_no_serial() -> None:
    scanned = parse_scan("(01)00300010123455(10)L1")
    assert scanned.serial is None
    assert scanned.digital_link == "https://id.gs1.org/01/00300010123455"
    with pytest.raises(InvalidIdentifierError, match="without serial"):
        _ = scanned.sgtin_urn


def test_unknown_company_prefix_falls_back_to_digital_link() -> None:
    # Prefix 02 is a restricted-circulation range: GS1's data has no company prefix length.
    scanned = ProductIdentifier(gtin="02000000000008", serial="X1")
    assert scanned.gcp_length is None
    assert scanned.epc == "https://id.gs1.org/01/02000000000008/21/X1"
    with pytest.raises(InvalidIdentifierError, match="prefix length unknown"):
        _ = scanned.sgtin_urn
    assert scanned.sgtin_urn_with(7) == "urn:epc:id:sgtin:2000000.000000.X1"


@pytest.mark.parametrize(
    "bad",
    [
        "",
        "(01)00300010123454(21)SN1",  # check digit
        "]d201003000101234552" + "1" + "SN 1",  # space is not cset 82
        "(17)250331(21)SN1",  # no GTIN
        "https://id.gs1.org/01/00300010123454/21/SN1",
        "https://example.com/not/a/link",
        "(01)00300010123455(17)251332",  # month 13
        "0100300010123455" + "21" + "A" * 21,  # serial longer than 20
    ],
)
def test_bad_scans_raise(bad: str) -> None:
    with pytest.raises(InvalidIdentifierError):
        parse_scan(bad, today=TODAY)


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("250200", date(2025, 2, 28)),
        ("240200", date(2024, 2, 29)),  # leap year
        ("000200", date(2000, 2, 29)),  # 2000 is a leap year (divisible by 400)
        ("250400", date(2025, 4, 30)),
        ("251200", date(2025, 12, 31)),
        ("250331", date(2025, 3, 31)),
    ],
)
def test_day_00_is_the_last_day_of_the_month(raw: str, expected: date) -> None:
    parsed = parse_yymmdd(raw, today=TODAY)
    assert parsed.date == expected
    assert parsed.raw == raw
    assert parsed.day_unspecified == raw.endswith("00")


@pytest.mark.parametrize(
    ("raw", "today", "year"),
    [
        ("750101", date(2025, 1, 1), 2075),  # 50 ahead: this century
        ("760101", date(2025, 1, 1), 1976),  # 51 ahead: previous century
        ("010101", date(2099, 1, 1), 2101),  # 98 behind: next century
        ("500101", date(2099, 1, 1), 2050),  # 49 behind: this century
    ],
)
def test_century_sliding_window(raw: str, today: date, year: int) -> None:
    assert parse_yymmdd(raw, today=today).date.year == year


@pytest.mark.parametrize("bad", ["250230", "250229", "251301", "25033", "2503a1", "250001"])
def test_bad_dates_raise(bad: str) -> None:
    with pytest.raises(InvalidIdentifierError):
        parse_yymmdd(bad, today=TODAY)


def test_expiry_comparisons() -> None:
    assert format_yymmdd(date(2025, 2, 28)) == "250228"
    assert same_expiry("250200", date(2025, 2, 28), today=TODAY)
    assert same_expiry(parse_yymmdd("250228", today=TODAY), "2025-02-28")
    assert not same_expiry("250200", "250227", today=TODAY)
    assert is_expired("250531", today=TODAY)
    assert not is_expired("250600", today=TODAY)
    assert not is_expired(date(2025, 6, 1), today=TODAY)  # usable on its expiry day
