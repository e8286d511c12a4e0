"""EPC URNs (GS1 TDS): pure-identity, LGTIN class and pattern URNs to and from GS1 key pairs."""

from __future__ import annotations

from collections.abc import Callable

from epcis.errors import InvalidIdentifierError
from epcis.identifiers.charsets import urn_escape, urn_unescape
from epcis.identifiers.check_digit import check_digit
from epcis.identifiers.gs1_key_pairs import KeyPairs, validate_pairs

__all__ = [
    "EPC_CLASS_PREFIX",
    "EPC_ID_PREFIX",
    "EPC_PATTERN_PREFIX",
    "NoEpcFormError",
    "canonical_epc_urn",
    "pairs_from_urn",
    "urn_from_pairs",
]

EPC_ID_PREFIX = "urn:epc:id:"
EPC_CLASS_PREFIX = "urn:epc:class:"
EPC_PATTERN_PREFIX = "urn:epc:idpat:"
_SGTIN = "urn:epc:id:sgtin:"
_SGTIN_BODY = len(_SGTIN)


def _gcp(value: str, urn: str) -> str:
    if not 6 <= len(value) <= 12 or not value.isascii() or not value.isdigit():
        raise InvalidIdentifierError(f"company prefix must be 6 to 12 digits: {urn!r}")
    return value


def _reference(gcp: str, value: str, total: int, urn: str) -> str:
    """A numeric reference that fills the key to ``total`` digits together with the prefix."""
    if len(gcp) + len(value) != total or not (value == "" or (value.isascii() and value.isdigit())):
        raise InvalidIdentifierError(
            f"company prefix and reference must be {total} digits together: {urn!r}"
        )
    return value


def _split(body: str, count: int, urn: str) -> list[str]:
    parts = body.split(".", count - 1)
    if len(parts) != count:
        raise InvalidIdentifierError(f"expected {count} dot-separated parts: {urn!r}")
    return parts


def _gtin(gcp: str, item: str) -> str:
    body = item[:1] + gcp + item[1:]
    return body + check_digit(body)


def _with_check(body: str) -> str:
    return body + check_digit(body)


def _raw(value: str, what: str, urn: str) -> str:
    if not value:
        raise InvalidIdentifierError(f"empty {what}: {urn!r}")
    return urn_unescape(value, f"{what} in {urn!r}")


def _sgtin_like(qualifier: str) -> Callable[[str, str], KeyPairs]:
    def parse(body: str, urn: str) -> KeyPairs:
        gcp, item, serial = _split(body, 3, urn)
        gtin = _gtin(_gcp(gcp, urn), _reference(gcp, item, 13, urn))
        return (("01", gtin), (qualifier, _raw(serial, "serial", urn)))

    return parse


def _sscc(body: str, urn: str) -> KeyPairs:
    gcp, ref = _split(body, 2, urn)
    _reference(_gcp(gcp, urn), ref, 17, urn)
    return (("00", _with_check(ref[:1] + gcp + ref[1:])),)


def _sgln(body: str, urn: str) -> KeyPairs:
    gcp, ref, ext = _split(body, 3, urn)
    gln = _with_check(_gcp(gcp, urn) + _reference(gcp, ref, 12, urn))
    extension = _raw(ext, "extension", urn)
    return (("414", gln),) if extension == "0" else (("414", gln), ("254", extension))


def _gln_key(ai: str) -> Callable[[str, str], KeyPairs]:
    def parse(body: str, urn: str) -> KeyPairs:
        gcp, ref = _split(body, 2, urn)
        return ((ai, _with_check(_gcp(gcp, urn) + _reference(gcp, ref, 12, urn))),)

    return parse


def _key_with_serial(ai: str, lead: str) -> Callable[[str, str], KeyPairs]:
    """GRAI, GDTI, SGCN: prefix + 12-digit reference + check digit, then the serial."""

    def parse(body: str, urn: str) -> KeyPairs:
        gcp, ref, serial = _split(body, 3, urn)
        key = _with_check(lead + _gcp(gcp, urn) + _reference(gcp, ref, 12, urn))
        return ((ai, key + _raw(serial, "serial", urn)),)

    return parse


def _numbered(ai: str, total: int) -> Callable[[str, str], KeyPairs]:
    """GSRN, GSRN-P, GSIN: prefix + reference + check digit."""

    def parse(body: str, urn: str) -> KeyPairs:
        gcp, ref = _split(body, 2, urn)
        return ((ai, _with_check(_gcp(gcp, urn) + _reference(gcp, ref, total, urn))),)

    return parse


def _alphanumeric(ai: str) -> Callable[[str, str], KeyPairs]:
    """GIAI, GINC: prefix + free cset 82 reference."""

    def parse(body: str, urn: str) -> KeyPairs:
        gcp, ref = _split(body, 2, urn)
        return ((ai, _gcp(gcp, urn) + _raw(ref, "reference", urn)),)

    return parse


