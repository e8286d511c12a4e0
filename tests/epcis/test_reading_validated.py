"""Reading with ``validate=True``: our XSD checked in the reader's own parse.

The problems must be the ones :func:`validate_xml` reports (located by line and path) for
bytes and seekable streams, the same reasons without location for a stream that cannot be
read twice, and a valid document must read exactly as without validation.
"""

from __future__ import annotations

import io
import re
from pathlib import Path

import pytest

from epcis.errors import HostileDocumentError, InvalidDocumentError, SchemaViolationError
from epcis.model import DocumentHead
from epcis.reading import iter_document, read_document
from epcis.validation import validate_xml

FIXTURES = Path(__file__).resolve().parents[2] / "fixtures" / "epcis"
INVALID = sorted(
    p for p in (FIXTURES / "invalid").glob("*.xml") if "entity" not in p.name
)  # the DTD-bearing ones are refused before any validation
VALID = sorted(FIXTURES.glob("*.xml"))


class _OneWayStream(io.RawIOBase):
    """A stream that can be read once only (a socket, a pipe)."""

    def __init__(self, data: bytes) -> None:
        super().__init__()
        self._data = io.BytesIO(data)

    def readable(self) -> bool:
        return True

    def seekable(self) -> bool:
        return False

    def readinto(self, buffer: memoryview) -> int:  # type: ignore[override]
        chunk = self._data.read(len(buffer))
        buffer[: len(chunk)] = chunk
        return len(chunk)


def _sources(path: Path) -> dict[str, object]:
    data = path.read_bytes()
    return {
        "bytes": data,
        "file": path.open("rb"),
        "one-way": io.BufferedReader(_OneWayStream(data)),
    }


@pytest.mark.parametrize("path", INVALID, ids=lambda p: p.name)
def test_invalid_documents_give_validate_xml_problems(path: Path) -> None:
    expected = validate_xml(path, source_name=path.name)
    assert expected
    for kind, source in _sources(path).items():
        with pytest.raises(SchemaViolationError) as caught:
            list(iter_document(source, source_name=path.name, validate=True))  # type: ignore[arg-type]
        problems = list(caught.value.problems)
        if kind == "one-way":
            # Not readable twice: libxml2's own messages, without line or path.
            first = problems[0]
            assert first.source == path.name
            assert first.path is None
            assert _element_named(expected[0].reason) in first.reason
        else:
            assert problems == expected, kind
        with pytest.raises(SchemaViolationError):
            read_document(path.read_bytes(), source_name=path.name, validate=True)


def _element_named(reason: str) -> str:
    """The first quoted name in a problem's reason (the element it is about)."""
    match = re.search(r"'([^']+)'", reason)
    assert match is not None, reason
    return match.group(1)


@pytest.mark.parametrize("path", VALID, ids=lambda p: p.name)
def test_valid_documents_read_the_same_with_validation(path: Path) -> None:
    assert validate_xml(path) == []
    data = path.read_bytes()
    assert read_document(data, validate=True) == read_document(data)
    with path.open("rb") as stream:
        assert list(iter_document(stream, validate=True)) == list(iter_document(data))


def test_schema_violation_wins_over_the_readers_own_content_check() -> None:
    # The reader refuses an unknown element too; with validation the schema's located
    # problem comes first, as it did when validate_xml ran before reading.
    path = FIXTURES / "invalid" / "unknown_element.xml"
    with pytest.raises(InvalidDocumentError) as plain:
        read_document(path.read_bytes())
    assert not isinstance(plain.value, SchemaViolationError)
    with pytest.raises(SchemaViolationError) as checked:
        read_document(path.read_bytes(), validate=True)
    assert checked.value.problems[0].line == 14


def test_violation_late_in_a_large_document_stops_the_stream_near_it() -> None:
    head = (FIXTURES / "dscsa-shipment-1.2.xml").read_bytes()
    start = head.index(b"<ObjectEvent>")
    end = head.index(b"</EventList>")
    event = head[start : head.index(b"</ObjectEvent>", start) + len(b"</ObjectEvent>")]
    broken = event.replace(b"<action>", b"<bogus/><action>", 1)
    data = head[:start] + event * 3000 + broken + event * 3000 + head[end:]
    read: list[object] = []
    with pytest.raises(SchemaViolationError) as caught:
        read.extend(iter_document(io.BytesIO(data), validate=True))
    events = [item for item in read if not isinstance(item, DocumentHead)]
    # Stopped before the broken event, within a parser chunk of it.
    assert 2900 <= len(events) <= 3000
    assert "bogus" in caught.value.problems[0].reason
    assert caught.value.problems[0].line is not None


def test_dtd_is_still_refused_first() -> None:
    data = (FIXTURES / "invalid" / "entity_expansion.xml").read_bytes()
    with pytest.raises(HostileDocumentError):
        read_document(data, validate=True)


def test_json_ld_is_read_as_without_validation() -> None:
    data = (FIXTURES / "dscsa-shipment.jsonld").read_bytes()
    assert read_document(data, validate=True) == read_document(data)
