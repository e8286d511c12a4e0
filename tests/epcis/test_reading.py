"""Format detection and dispatch of the reading entry points."""

from __future__ import annotations

import io
from pathlib import Path

import pytest

from epcis.errors import HostileDocumentError, UnsupportedFormatError
from epcis.model import DocumentFormat, DocumentHead
from epcis.reading import ReadLimits, detect_format, iter_document, read_document
from epcis.writing import document_bytes

FIXTURES = Path(__file__).parents[2] / "fixtures" / "epcis"


@pytest.mark.parametrize(
    ("prefix", "expected"),
    [
        (b'<epcis:EPCISDocument xmlns:epcis="urn:epcglobal:epcis:xsd:1">', DocumentFormat.XML_1_2),
        (
            b"\xef\xbb\xbf<?xml version='1.0'?>\r\n"
            b"<e:EPCISDocument xmlns:e='urn:epcglobal:epcis:xsd:2'>",
            DocumentFormat.XML_2_0,
        ),
        (
            b'<q:EPCISQueryDocument xmlns:q="urn:epcglobal:epcis-query:xsd:2">',
            DocumentFormat.XML_2_0,
        ),
        (
            b'<m:EPCISMasterDataDocument xmlns:m="urn:epcglobal:epcis-masterdata:xsd:1">',
            DocumentFormat.XML_1_2,
        ),
        (b'  \n{"@context": []', DocumentFormat.JSONLD_2_0),
    ],
)
def test_detect_format(prefix: bytes, expected: DocumentFormat) -> None:
    assert detect_format(prefix) is expected


@pytest.mark.parametrize(
    "prefix",
    [b"hello", b"<html xmlns='http://www.w3.org/1999/xhtml'>", b"<ObjectEvent>", b"[1, 2]"],
)
def test_detect_format_refuses_other_content(prefix: bytes) -> None:
    with pytest.raises(UnsupportedFormatError):
        detect_format(prefix)


def test_detect_format_refuses_doctype() -> None:
    with pytest.raises(HostileDocumentError):
        detect_format(b"<!DOCTYPE x><epcis:EPCISDocument xmlns:epcis='urn:epcglobal:epcis:xsd:1'>")


def test_read_document_from_stream_and_bytes_agree() -> None:
    data = (FIXTURES / "dscsa-shipment-1.2.xml").read_bytes()
    assert read_document(io.BytesIO(data)) == read_document(data)


def test_json_ld_is_dispatched_to_the_json_ld_reader() -> None:
    doc = read_document((FIXTURES / "dscsa-shipment-1.2.xml").read_bytes())
    data = document_bytes(doc, DocumentFormat.JSONLD_2_0)
    items = list(iter_document(io.BytesIO(data), limits=ReadLimits()))
    assert isinstance(items[0], DocumentHead)
    assert items[0].format is DocumentFormat.JSONLD_2_0
    assert items[1:] == list(doc.events)
