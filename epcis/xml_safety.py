"""Hardened XML intake: refuses DTDs before parsing and configures lxml to never expand or fetch.

Every XML document we read is untrusted. A document type declaration is the only way to
declare entities (billion laughs) or external references (XXE), and it can only appear in the
prolog, before the root element. So we scan the prolog bytes ourselves and refuse any
``<!DOCTYPE`` there before lxml sees a byte; lxml is additionally configured with entity
resolution, DTD loading and network access off and its huge-tree limits on.
"""

from __future__ import annotations

import codecs
import re
from dataclasses import dataclass
from typing import Any, BinaryIO

from lxml import etree

from epcis.errors import DocumentTooLargeError, HostileDocumentError, InvalidDocumentError, Problem

__all__ = [
    "MAX_PROLOG_BYTES",
    "BoundedReader",
    "RootInfo",
    "check_prolog",
    "parse_xml_bytes",
    "read_prolog",
    "safe_iterparse",
    "safe_parser",
]

# A prolog (declaration, comments, processing instructions, root start tag) longer than this is
# not a document anyone sends in good faith.
MAX_PROLOG_BYTES = 1 << 20
_CHUNK = 1 << 16

_NAME = re.compile(r"[A-Za-z_][\w.\-]*(?::[A-Za-z_][\w.\-]*)?")
_PARTIAL_ATTRIBUTE = re.compile(r"""[^\s=/>]+\s*(?:=\s*(?:"[^"]*|'[^']*)?)?|/""")
_ATTRIBUTE = re.compile(r"""\s*([^\s=/>]+)\s*=\s*("[^"]*"|'[^']*')""")


@dataclass(frozen=True, slots=True)
class RootInfo:
    """The root element as its start tag spells it, read before any parsing."""

    prefix: str | None
    local_name: str
    namespace: str | None
    attributes: dict[str, str]


def _decode_for_scan(prefix: bytes) -> str:
    """Decode enough of the prefix to scan markup, whatever the (declared) encoding."""
    boms = (
        (codecs.BOM_UTF32_LE, "utf-32-le"),
        (codecs.BOM_UTF32_BE, "utf-32-be"),
        (codecs.BOM_UTF8, "utf-8"),
        (codecs.BOM_UTF16_LE, "utf-16-le"),
        (codecs.BOM_UTF16_BE, "utf-16-be"),
    )
    for bom, encoding in boms:
        if prefix.startswith(bom):
            return prefix[len(bom) :].decode(encoding, errors="replace")
    if prefix.startswith(b"<\x00"):
        return prefix.decode("utf-16-le", errors="replace")
    if prefix.startswith(b"\x00<"):
        return prefix.decode("utf-16-be", errors="replace")
    # ASCII-compatible encodings share the bytes of every markup character we look for.
    return prefix.decode("latin-1")


def _hostile(reason: str, source: str | None) -> HostileDocumentError:
    return HostileDocumentError(reason, (Problem(reason, source=source, line=None),))


def check_prolog(prefix: bytes, *, source: str | None = None) -> RootInfo | None:
    """Scan the prolog; the root start tag when complete, ``None`` when more bytes are needed.

    Raises :class:`HostileDocumentError` on a document type declaration and
    :class:`InvalidDocumentError` when the bytes cannot start an XML document.
    """
    if len(prefix) < 4:
        return None  # not even enough to tell the encoding
    text = _decode_for_scan(prefix)
    pos = 0
    length = len(text)
    while True:
        while pos < length and text[pos] in " \t\r\n":
            pos += 1
        if pos >= length:
            return None
        if text[pos] != "<":
            raise InvalidDocumentError(
                "not XML: text before the root element",
                (Problem("not XML: text before the root element", source=source, line=1),),
            )
        if text.startswith("<?", pos):
            end = text.find("?>", pos + 2)
            if end < 0:
                return None
            pos = end + 2
        elif text.startswith("<!--", pos):
            end = text.find("-->", pos + 4)
            if end < 0:
                return None
            pos = end + 3
        elif text.startswith("<!", pos):
            if length - pos < 9 and (
                "<!--".startswith(text[pos:]) or "<!DOCTYPE".startswith(text[pos:].upper())
            ):
                # Might still become a comment or a DOCTYPE: wait for more bytes.
                return None
            raise _hostile(
                "document type declarations (DTD, entities, external references) are refused",
                source,
            )
        else:
            return _root_start_tag(text, pos, source)


