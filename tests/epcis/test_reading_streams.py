"""Documents read the same from bytes, seekable files and short-reading pipes, in every format."""

from __future__ import annotations

import io
from pathlib import Path

import pytest

from epcis.model import DocumentFormat
from epcis.reading import read_document
from epcis.writing import document_bytes

FIXTURE = Path(__file__).resolve().parents[2] / "fixtures" / "epcis" / "dscsa-shipment.jsonld"


class ShortReads(io.RawIOBase):
    """A pipe-like stream: never seekable, and each read returns at most 1,000 bytes."""

    def __init__(self, data: bytes) -> None:
        super().__init__()
        self._data = io.BytesIO(data)

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: memoryview) -> int:  # type: ignore[override]
        chunk = self._data.read(min(len(buffer), 1000))
        buffer[: len(chunk)] = chunk
        return len(chunk)


@pytest.mark.parametrize("target", list(DocumentFormat))
def test_large_documents_read_whole_from_every_kind_of_stream(target: DocumentFormat) -> None:
    document = read_document(FIXTURE.read_bytes())
    many = document.model_copy(update={"events": document.events * 150})
    data = document_bytes(many, target)
    assert len(data) > 64 * 1024
    for source in (data, io.BytesIO(data), io.BufferedReader(ShortReads(data))):
        assert read_document(source).events == many.events
