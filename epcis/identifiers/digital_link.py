"""GS1 Digital Link URIs: any domain, numeric or legacy alpha AIs, to and from GS1 key pairs."""

from __future__ import annotations

from dataclasses import dataclass

from epcis.identifiers.charsets import dl_escape, dl_unescape
from epcis.identifiers.gs1_key_pairs import PRIMARY_KEYS, QUALIFIERS, KeyPairs, validate_pairs

__all__ = [
    "CANONICAL_DOMAIN",
    "ParsedDigitalLink",
    "digital_link_from_pairs",
    "parse_digital_link",
]

CANONICAL_DOMAIN = "https://id.gs1.org"
# Convenience alpha names of DL 1.0, still sent by VRS clients (e.g. /gtin/../lot/../ser/..).
_ALPHA = {
    "gtin": "01",
    "itip": "8006",
    "cpid": "8010",
    "gln": "414",
    "party": "417",
    "gsrnp": "8017",
    "gsrn": "8018",
    "gcn": "255",
    "sscc": "00",
    "gdti": "253",
    "ginc": "401",
    "gsin": "402",
    "grai": "8003",
    "giai": "8004",
    "cpv": "22",
    "lot": "10",
    "ser": "21",
    "glnx": "254",
    "exp": "17",
    "bestbefore": "15",
}


@dataclass(frozen=True, slots=True)
class ParsedDigitalLink:
    """The key pairs of a Digital Link, and its query attributes (AI or name -> value)."""

    pairs: KeyPairs
    attributes: tuple[tuple[str, str], ...]


def parse_digital_link(uri: str) -> ParsedDigitalLink | None:
    """The GS1 key of an http(s) URI whose path is a Digital Link; ``None`` if it is not one.

    The path may carry a prefix before the primary key. Raises InvalidIdentifierError when the
    path has a Digital Link shape but a value is malformed (e.g. a wrong check digit).
    """
    if not uri.startswith(("https://", "http://")):
        return None
    rest = uri[uri.index("//") + 2 :]
    slash = rest.find("/")
    if slash < 0:
        return None
    path, _, query = rest[slash:].partition("?")
    path = path.partition("#")[0]
    segments = path.split("/")[1:]
    if segments and segments[-1] == "":
        segments.pop()
    start = _primary_key_position(segments)
    if start is None:
        return None
    raw = [
        (_ai(segments[i]), dl_unescape(segments[i + 1], f"AI {segments[i]} in {uri!r}"))
        for i in range(start, len(segments), 2)
    ]
    return ParsedDigitalLink(validate_pairs(tuple(raw)), _attributes(query.partition("#")[0], uri))


def _ai(segment: str) -> str:
    return _ALPHA.get(segment, segment)


def _primary_key_position(segments: list[str]) -> int | None:
    """Index of the primary key AI: the first one after which the path pairs up as qualifiers."""
    for start in range(len(segments) - 1):
        if _ai(segments[start]) not in PRIMARY_KEYS or (len(segments) - start) % 2:
            continue
        if all(_ai(segments[i]) in QUALIFIERS for i in range(start + 2, len(segments), 2)):
            return start
    return None


def _attributes(query: str, uri: str) -> tuple[tuple[str, str], ...]:
    if not query:
        return ()
    out = []
    for item in query.split("&"):
        if not item:
            continue
        name, _, value = item.partition("=")
        out.append((_ai(name), dl_unescape(value, f"{name} in {uri!r}")))
    return tuple(out)


def digital_link_from_pairs(pairs: KeyPairs, domain: str = CANONICAL_DOMAIN) -> str:
    """The Digital Link of key ``pairs``: numeric AIs, values percent-encoded, no query."""
    path = "".join(f"/{ai}/{dl_escape(value)}" for ai, value in pairs)
    return domain.rstrip("/") + path
