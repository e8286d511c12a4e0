"""GS1 character sets 82 and 39 and the escaping rules of EPC URNs and Digital Link URIs."""

from __future__ import annotations

import string
from urllib.parse import quote, unquote

from epcis.errors import InvalidIdentifierError

__all__ = [
    "CSET39",
    "CSET82",
    "check_cset39",
    "check_cset82",
    "dl_escape",
    "dl_unescape",
    "needs_urn_escape",
    "urn_escape",
    "urn_unescape",
]

CSET82 = frozenset(string.ascii_letters + string.digits + "!\"%&'()*+,-./:;<=>?_")
CSET39 = frozenset(string.ascii_uppercase + string.digits + "#-/")
# TDS: these cset 82 characters are not allowed raw in an EPC URN component.
_URN_ESCAPES = {'"': "%22", "%": "%25", "&": "%26", "/": "%2F", "<": "%3C", ">": "%3E", "?": "%3F"}
_URN_NEEDS_ESCAPE = frozenset(_URN_ESCAPES)
# CPI references (cset 39) escape '#' as well as '/'.
_CPI_ESCAPES = {"#": "%23", "/": "%2F"}


def check_cset82(value: str, what: str, max_length: int, min_length: int = 1) -> str:
    """``value`` if it is ``min_length``..``max_length`` characters of GS1 cset 82."""
    if not min_length <= len(value) <= max_length:
        raise InvalidIdentifierError(
            f"{what} must be {min_length} to {max_length} characters, got {len(value)}: {value!r}"
        )
    if not CSET82.issuperset(value):
        bad = sorted(set(value) - CSET82)
        raise InvalidIdentifierError(f"{what} has characters outside GS1 cset 82 {bad}: {value!r}")
    return value


def check_cset39(value: str, what: str, max_length: int) -> str:
    """``value`` if it is 1..``max_length`` characters of GS1 cset 39."""
    if not 1 <= len(value) <= max_length or not CSET39.issuperset(value):
        raise InvalidIdentifierError(f"{what} must be 1 to {max_length} of cset 39: {value!r}")
    return value


def urn_escape(value: str, *, cpi: bool = False) -> str:
    """A component as written in an EPC URN: TDS escapes only the few unsafe characters."""
    table = _CPI_ESCAPES if cpi else _URN_ESCAPES
    if not any(char in table for char in value):
        return value
    return "".join(table.get(char, char) for char in value)


def urn_unescape(value: str, what: str) -> str:
    """The raw component of an EPC URN, rejecting escapes of characters outside cset 82."""
    if "%" not in value:
        return value
    return _strict_unquote(value, what)


def dl_escape(value: str) -> str:
    """A Digital Link path or query value, percent-encoded.

    Everything outside RFC 3986 unreserved is encoded except ``'``, ``;`` and ``=``: those
    sub-delimiters are legal in a path segment, and the CBV 2.0 event hash reference (GS1's
    test vectors) leaves them raw, so hashes depend on it.
    """
    return quote(value, safe="';=")


def dl_unescape(value: str, what: str) -> str:
    """A Digital Link component decoded; malformed percent-encoding is an error."""
    if "%" not in value:
        return value
    return _strict_unquote(value, what)


def _strict_unquote(value: str, what: str) -> str:
    parts = value.split("%")
    for part in parts[1:]:
        if len(part) < 2 or not all(c in string.hexdigits for c in part[:2]):
            raise InvalidIdentifierError(f"{what} has a malformed percent-escape: {value!r}")
    try:
        return unquote(value, errors="strict")
    except UnicodeDecodeError as error:
        raise InvalidIdentifierError(f"{what} is not UTF-8 once decoded: {value!r}") from error


def needs_urn_escape(value: str) -> bool:
    """Whether ``value`` has characters an EPC URN must percent-encode."""
    return not _URN_NEEDS_ESCAPE.isdisjoint(value)
