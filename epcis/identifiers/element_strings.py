"""GS1 element strings: barcode data (FNC1/GS separated, symbology identifier) and the HRI form."""

from __future__ import annotations

from biip import ParseError
from biip.gs1_messages import GS1Message

from epcis.errors import InvalidIdentifierError
from epcis.identifiers.epc_uri import pairs_from_urn, urn_from_pairs
from epcis.identifiers.gs1_key_pairs import (
    KeyPairs,
    identity_pairs,
    key_company_prefix_length,
    key_pairs_from_values,
)

__all__ = [
    "GROUP_SEPARATOR",
    "element_string_from_pairs",
    "element_string_to_urn",
    "pairs_from_element_string",
    "parse_element_strings",
    "urn_to_element_string",
]

GROUP_SEPARATOR = "\x1d"
# AIs of predefined length by their first two digits (GenSpecs figure 7.8.5-2): no GS after.
_PREDEFINED = frozenset("00 01 02 03 04 11 12 13 14 15 16 17 18 19 20 31 32 33 34 35 36 41".split())
# Keyboard-wedge scanners and people typing test data spell the GS character in these ways.
_GS_SPELLINGS = ("<GS>", "{GS}", "\\x1d", "\u241d")


def parse_element_strings(data: str) -> dict[str, str]:
    """AI -> value of barcode data: raw (``]d2``/``]C1``/``]Q3`` optional) or ``(01)..`` HRI."""
    text = data.strip()
    for spelling in _GS_SPELLINGS:
        text = text.replace(spelling, GROUP_SEPARATOR)
    if text.startswith("]"):
        text = text[3:]  # the symbology identifier: ]d2 GS1 DataMatrix, ]C1 GS1-128, ]Q3 QR
    text = text.lstrip(GROUP_SEPARATOR)  # FNC1 in first position
    if not text:
        raise InvalidIdentifierError(f"no GS1 element strings in {data!r}")
    try:
        message = GS1Message.parse_hri(text) if text.startswith("(") else GS1Message.parse(text)
    except (ParseError, ValueError) as error:
        raise InvalidIdentifierError(f"not GS1 element strings: {error}") from error
    values: dict[str, str] = {}
    for element in message.element_strings:
        if element.ai.ai in values:
            raise InvalidIdentifierError(f"AI {element.ai.ai} twice in {data!r}")
        values[element.ai.ai] = element.value
    return values


def pairs_from_element_string(data: str) -> KeyPairs:
    """The GS1 key (with qualifiers) carried by barcode data."""
    return key_pairs_from_values(parse_element_strings(data))


def element_string_from_pairs(pairs: KeyPairs, *, hri: bool = True) -> str:
    """``(01)..(21)..`` (``hri``) or raw data with GS after each variable-length value."""
    if hri:
        return "".join(f"({ai}){value}" for ai, value in pairs)
    parts = []
    for index, (ai, value) in enumerate(pairs):
        last = index == len(pairs) - 1
        separator = "" if last or ai[:2] in _PREDEFINED else GROUP_SEPARATOR
        parts.append(f"{ai}{value}{separator}")
    return "".join(parts)


def urn_to_element_string(urn: str, *, hri: bool = True) -> str:
    """The element string of a GS1 EPC URN, e.g. ``(01)00300010123455(21)11``."""
    pairs = pairs_from_urn(urn.strip())
    if pairs is None:
        raise InvalidIdentifierError(f"not a GS1 EPC URN: {urn!r}")
    return element_string_from_pairs(pairs, hri=hri)


def element_string_to_urn(data: str, *, gcp_length: int | None = None) -> str:
    """The EPC URN of barcode data; the prefix length comes from GS1's data unless given."""
    pairs = identity_pairs(pairs_from_element_string(data))
    length = gcp_length if gcp_length is not None else key_company_prefix_length(pairs)
    if length is None:
        raise InvalidIdentifierError(f"GS1 company prefix length unknown for {data!r}")
    return urn_from_pairs(pairs, length)
