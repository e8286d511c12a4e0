"""Entry points for reading any EPCIS document: format detection, limits and dispatch."""

from __future__ import annotations

import io
from collections.abc import Iterator
from dataclasses import dataclass
from typing import BinaryIO, Literal, cast, overload

from epcis.errors import EPCISError, UnsupportedFormatError
from epcis.model import DocumentFormat, DocumentHead, EPCISDocument, Event
from epcis.xml_reader import Reread, format_of_root, iter_xml, read_xml_document
from epcis.xml_safety import MAX_PROLOG_BYTES, check_prolog, read_prolog

__all__ = ["EventError", "ReadLimits", "detect_format", "iter_document", "read_document"]

_BOMS = (b"\xef\xbb\xbf", b"\xff\xfe", b"\xfe\xff")


@dataclass(frozen=True, slots=True)
class ReadLimits:
    """What a reader refuses: bigger documents, more events, deeper or longer content."""

    max_bytes: int = 1 << 30
    max_events: int = 10_000_000
    # Nesting of non-standard content (ILMD, user extensions, structured master data).
    max_depth: int = 64
    max_text_length: int = 1 << 20


@dataclass(frozen=True, slots=True)
class EventError:
    """An event that could not be read, yielded in its place when ``event_errors`` is on.

    ``position`` is the event's 1-based ordinal among the document's events; ``error`` says
    why, its problems located by source, line (XML) and element path or JSON pointer.
    """

    position: int
    error: EPCISError


def _strip_start(prefix: bytes) -> bytes:
    for bom in _BOMS:
        if prefix.startswith(bom):
            prefix = prefix[len(bom) :]
            break
    return prefix.lstrip(b" \t\r\n")


def detect_format(prefix: bytes) -> DocumentFormat:
    """The format of a document from its first bytes (enough to hold the XML root start tag).

    JSON-LD is recognised by a leading ``{``; XML by its root element's namespace. Raises
    :class:`UnsupportedFormatError` otherwise and :class:`HostileDocumentError` on a DTD.
    """
    start = _strip_start(prefix)
    if start.startswith(b"{"):
        return DocumentFormat.JSONLD_2_0
    if not start.startswith(b"<") and not prefix.startswith((b"\xff\xfe<", b"\xfe\xff\x00<")):
        raise UnsupportedFormatError("neither EPCIS XML nor EPCIS JSON-LD")
    root = check_prolog(prefix)
    if root is None:
        raise UnsupportedFormatError("no XML root element in the first bytes")
    return format_of_root(root.namespace, root.local_name)


def _prefixed(
    source: BinaryIO | bytes, limits: ReadLimits
) -> tuple[DocumentFormat, BinaryIO | bytes]:
    if isinstance(source, bytes | bytearray | memoryview):
        data = bytes(source)
        return detect_format(data[:MAX_PROLOG_BYTES]), data
    start = source.tell() if source.seekable() else None
    head = source.read(4096)
    if _strip_start(head).startswith(b"{"):
        if start is not None:
            # Hand the JSON-LD reader the stream itself: it re-reads a seekable source instead
            # of holding the whole document in memory.
            source.seek(start)
            return DocumentFormat.JSONLD_2_0, source
        return DocumentFormat.JSONLD_2_0, cast(BinaryIO, _Chain(head, source))
    prefix, _ = read_prolog(cast(BinaryIO, _Chain(head, source)), max_bytes=limits.max_bytes)
    return detect_format(prefix), cast(BinaryIO, _Chain(prefix, source))


class _Chain(io.RawIOBase):
    """Bytes already read, then the rest of the stream."""

    def __init__(self, prefix: bytes, rest: BinaryIO) -> None:
        super().__init__()
        self._prefix = prefix
        self._rest = rest

    def readable(self) -> bool:
        return True

    def read(self, size: int = -1) -> bytes:
        if self._prefix:
            if size < 0 or size >= len(self._prefix):
                # Fill the request from the rest too: readers such as the JSON-LD one take a
                # short read for the end of the document.
                data, self._prefix = self._prefix, b""
                data += self._rest.read() if size < 0 else self._rest.read(size - len(data))
            else:
                data, self._prefix = self._prefix[:size], self._prefix[size:]
            return data
        return self._rest.read(size)

    def readinto(self, buffer: memoryview) -> int:  # type: ignore[override]
        data = self.read(len(buffer))
        buffer[: len(data)] = data
        return len(data)


