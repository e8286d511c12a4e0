"""Canonical forms of EPCs and EPC classes for the model, conversions, match keys and patterns."""

from __future__ import annotations

import re
from functools import lru_cache

from epcis.errors import InvalidIdentifierError
from epcis.identifiers.digital_link import (
    CANONICAL_DOMAIN,
    digital_link_from_pairs,
    parse_digital_link,
)
from epcis.identifiers.epc_uri import (
    EPC_CLASS_PREFIX,
    EPC_ID_PREFIX,
    EPC_PATTERN_PREFIX,
    NoEpcFormError,
    canonical_epc_urn,
    pairs_from_urn,
    urn_from_pairs,
)
from epcis.identifiers.gs1_key_pairs import KeyPairs, identity_pairs, key_company_prefix_length

__all__ = [
    "canonical_class",
    "canonical_epc",
    "epc_match_key",
    "epc_pattern_matches",
    "gs1_key_pairs",
    "plain_digital_link",
    "sgtin_epc",
    "sgtin_spellings",
    "to_digital_link",
    "to_epc_urn",
]

_URI_SCHEMES = ("https://", "http://")
_CLASS_QUALIFIERS = frozenset({"10"})
_SGTIN = "urn:epc:id:sgtin:"
_SSCC = "urn:epc:id:sscc:"
_PLAIN = frozenset("0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz-._")
_WEIGHTS = (3, 1) * 9


@lru_cache(maxsize=4096)
def _check_digit(body: str) -> str:
    # A document names few GTINs, so nearly every SGTIN finds its check digit here.
    total = sum(int(d) * w for d, w in zip(reversed(body), _WEIGHTS, strict=False))
    return str(-total % 10)


def plain_digital_link(value: str) -> str | None:
    """The canonical DL of an SGTIN or SSCC URN with a plain serial, else None; remembered.

    Capture converts every EPC twice in a row, for the event hash and for the store index:
    the second time is a look-up here (bounded; the value is a pure function of the text).
    """
    return _fast_digital_link(value)


@lru_cache(maxsize=1 << 13)
def _fast_digital_link(value: str) -> str | None:
    """The canonical DL of the common healthcare URNs (SGTIN, SSCC) with plain serials.

    Matching keys and event hashes convert every EPC of every event, and the general path
    (pairs validated against the GS1 syntax dictionary) costs tens of microseconds; this
    one is a few string operations. Anything unusual returns None and takes the general path.
    """
    if value.startswith(_SGTIN):
        company, _, rest = value[len(_SGTIN) :].partition(".")
        item, _, serial = rest.partition(".")
        if (
            len(company) + len(item) != 13
            or not 6 <= len(company) <= 12
            or not (company + item).isdigit()
            or not serial
            or len(serial) > 20
            or not _PLAIN.issuperset(serial)
        ):
            return None
        body = item[0] + company + item[1:]
        return f"{CANONICAL_DOMAIN}/01/{body}{_check_digit(body)}/21/{serial}"
    if value.startswith(_SSCC):
        company, _, reference = value[len(_SSCC) :].partition(".")
        if len(company) + len(reference) != 17 or not (company + reference).isdigit():
            return None
        if not 6 <= len(company) <= 12:
            return None
        body = reference[0] + company + reference[1:]
        return f"{CANONICAL_DOMAIN}/00/{body}{_check_digit(body)}"
    return None


def gs1_key_pairs(value: str) -> KeyPairs | None:
    """The GS1 key pairs (finest level) of an EPC URN or Digital Link; ``None`` if neither."""
    value = value.strip()
    if value.startswith("urn:epc:"):
        pairs = pairs_from_urn(value)
    elif value.startswith(_URI_SCHEMES):
        parsed = parse_digital_link(value)
        pairs = None if parsed is None else parsed.pairs
    else:
        return None
    return None if pairs is None else identity_pairs(pairs)


def canonical_epc(value: str) -> str:
    """The model's form of an EPC: an EPC URN where the company prefix length is known.

    EPC URNs are kept (validated); a GS1 Digital Link becomes the EPC URN when GS1's data
    gives the company prefix length, else the canonical Digital Link on id.gs1.org; other
    URIs are returned unchanged. Raises InvalidIdentifierError for malformed GS1 keys.
    """
    if value.startswith(EPC_ID_PREFIX):
        return canonical_epc_urn(value)
    value = value.strip()
    if value.startswith("urn:epc:"):
        return canonical_epc_urn(value)
    if not value.startswith(_URI_SCHEMES):
        return value
    parsed = parse_digital_link(value)
    if parsed is None:
        return value
    return _preferred_form(identity_pairs(parsed.pairs))