def _root_start_tag(text: str, pos: int, source: str | None) -> RootInfo | None:
    match = _NAME.match(text, pos + 1)
    if match is None and pos + 1 >= len(text):
        return None
    if match is None:
        raise InvalidDocumentError(
            "not XML: malformed root element",
            (Problem("not XML: malformed root element", source=source),),
        )
    qname = match.group(0)
    cursor = match.end()
    attributes: dict[str, str] = {}
    while True:
        attribute = _ATTRIBUTE.match(text, cursor)
        if attribute is None:
            break
        attributes[attribute.group(1)] = attribute.group(2)[1:-1]
        cursor = attribute.end()
    rest = text[cursor:].lstrip()
    if not rest or _PARTIAL_ATTRIBUTE.fullmatch(rest):
        return None
    if not rest.startswith((">", "/>")):
        raise InvalidDocumentError(
            "not XML: malformed root start tag",
            (Problem("not XML: malformed root start tag", source=source, line=1),),
        )
    prefix, _, local = qname.rpartition(":")
    ns_key = f"xmlns:{prefix}" if prefix else "xmlns"
    return RootInfo(prefix or None, local, attributes.get(ns_key), attributes)


def read_prolog(
    stream: BinaryIO, *, source: str | None = None, max_bytes: int | None = None
) -> tuple[bytes, RootInfo | None]:
    """Read from ``stream`` until the root start tag is complete; the bytes read and the root."""
    buffered = b""
    while True:
        chunk = stream.read(_CHUNK)
        buffered += chunk
        if max_bytes is not None and len(buffered) > max_bytes:
            raise DocumentTooLargeError(f"document larger than {max_bytes} bytes")
        root = check_prolog(buffered, source=source)
        if root is not None or not chunk:
            return buffered, root
        if len(buffered) > MAX_PROLOG_BYTES:
            raise _hostile(f"prolog longer than {MAX_PROLOG_BYTES} bytes", source)


class BoundedReader:
    """A read-only stream: already-read prefix bytes, then the rest, refusing past a limit."""

    def __init__(self, prefix: bytes, rest: BinaryIO | None, max_bytes: int | None) -> None:
        self._prefix = prefix
        self._rest = rest
        self._max_bytes = max_bytes
        self.bytes_read = 0

    def read(self, size: int = -1) -> bytes:
        if self._prefix:
            if size < 0 or size >= len(self._prefix):
                data, self._prefix = self._prefix, b""
            else:
                data, self._prefix = self._prefix[:size], self._prefix[size:]
        elif self._rest is not None:
            data = self._rest.read(size if size >= 0 else -1)
        else:
            data = b""
        self.bytes_read += len(data)
        if self._max_bytes is not None and self.bytes_read > self._max_bytes:
            raise DocumentTooLargeError(f"document larger than {self._max_bytes} bytes")
        return data


_PARSER_OPTIONS: dict[str, bool] = {
    "resolve_entities": False,
    "no_network": True,
    "load_dtd": False,
    "dtd_validation": False,
    "huge_tree": False,
}


def safe_parser() -> etree.XMLParser:
    """An lxml parser that never loads a DTD, expands an entity or touches the network."""
    return etree.XMLParser(
        resolve_entities=False,
        no_network=True,
        load_dtd=False,
        dtd_validation=False,
        huge_tree=False,
    )


def safe_iterparse(
    source: BoundedReader,
    *,
    events: tuple[str, ...],
    tag: list[str] | None = None,
    schema: etree.XMLSchema | None = None,
) -> Any:
    """``lxml.etree.iterparse`` with the safe options; call after :func:`check_prolog`.

    With ``schema`` libxml2 validates while it parses; violations go to the iterator's
    ``error_log`` as they are met and are raised only at the end of the document.
    """
    return etree.iterparse(
        source, events=events, tag=tag, remove_blank_text=False, schema=schema, **_PARSER_OPTIONS
    )


def parse_xml_bytes(data: bytes, *, source: str | None = None) -> etree._Element:
    """Parse a whole (small) untrusted document safely; the root element."""
    if check_prolog(data, source=source) is None:
        raise InvalidDocumentError(
            "not XML: no root element", (Problem("not XML: no root element", source=source),)
        )
    try:
        root = etree.fromstring(data, safe_parser())
    except etree.XMLSyntaxError as error:
        raise InvalidDocumentError(
            f"malformed XML: {error.msg}",
            (Problem(f"malformed XML: {error.msg}", source=source, line=error.lineno),),
        ) from error
    if root.getroottree().docinfo.doctype:  # type: ignore[union-attr]
        raise _hostile("document type declarations are refused", source)
    return root