def _itip(body: str, urn: str) -> KeyPairs:
    gcp, item, piece, total, serial = _split(body, 5, urn)
    if len(piece) != 2 or len(total) != 2:
        raise InvalidIdentifierError(f"ITIP piece and total are 2 digits each: {urn!r}")
    gtin = _gtin(_gcp(gcp, urn), _reference(gcp, item, 13, urn))
    return (("8006", gtin + piece + total), ("21", _raw(serial, "serial", urn)))


def _cpi(body: str, urn: str) -> KeyPairs:
    gcp, ref, serial = _split(body, 3, urn)
    return (("8010", _gcp(gcp, urn) + _raw(ref, "reference", urn)), ("8011", serial))


def _pattern(parse: Callable[[str, str], KeyPairs], fixed: int) -> Callable[[str, str], KeyPairs]:
    """A pattern with only the serial wildcarded names the key without its serial.

    ``fixed`` is how many characters of the primary key's value remain (0: all, and the
    qualifiers go).
    """

    def parse_pattern(body: str, urn: str) -> KeyPairs:
        stem, dot, star = body.rpartition(".")
        if star != "*" or not dot or "*" in stem:
            raise InvalidIdentifierError(f"only the serial of a pattern may be '*': {urn!r}")
        pairs = parse(f"{stem}.1", urn)
        ai, value = pairs[0]
        return ((ai, value[:fixed] if fixed else value),)

    return parse_pattern


_ID_SCHEMES: dict[str, Callable[[str, str], KeyPairs]] = {
    "sgtin": _sgtin_like("21"),
    "sscc": _sscc,
    "sgln": _sgln,
    "pgln": _gln_key("417"),
    "grai": _key_with_serial("8003", "0"),
    "giai": _alphanumeric("8004"),
    "gsrn": _numbered("8018", 17),
    "gsrnp": _numbered("8017", 17),
    "gdti": _key_with_serial("253", ""),
    "sgcn": _key_with_serial("255", ""),
    "ginc": _alphanumeric("401"),
    "gsin": _numbered("402", 16),
    "itip": _itip,
    "cpi": _cpi,
    "upui": _sgtin_like("235"),
}
_PATTERN_SCHEMES: dict[str, Callable[[str, str], KeyPairs]] = {
    "sgtin": _pattern(_ID_SCHEMES["sgtin"], 0),
    "upui": _pattern(_ID_SCHEMES["upui"], 0),
    "itip": _pattern(_ID_SCHEMES["itip"], 0),
    "cpi": _pattern(_ID_SCHEMES["cpi"], 0),
    "grai": _pattern(_ID_SCHEMES["grai"], 14),
    "gdti": _pattern(_ID_SCHEMES["gdti"], 13),
    "sgcn": _pattern(_ID_SCHEMES["sgcn"], 13),
}
_PREFIXES: tuple[tuple[str, dict[str, Callable[[str, str], KeyPairs]]], ...] = (
    (EPC_ID_PREFIX, _ID_SCHEMES),
    (EPC_CLASS_PREFIX, {"lgtin": _sgtin_like("10")}),
    (EPC_PATTERN_PREFIX, _PATTERN_SCHEMES),
)


def pairs_from_urn(urn: str) -> KeyPairs | None:
    """The GS1 key pairs of an EPC URN; ``None`` for EPC URNs that carry no GS1 key.

    Raises InvalidIdentifierError when a GS1 scheme's URN is malformed.
    """
    parsed = _parse(urn)
    return None if parsed is None else parsed[0]


def _parse(urn: str) -> tuple[KeyPairs, int] | None:
    """Key pairs and company prefix length of a GS1 EPC URN."""
    for prefix, schemes in _PREFIXES:
        if urn.startswith(prefix):
            scheme, sep, body = urn[len(prefix) :].partition(":")
            parse = schemes.get(scheme)
            if parse is None or not sep:
                return None
            return validate_pairs(parse(body, urn)), body.find(".")
    return None


def canonical_epc_urn(urn: str) -> str:
    """An EPC URN as the model keeps it: the fast path checks an SGTIN with string operations."""
    if urn.startswith(_SGTIN):
        gcp, _, rest = urn[_SGTIN_BODY:].partition(".")
        item, _, serial = rest.partition(".")
        if (
            len(gcp) + len(item) == 13
            and 6 <= len(gcp) <= 12
            and (gcp + item).isdigit()
            and 0 < len(serial) <= 20
            and serial.isalnum()
            and serial.isascii()
        ):
            return urn
    parsed = _parse(urn)
    if parsed is None:
        return urn
    # Rebuilt so that escapes come out in one spelling (e.g. %2f -> %2F, %41 -> A).
    return urn_from_pairs(*parsed)


# --- key pairs -> URN --------------------------------------------------------------------


class NoEpcFormError(InvalidIdentifierError):
    """The GS1 key is valid but has no EPC URN (e.g. with AI 7040 or a CPV)."""