def sgtin_epc(gtin: str, serial: str) -> str:
    """:func:`canonical_epc` of the Digital Link ``/01/{gtin}/21/{serial}``: the SGTIN URN
    where the company prefix length is known, else the canonical Digital Link.

    A verification responder looks up one per request; building the Digital Link and parsing
    it back costs tens of microseconds. Everything but the serial depends on the GTIN alone,
    so the general path runs once per GTIN (with a probe serial) and a plain serial, which
    neither form escapes, is appended to that stem. Raises InvalidIdentifierError like
    :func:`canonical_epc`.
    """
    if serial and len(serial) <= 20 and _PLAIN.issuperset(serial) and serial.strip("."):
        stem = _sgtin_stem(gtin)
        if stem is not None:
            return stem + serial
    return canonical_epc(digital_link_from_pairs((("01", gtin), ("21", serial))))


_GCP_LENGTHS = range(6, 13)


@lru_cache(maxsize=4096)
def sgtin_spellings(gtin: str, serial: str) -> tuple[str, ...]:
    """Every SGTIN URN spelling of one GTIN and serial: :func:`sgtin_epc` first, then the URN
    for each other GS1 company prefix length.

    A URN fixes the company prefix length, and documents may use one the prefix table does not
    give (US NDC-based GTINs: '03' and a 4- or 5-digit labeler code), so an identifier read
    as a URN is kept in that spelling. A look-up from a GTIN and serial (a scan, a
    verification request) tries the others before calling the serial unknown.
    """
    first = sgtin_epc(gtin, serial)
    gtin14 = gtin.zfill(14)  # GTIN-8, -12 and -13 as the Digital Link reads them
    if _PLAIN_SERIAL.fullmatch(serial):
        # Each length's URN up to its serial depends on the GTIN alone, and a plain serial
        # is carried as it is: a verification of an unknown serial (a look-up of every
        # spelling) then costs string joins, not seven URN constructions (~39 us).
        spellings = [first]
        for stem in _sgtin_stems(gtin14):
            urn = stem + serial
            if urn != first:
                spellings.append(urn)
        return tuple(spellings)
    return _sgtin_spellings_general(first, gtin14, serial)


def _sgtin_spellings_general(first: str, gtin14: str, serial: str) -> tuple[str, ...]:
    spellings = [first]
    for length in _GCP_LENGTHS:
        try:
            urn = urn_from_pairs((("01", gtin14), ("21", serial)), length)
        except InvalidIdentifierError:
            continue
        if urn not in spellings:
            spellings.append(urn)
    return tuple(spellings)


# Serials an SGTIN URN carries unescaped and AI 21 accepts (1 to 20 characters).
_PLAIN_SERIAL = re.compile(r"[0-9A-Za-z]{1,20}")


@lru_cache(maxsize=1024)
def _sgtin_stems(gtin14: str) -> tuple[str, ...]:
    """For each company prefix length the GTIN can be split at, its SGTIN URN up to the serial."""
    stems = []
    for length in _GCP_LENGTHS:
        try:
            urn = urn_from_pairs((("01", gtin14), ("21", _PROBE_SERIAL)), length)
        except InvalidIdentifierError:
            continue
        stems.append(urn[: -len(_PROBE_SERIAL)])
    return tuple(stems)


_PROBE_SERIAL = "0"


@lru_cache(maxsize=1024)
def _sgtin_stem(gtin: str) -> str | None:
    probe = canonical_epc(digital_link_from_pairs((("01", gtin), ("21", _PROBE_SERIAL))))
    stem, probe_serial = probe[: -len(_PROBE_SERIAL)], probe[-len(_PROBE_SERIAL) :]
    return stem if probe_serial == _PROBE_SERIAL and stem.endswith((".", "/")) else None


def canonical_class(value: str) -> str:
    """The model's form of an epcClass: LGTIN class URN or SGTIN pattern, else canonical DL."""
    value = value.strip()
    if value.startswith((EPC_CLASS_PREFIX, EPC_PATTERN_PREFIX)):
        return canonical_epc_urn(value)
    if value.startswith(EPC_ID_PREFIX):
        raise InvalidIdentifierError(f"an instance EPC is not an EPC class: {value!r}")
    if not value.startswith(_URI_SCHEMES):
        return value
    parsed = parse_digital_link(value)
    if parsed is None:
        return value
    pairs = identity_pairs(parsed.pairs)
    if pairs[0][0] != "01" or any(ai not in _CLASS_QUALIFIERS for ai, _ in pairs[1:]):
        raise InvalidIdentifierError(f"not a GTIN or GTIN + lot class: {value!r}")
    return _preferred_form(pairs)