@overload
def iter_document(
    source: BinaryIO | bytes,
    *,
    limits: ReadLimits = ...,
    source_name: str | None = ...,
    validate: bool = ...,
    event_errors: Literal[False] = ...,
) -> Iterator[DocumentHead | Event]: ...


@overload
def iter_document(
    source: BinaryIO | bytes,
    *,
    limits: ReadLimits = ...,
    source_name: str | None = ...,
    validate: bool = ...,
    event_errors: bool,
) -> Iterator[DocumentHead | Event | EventError]: ...


def iter_document(
    source: BinaryIO | bytes,
    *,
    limits: ReadLimits = ReadLimits(),
    source_name: str | None = None,
    validate: bool = False,
    event_errors: bool = False,
) -> Iterator[DocumentHead | Event | EventError]:
    """The :class:`DocumentHead` first, then each event in document order, streamed.

    ``validate`` checks EPCIS XML against our XSD in the same parse (much cheaper than
    :func:`epcis.validation.validate_xml` before reading): a violation raises
    :class:`SchemaViolationError`, with problems located by line and element path when the
    source is bytes or a seekable stream, at the first element read after it, so events before
    it may already have been yielded. JSON-LD is not affected (see ``validate_jsonld``).

    ``event_errors`` yields an :class:`EventError` in place of an event that cannot be built
    (a bad identifier, time or value, a field its type does not allow) and reads on, which is
    what capture with ``GS1-Capture-Error-Behaviour: proceed`` needs. Errors of the document
    as a whole still raise: malformed XML or JSON, the root, the header, limits, and schema
    violations when ``validate`` is on.
    """
    reread = _reread(source) if validate else None  # where the document starts
    document_format, stream = _prefixed(source, limits)
    if document_format is DocumentFormat.JSONLD_2_0:
        from epcis.jsonld_reader import iter_jsonld

        return iter_jsonld(
            stream, limits=limits, source_name=source_name, event_errors=event_errors
        )
    return iter_xml(
        stream,
        limits=limits,
        source_name=source_name,
        validate=validate,
        reread=reread,
        event_errors=event_errors,
    )


def read_document(
    source: BinaryIO | bytes,
    *,
    limits: ReadLimits = ReadLimits(),
    source_name: str | None = None,
    validate: bool = False,
) -> EPCISDocument:
    """The whole document in memory (XML document-level extensions included in the head).

    ``validate`` as for :func:`iter_document`.
    """
    reread = _reread(source) if validate else None  # where the document starts
    document_format, stream = _prefixed(source, limits)
    if document_format is DocumentFormat.JSONLD_2_0:
        from epcis.jsonld_reader import iter_jsonld

        items = iter(iter_jsonld(stream, limits=limits, source_name=source_name))
        first = next(items)
        assert isinstance(first, DocumentHead)
        rest = [item for item in items if not isinstance(item, DocumentHead)]
        return EPCISDocument.model_construct(head=first, events=tuple(rest))
    head, events = read_xml_document(
        stream, limits=limits, source_name=source_name, validate=validate, reread=reread
    )
    return EPCISDocument.model_construct(head=head, events=tuple(events))


def _reread(source: BinaryIO | bytes) -> Reread | None:
    """How to read ``source`` again from here, for located schema problems; None if it can't."""
    if isinstance(source, bytes | bytearray | memoryview):
        data = bytes(source)
        return lambda: data
    try:
        start = source.tell() if source.seekable() else None
    except (AttributeError, OSError):
        start = None
    if start is None:
        return None

    def again() -> BinaryIO:
        source.seek(start)
        return source

    return again
