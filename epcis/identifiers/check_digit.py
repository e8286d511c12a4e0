"""The GS1 mod-10 check digit (GenSpecs 7.9.1) shared by GTIN, GLN, SSCC, GSIN and GSRN."""

from __future__ import annotations

__all__ = ["check_digit", "has_valid_check_digit", "with_check_digit"]

# Digit sums for weight 3, indexed by the digit: cheaper than int() and a multiply per digit.
_TIMES_THREE = {str(d): 3 * d for d in range(10)}
_TIMES_ONE = {str(d): d for d in range(10)}


def check_digit(body: str) -> str:
    """The check digit for ``body`` (all digits of the key except the check digit).

    Weights run 3, 1, 3, ... from the rightmost digit, so leading zeros do not matter.
    """
    total = 0
    weights = (_TIMES_THREE, _TIMES_ONE)
    for position, digit in enumerate(reversed(body)):
        total += weights[position & 1][digit]
    return str(-total % 10)


def has_valid_check_digit(key: str) -> bool:
    """Whether the last digit of the all-digit ``key`` is its GS1 check digit."""
    return len(key) > 1 and key.isascii() and key.isdigit() and check_digit(key[:-1]) == key[-1]


def with_check_digit(body: str) -> str:
    """``body`` followed by its check digit."""
    return body + check_digit(body)
