"""Hostile XML is refused before any expansion or fetch."""

from __future__ import annotations

import io
import time
from pathlib import Path

import pytest

from epcis.errors import HostileDocumentError, InvalidDocumentError
from epcis.reading import read_document
from epcis.xml_safety import check_prolog, parse_xml_bytes, read_prolog

HOSTILE = Path(__file__).parents[2] / "fixtures" / "epcis" / "hostile"
DTD_FILES = sorted(path for path in HOSTILE.glob("*.xml") if path.name != "undeclared_entity.xml")


@pytest.mark.parametrize("path", DTD_FILES, ids=lambda path: path.name)
def test_dtd_documents_are_refused_at_once(path: Path) -> None:
    started = time.perf_counter()
    with pytest.raises(HostileDocumentError, match="document type declaration"):
        read_document(path.read_bytes(), source_name=path.name)
    with pytest.raises(HostileDocumentError), path.open("rb") as stream:
        read_document(stream)
    assert time.perf_counter() - started < 0.5


@pytest.mark.parametrize("path", DTD_FILES, ids=lambda path: path.name)
def test_parse_xml_bytes_refuses_dtds(path: Path) -> None:
    with pytest.raises(HostileDocumentError):
        parse_xml_bytes(path.read_bytes())


def test_undeclared_entity_is_a_parse_error_not_an_expansion() -> None:
    data = (HOSTILE / "undeclared_entity.xml").read_bytes()
    with pytest.raises(InvalidDocumentError, match="malformed XML"):
        read_document(data)


def test_doctype_after_a_long_comment_is_still_refused() -> None:
    data = b"<?xml version='1.0'?><!--" + b"x" * 200_000 + b"--><!DOCTYPE a SYSTEM 'http://x/'><a/>"
    with pytest.raises(HostileDocumentError):
        read_prolog(io.BytesIO(data))


def test_doctype_text_inside_a_comment_is_not_a_doctype() -> None:
    root = check_prolog(
        b"<!-- <!DOCTYPE x> --><epcis:EPCISDocument xmlns:epcis='urn:epcglobal:epcis:xsd:2'>"
    )
    assert root is not None
    assert root.namespace == "urn:epcglobal:epcis:xsd:2"
    assert root.local_name == "EPCISDocument"


@pytest.mark.parametrize(
    "prefix",
    [b"<", b"<?xml version='1.0'", b"<!-", b"<!DOC", b"<a:b x", b"<a:b x='1", b"<a:b x='1' /"],
)
def test_incomplete_prologs_ask_for_more(prefix: bytes) -> None:
    assert check_prolog(prefix) is None


def test_text_before_the_root_is_not_xml() -> None:
    with pytest.raises(InvalidDocumentError, match="text before the root"):
        check_prolog(b"hello <a/>")


def test_parse_xml_bytes_parses_plain_documents() -> None:
    root = parse_xml_bytes(b"<?xml version='1.0'?><a><b>1</b></a>")
    assert root.findtext("b") == "1"
