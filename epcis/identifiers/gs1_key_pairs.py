"""A GS1 key with its key qualifiers as (AI, value) pairs: the form every identifier syntax maps to.

EPC URNs, Digital Link URIs and element strings all reduce to the same tuple, e.g.
``(("01", "00300010123455"), ("21", "SN1"))``, primary key first and qualifiers in the
Digital Link order. Values are raw (unescaped) and validated against the syntax dictionary.
"""

from __future__ import annotations

from collections.abc import Callable

from epcis.errors import InvalidIdentifierError
from epcis.identifiers.charsets import check_cset39, check_cset82
from epcis.identifiers.gs1_keys import (
    company_prefix_length,
    normalize_gtin,
    validate_gln,
    validate_key,
    validate_sscc,
)

__all__ = [
    "PRIMARY_KEYS",
    "QUALIFIERS",
    "KeyPairs",
    "identity_pairs",
    "key_company_prefix_length",
    "key_pairs_from_values",
    "validate_pairs",
]

KeyPairs = tuple[tuple[str, str], ...]


def _digits_with_tail(
    head_length: int, tail_max: int, tail: Callable[[str], object]
) -> Callable[[str], str]:
    def check(value: str) -> str:
        validate_key(value[:head_length], head_length, "GS1 key")
        rest = value[head_length:]
        if len(rest) > tail_max:
            raise InvalidIdentifierError(f"serial part longer than {tail_max}: {value!r}")
        if rest:
            tail(rest)
        return value

    return check


def _numeric(max_length: int, what: str) -> Callable[[str], str]:
    def check(value: str) -> str:
        if not 1 <= len(value) <= max_length or not value.isascii() or not value.isdigit():
            raise InvalidIdentifierError(f"{what} must be 1 to {max_length} digits: {value!r}")
        return value

    return check


def _cset82(max_length: int, what: str) -> Callable[[str], str]:
    return lambda value: check_cset82(value, what, max_length)


def _grai(value: str) -> str:
    if value[:1] != "0":
        raise InvalidIdentifierError(f"a GRAI starts with a 0 digit: {value!r}")
    _digits_with_tail(13, 16, _cset82(16, "GRAI serial"))(value[1:])
    return value


def _itip(value: str) -> str:
    validate_key(value[:14], 14, "ITIP GTIN")
    pieces = value[14:]
    if len(pieces) != 4 or not pieces.isascii() or not pieces.isdigit():
        raise InvalidIdentifierError(f"an ITIP ends in 4 digits of piece and total: {value!r}")
    piece, total = int(pieces[:2]), int(pieces[2:])
    if not 1 <= piece <= total:
        raise InvalidIdentifierError(f"ITIP piece {piece} of total {total}: {value!r}")
    return value


def _cpid(value: str) -> str:
    return check_cset39(value, "CPID", 30)


# Primary key AI -> validator (returns the normalised value).
PRIMARY_KEYS: dict[str, Callable[[str], str]] = {
    "00": validate_sscc,
    "01": normalize_gtin,
    "253": _digits_with_tail(13, 17, _cset82(17, "GDTI serial")),
    "255": _digits_with_tail(13, 12, _numeric(12, "GCN serial")),
    "401": _cset82(30, "GINC"),
    "402": lambda value: validate_key(value, 17, "GSIN"),
    "414": validate_gln,
    "417": validate_gln,
    "8003": _grai,
    "8004": _cset82(30, "GIAI"),
    "8006": _itip,
    "8010": _cpid,
    "8017": lambda value: validate_key(value, 18, "GSRN-P"),
    "8018": lambda value: validate_key(value, 18, "GSRN"),
}
# Key qualifier AI -> validator.
QUALIFIERS: dict[str, Callable[[str], str]] = {
    "10": _cset82(20, "lot"),
    "21": _cset82(20, "serial"),
    "22": _cset82(20, "consumer product variant"),
    "235": _cset82(28, "third-party controlled serial"),
    "254": _cset82(20, "GLN extension"),
    "7040": _cset82(4, "GS1 UIC with extension 1"),
    "8011": _numeric(12, "CPID serial"),
    "8019": _numeric(10, "service relation instance"),
}
# Allowed qualifier sequences per primary key (syntax dictionary ``dlpkey``): any
# subsequence of one alternative, in that order.
_SEQUENCES: dict[str, tuple[tuple[str, ...], ...]] = {
    "01": (("22", "10", "21"), ("235",)),
    "8006": (("22", "10", "21"),),
    "414": (("254",), ("7040",)),
    "417": (("7040",),),
    "8004": (("7040",),),
    "8010": (("8011",),),
    "8017": (("8019",),),
    "8018": (("8019",),),
}
# Where the company prefix starts in the primary key's value.
_PREFIX_OFFSET = {"00": 1, "01": 1, "8003": 1, "8006": 1}


def validate_pairs(pairs: KeyPairs) -> KeyPairs:
    """``pairs`` validated, with the primary key normalised (GTIN to 14 digits)."""
    if not pairs:
        raise InvalidIdentifierError("no GS1 key")
    (ai, value), qualifiers = pairs[0], pairs[1:]
    validator = PRIMARY_KEYS.get(ai)
    if validator is None:
        raise InvalidIdentifierError(f"AI {ai} is not a GS1 primary key")
    names = tuple(name for name, _ in qualifiers)
    if names and not any(_is_subsequence(names, seq) for seq in _SEQUENCES.get(ai, ())):
        raise InvalidIdentifierError(f"key qualifiers {', '.join(names)} not allowed after AI {ai}")
    out = [(ai, validator(value))]
    for name, qualifier in qualifiers:
        out.append((name, QUALIFIERS[name](qualifier)))
    return tuple(out)


def _is_subsequence(names: tuple[str, ...], sequence: tuple[str, ...]) -> bool:
    position = 0
    for name in names:
        try:
            position = sequence.index(name, position) + 1
        except ValueError:
            return False
    return True


def identity_pairs(pairs: KeyPairs) -> KeyPairs:
    """The pairs naming the same object at its finest level, as the CBV event hash does.

    The consumer product variant (22) is dropped, and so is the lot (10) when a serial (21)
    names the instance: ``/01/g/10/L/21/S`` and ``urn:epc:id:sgtin`` of g and S are one EPC.
    """
    names = {name for name, _ in pairs[1:]}
    if "22" not in names and not ("21" in names and "10" in names):
        return pairs
    drop = {"22", "10"} if "21" in names else {"22"}
    return (pairs[0], *(pair for pair in pairs[1:] if pair[0] not in drop))


def key_company_prefix_length(pairs: KeyPairs) -> int | None:
    """The GS1 Company Prefix length of the primary key, when GS1's data knows it."""
    ai, value = pairs[0]
    return company_prefix_length(value[_PREFIX_OFFSET.get(ai, 0) :])


def key_pairs_from_values(values: dict[str, str]) -> KeyPairs:
    """The GS1 key in a set of AI values (e.g. one barcode), qualifiers in Digital Link order.

    The primary key is the first AI of ``values`` that is one; AIs that do not qualify it
    (dates, quantities...) are left out.
    """
    primary = next((ai for ai in values if ai in PRIMARY_KEYS), None)
    if primary is None:
        raise InvalidIdentifierError(f"no GS1 primary key among AIs {', '.join(values)}")
    qualifiers: list[tuple[str, str]] = []
    for sequence in _SEQUENCES.get(primary, ()):
        qualifiers = [(ai, values[ai]) for ai in sequence if ai in values]
        if qualifiers:
            break
    return validate_pairs(((primary, values[primary]), *qualifiers))