def urn_from_pairs(pairs: KeyPairs, gcp_length: int) -> str:
    """The EPC URN of validated key ``pairs`` whose company prefix is ``gcp_length`` digits."""
    if not 6 <= gcp_length <= 12:
        raise InvalidIdentifierError(f"company prefix length must be 6 to 12: {gcp_length}")
    (ai, value), qualifiers = pairs[0], dict(pairs[1:])
    format_key = _FORMATTERS.get(ai)
    if format_key is None or not set(qualifiers) <= _URN_QUALIFIERS[ai]:
        raise NoEpcFormError(f"no EPC URN for AI {ai} with {sorted(qualifiers)}")
    return format_key(value, qualifiers, gcp_length)


def _split_gtin(gtin: str, length: int) -> str:
    return f"{gtin[1 : 1 + length]}.{gtin[0]}{gtin[1 + length : 13]}"


def _gtin_urn(value: str, q: dict[str, str], length: int) -> str:
    key = _split_gtin(value, length)
    if "21" in q:
        return f"urn:epc:id:sgtin:{key}.{urn_escape(q['21'])}"
    if "235" in q:
        return f"urn:epc:id:upui:{key}.{urn_escape(q['235'])}"
    if "10" in q:
        return f"urn:epc:class:lgtin:{key}.{urn_escape(q['10'])}"
    return f"urn:epc:idpat:sgtin:{key}.*"


def _sscc_urn(value: str, q: dict[str, str], length: int) -> str:
    return f"urn:epc:id:sscc:{value[1 : 1 + length]}.{value[0]}{value[1 + length : 17]}"


def _sgln_urn(value: str, q: dict[str, str], length: int) -> str:
    extension = urn_escape(q.get("254", "0"))
    return f"urn:epc:id:sgln:{value[:length]}.{value[length:12]}.{extension}"


def _pgln_urn(value: str, q: dict[str, str], length: int) -> str:
    return f"urn:epc:id:pgln:{value[:length]}.{value[length:12]}"


def _serialised(scheme: str, lead: int) -> Callable[[str, dict[str, str], int], str]:
    def format_key(value: str, q: dict[str, str], length: int) -> str:
        key = value[lead:]
        serial = key[13:]
        head = f"{key[:length]}.{key[length:12]}"
        if not serial:
            return f"urn:epc:idpat:{scheme}:{head}.*"
        return f"urn:epc:id:{scheme}:{head}.{urn_escape(serial)}"

    return format_key


def _numbered_urn(scheme: str, total: int) -> Callable[[str, dict[str, str], int], str]:
    def format_key(value: str, q: dict[str, str], length: int) -> str:
        return f"urn:epc:id:{scheme}:{value[:length]}.{value[length:total]}"

    return format_key


def _alpha_urn(scheme: str) -> Callable[[str, dict[str, str], int], str]:
    def format_key(value: str, q: dict[str, str], length: int) -> str:
        _check_prefix_digits(value, length)
        return f"urn:epc:id:{scheme}:{value[:length]}.{urn_escape(value[length:])}"

    return format_key


def _check_prefix_digits(value: str, length: int) -> None:
    if len(value) <= length or not value[:length].isdigit():
        raise InvalidIdentifierError(f"{value!r} does not start with a {length}-digit prefix")


def _itip_urn(value: str, q: dict[str, str], length: int) -> str:
    key = f"{_split_gtin(value[:14], length)}.{value[14:16]}.{value[16:18]}"
    if "21" not in q:
        return f"urn:epc:idpat:itip:{key}.*"
    return f"urn:epc:id:itip:{key}.{urn_escape(q['21'])}"


def _cpi_urn(value: str, q: dict[str, str], length: int) -> str:
    _check_prefix_digits(value, length)
    head = f"{value[:length]}.{urn_escape(value[length:], cpi=True)}"
    if "8011" not in q:
        return f"urn:epc:idpat:cpi:{head}.*"
    return f"urn:epc:id:cpi:{head}.{q['8011']}"


_FORMATTERS: dict[str, Callable[[str, dict[str, str], int], str]] = {
    "01": _gtin_urn,
    "00": _sscc_urn,
    "414": _sgln_urn,
    "417": _pgln_urn,
    "8003": _serialised("grai", 1),
    "253": _serialised("gdti", 0),
    "255": _serialised("sgcn", 0),
    "8004": _alpha_urn("giai"),
    "401": _alpha_urn("ginc"),
    "8018": _numbered_urn("gsrn", 17),
    "8017": _numbered_urn("gsrnp", 17),
    "402": _numbered_urn("gsin", 16),
    "8006": _itip_urn,
    "8010": _cpi_urn,
}
_URN_QUALIFIERS: dict[str, frozenset[str]] = {ai: frozenset() for ai in _FORMATTERS} | {
    "01": frozenset({"10", "21", "235"}),
    "414": frozenset({"254"}),
    "8006": frozenset({"21"}),
    "8010": frozenset({"8011"}),
}
