"""GS1 keys as digit strings: GTIN-8/12/13/14 to 14 digits, GLN, SSCC, company prefix lengths."""

from __future__ import annotations

from functools import lru_cache

from biip.gs1_prefixes import GS1CompanyPrefix

from epcis.errors import InvalidIdentifierError
from epcis.identifiers.check_digit import has_valid_check_digit

__all__ = [
    "company_prefix_length",
    "normalize_gtin",
    "validate_gln",
    "validate_key",
    "validate_sscc",
]

_GTIN_LENGTHS = frozenset({8, 12, 13, 14})


def validate_key(value: str, length: int, what: str) -> str:
    """``value`` if it is ``length`` ASCII digits ending in a correct check digit."""
    if len(value) != length or not value.isascii() or not value.isdigit():
        raise InvalidIdentifierError(f"{what} must be {length} digits: {value!r}")
    if not has_valid_check_digit(value):
        raise InvalidIdentifierError(f"{what} has a wrong check digit: {value!r}")
    return value


def normalize_gtin(value: str) -> str:
    """A GTIN-8, -12, -13 or -14 as the 14-digit form EPCIS and Digital Link use."""
    value = value.strip()
    if len(value) not in _GTIN_LENGTHS:
        raise InvalidIdentifierError(f"a GTIN has 8, 12, 13 or 14 digits: {value!r}")
    return validate_key(value.zfill(14), 14, "GTIN")


def validate_gln(value: str) -> str:
    """A 13-digit GLN with a correct check digit."""
    return validate_key(value, 13, "GLN")


def validate_sscc(value: str) -> str:
    """An 18-digit SSCC with a correct check digit."""
    return validate_key(value, 18, "SSCC")


@lru_cache(maxsize=4096)
def _prefix_length(digits: str) -> int | None:
    prefix = GS1CompanyPrefix.extract(digits)
    if prefix is None:
        return None
    length = len(prefix.value)
    # EPC URNs only exist for 6..12 digit prefixes; anything else cannot be split.
    return length if 6 <= length <= 12 else None


def company_prefix_length(digits: str) -> int | None:
    """Length of the GS1 Company Prefix that ``digits`` start with, from GS1's allocation data.

    ``digits`` start at the prefix: a GLN, or a GTIN-14/SSCC without its first digit. The
    data (bundled with biip) knows allocations of many GS1 member organisations, not all:
    ``None`` means unknown, and callers must then keep a form that does not need the length.
    """
    head = digits[:13]
    if not head.isascii() or not head.isdigit():
        end = next((i for i, c in enumerate(head) if not ("0" <= c <= "9")), len(head))
        head = head[:end]
    if not head:
        return None
    return _prefix_length(head)
