"""GS1 check digits, GTIN/GLN/SSCC validation and NDC <-> GTIN (standards.md 4.1-4.3)."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from epcis.errors import InvalidIdentifierError
from epcis.identifiers import (
    check_digit,
    company_prefix_length,
    gtin_to_ndc,
    gtin_to_ndc10_digits,
    has_valid_check_digit,
    ndc_company_prefix,
    ndc_to_gtin,
    normalize_gtin,
    parse_ndc,
    validate_gln,
    validate_sscc,
    with_check_digit,
)


@pytest.mark.parametrize(
    ("body", "expected"),
    [
        ("0030001012345", "5"),  # the worked example of 4.1
        ("1061414107346", "4"),
        ("061414107346", "7"),
        ("40300011234567890", "1"),
        ("04012345000000333", "8"),
    ],
)
def test_check_digit_worked_examples(body: str, expected: str) -> None:
    assert check_digit(body) == expected
    assert has_valid_check_digit(body + expected)


@given(st.text(alphabet="0123456789", min_size=1, max_size=17))
def test_leading_zeros_do_not_change_the_check_digit(body: str) -> None:
    assert check_digit(body) == check_digit("000" + body)
    key = with_check_digit(body)
    assert has_valid_check_digit(key)
    wrong = key[:-1] + str((int(key[-1]) + 1) % 10)
    assert not has_valid_check_digit(wrong)


@pytest.mark.parametrize(
    ("gtin", "fourteen"),
    [
        ("300010123455", "00300010123455"),  # GTIN-12
        ("0300010123455", "00300010123455"),  # GTIN-13
        ("00300010123455", "00300010123455"),
        ("96385074", "00000096385074"),  # GTIN-8
        (" 10614141073464 ", "10614141073464"),
    ],
)
def test_gtins_normalise_to_14_digits(gtin: str, fourteen: str) -> None:
    assert normalize_gtin(gtin) == fourteen


@pytest.mark.parametrize("bad", ["00300010123454", "0030001012345", "0030001012345X", "", "३००"])
def test_bad_gtins_raise(bad: str) -> None:
    with pytest.raises(InvalidIdentifierError):
        normalize_gtin(bad)


def test_gln_and_sscc() -> None:
    assert validate_gln("0614141073467") == "0614141073467"
    assert validate_sscc("403000112345678901") == "403000112345678901"
    with pytest.raises(InvalidIdentifierError, match="check digit"):
        validate_gln("0614141073468")
    with pytest.raises(InvalidIdentifierError):
        validate_sscc("40300011234567890")


def test_company_prefix_length_from_gs1_data() -> None:
    assert company_prefix_length("0300010123455") == 6  # GS1 US NDC labeler 0001
    assert company_prefix_length("0614141073467") == 7
    assert company_prefix_length("") is None


@pytest.mark.parametrize(
    ("ndc", "indicator", "gtin"),
    [
        ("0001-0123-45", 0, "00300010123455"),
        ("0001-0123-45", 5, "50300010123450"),
        ("12345-678-90", 0, "00312345678906"),
        ("12345-6789-0", 0, "00312345678906"),  # 5-4-1: same ten digits, same GTIN
    ],
)
def test_ndc_to_gtin(ndc: str, indicator: int, gtin: str) -> None:
    assert ndc_to_gtin(ndc, indicator) == gtin


def test_ndc_segments_and_ndc11() -> None:
    assert parse_ndc("0001-0123-45").ndc11 == "00001-0123-45"
    assert parse_ndc("12345-678-90").ndc11 == "12345-0678-90"
    assert parse_ndc("12345-6789-0").ndc11 == "12345-6789-00"
    assert parse_ndc("12345-6789-0").configuration == "5-4-1"
    assert ndc_company_prefix("0001-0123-45") == "030001"
    assert ndc_company_prefix("12345-678-90") == "0312345"


def test_gtin_to_ndc_needs_the_configuration() -> None:
    assert gtin_to_ndc10_digits("50300010123450") == "0001012345"
    assert gtin_to_ndc("00312345678906", "5-3-2").ndc10 == "12345-678-90"
    assert gtin_to_ndc("00312345678906", "5-4-1").ndc10 == "12345-6789-0"
    with pytest.raises(InvalidIdentifierError):
        gtin_to_ndc10_digits("10614141073464")  # not a 03 (NDC) GTIN
    with pytest.raises(InvalidIdentifierError):
        gtin_to_ndc("00312345678906", "3-3-4")


@pytest.mark.parametrize("bad", ["0001012345", "001-0123-45", "0001-0123-456", "abcd-0123-45"])
def test_bad_ndcs_raise(bad: str) -> None:
    with pytest.raises(InvalidIdentifierError):
        parse_ndc(bad)