def _preferred_form(pairs: KeyPairs) -> str:
    length = key_company_prefix_length(pairs)
    if length is not None:
        try:
            return urn_from_pairs(pairs, length)
        except NoEpcFormError:
            pass
    return digital_link_from_pairs(pairs)


def to_epc_urn(value: str, *, gcp_length: int | None = None) -> str:
    """The EPC URN of an EPC URN or Digital Link; other URIs are returned unchanged.

    ``gcp_length`` overrides GS1's prefix data (e.g. from partner master data). Raises
    InvalidIdentifierError when the key is malformed, when the company prefix length is
    unknown, or when the key has no URN form (e.g. AI 7040).
    """
    value = value.strip()
    if value.startswith("urn:epc:") and gcp_length is None:
        return canonical_epc_urn(value)
    pairs = gs1_key_pairs(value)
    if pairs is None:
        return value
    length = gcp_length if gcp_length is not None else key_company_prefix_length(pairs)
    if length is None:
        raise InvalidIdentifierError(f"GS1 company prefix length unknown for {value!r}")
    return urn_from_pairs(pairs, length)


def to_digital_link(value: str, domain: str = CANONICAL_DOMAIN) -> str:
    """The canonical Digital Link of an EPC URN or Digital Link; other URIs unchanged.

    Canonical as the CBV event hash uses it: numeric AIs, 14-digit GTIN, qualifiers in order,
    finest level only (no CPV, no lot beside a serial), no query string.
    """
    if domain == CANONICAL_DOMAIN and (fast := _fast_digital_link(value)) is not None:
        return fast
    pairs = gs1_key_pairs(value)
    if pairs is None:
        return value.strip()
    return digital_link_from_pairs(pairs, domain)


def epc_match_key(value: str) -> str:
    """The key stores index EPCs under: canonical DL for GS1 keys, else the value as given.

    It needs no company prefix length, so a URN and any Digital Link of one EPC agree.
    Raises InvalidIdentifierError for malformed GS1 keys.
    """
    if (fast := _fast_digital_link(value)) is not None:
        return fast
    pairs = gs1_key_pairs(value)
    if pairs is None:
        return value.strip()
    return digital_link_from_pairs(pairs)


def epc_pattern_matches(pattern: str, epc: str) -> bool:
    """Whether ``epc`` (URN or Digital Link) falls under an EPC pattern URI, or equals ``pattern``.

    Pattern fields are literal or ``*``; a ``*`` field may only be followed by ``*`` fields
    (TDS pattern syntax). A non-pattern ``pattern`` matches by :func:`epc_match_key`.
    """
    pattern = pattern.strip()
    if not pattern.startswith(EPC_PATTERN_PREFIX):
        try:
            return epc_match_key(pattern) == epc_match_key(epc)
        except InvalidIdentifierError:
            return pattern == epc.strip()
    scheme, _, body = pattern[len(EPC_PATTERN_PREFIX) :].partition(":")
    fields = body.split(".")
    wild = fields.index("*") if "*" in fields else len(fields)
    if any(field != "*" for field in fields[wild:]):
        raise InvalidIdentifierError(f"a '*' may only be followed by '*' in {pattern!r}")
    urn = _urn_for_pattern(epc, scheme, fields[0] if wild > 0 else None)
    if urn is None:
        return False
    candidate = urn.split(":", 4)[4].split(".", len(fields) - 1)
    return len(candidate) == len(fields) and candidate[:wild] == fields[:wild]


def _urn_for_pattern(epc: str, scheme: str, gcp: str | None) -> str | None:
    """``epc`` as an ``urn:epc:id:<scheme>`` URN; a Digital Link split at the pattern's prefix.

    A URN keeps its own split: a pattern with a 7-digit prefix never matches a URN whose
    prefix has 6 digits, even if the digits line up.
    """
    try:
        epc = epc.strip()
        if epc.startswith(EPC_ID_PREFIX):
            urn = canonical_epc_urn(epc)
            return urn if urn.startswith(f"{EPC_ID_PREFIX}{scheme}:") else None
        pairs = gs1_key_pairs(epc)
        if pairs is None:
            return None
        length = len(gcp) if gcp is not None else key_company_prefix_length(pairs)
        if length is None or not 6 <= length <= 12:
            return None
        urn = urn_from_pairs(pairs, length)
    except InvalidIdentifierError:
        return None
    return urn if urn.startswith(f"{EPC_ID_PREFIX}{scheme}:") else None
