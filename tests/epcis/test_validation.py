"""Schema validation of EPCIS XML: located problems, safe parsing, streaming."""

from __future__ import annotations

import io
import time
from pathlib import Path

import pytest

from epcis.errors import Problem
from epcis.validation import SCHEMA_FILES, schema_dir, validate_xml

INVALID = Path(__file__).resolve().parents[2] / "fixtures" / "epcis" / "invalid"
EVENTS = "/epcis:EPCISDocument/EPCISBody/EventList"
DTD_REFUSED = "document type declarations (DTD, entities, external references) are refused"


def _document_12(events: str, header: str = "") -> bytes:
    return f"""<?xml version="1.0" encoding="UTF-8"?>
<epcis:EPCISDocument xmlns:epcis="urn:epcglobal:epcis:xsd:1"
    xmlns:sbdh="http://www.unece.org/cefact/namespaces/StandardBusinessDocumentHeader"
    xmlns:gs1ushc="http://epcis.gs1us.org/hc/ns" xmlns:cbvmda="urn:epcglobal:cbv:mda"
    schemaVersion="1.2" creationDate="2024-03-01T10:00:00Z">{header}
  <EPCISBody><EventList>{events}</EventList></EPCISBody>
</epcis:EPCISDocument>""".encode()


_SBDH = """
  <EPCISHeader>
    <sbdh:StandardBusinessDocumentHeader>
      <sbdh:HeaderVersion>1.0</sbdh:HeaderVersion>
      <sbdh:Sender><sbdh:Identifier Authority="GLN">0300011000000</sbdh:Identifier></sbdh:Sender>
      <sbdh:Receiver><sbdh:Identifier>0399999000000</sbdh:Identifier></sbdh:Receiver>
      <sbdh:DocumentIdentification>
        <sbdh:Standard>EPCglobal</sbdh:Standard><sbdh:TypeVersion>1.0</sbdh:TypeVersion>
        <sbdh:InstanceIdentifier>1</sbdh:InstanceIdentifier><sbdh:Type>Events</sbdh:Type>
        <sbdh:CreationDateAndTime>2024-03-01T10:00:00Z</sbdh:CreationDateAndTime>
      </sbdh:DocumentIdentification>
    </sbdh:StandardBusinessDocumentHeader>{gs1ushc}
  </EPCISHeader>"""

_COMMISSIONING = """
  <ObjectEvent>
    <eventTime>2024-03-01T09:00:00{zone}</eventTime>
    <eventTimeZoneOffset>-05:00</eventTimeZoneOffset>
    <epcList><epc>urn:epc:id:sgtin:0300011.012345.{serial}</epc></epcList>
    <action>ADD</action>
    <bizStep>urn:epcglobal:cbv:bizstep:commissioning</bizStep>
    <extension><ilmd><cbvmda:lotNumber>L1</cbvmda:lotNumber></ilmd></extension>
    {tail}
  </ObjectEvent>"""


def _event(serial: int = 1, zone: str = "-05:00", tail: str = "") -> str:
    return _COMMISSIONING.format(serial=serial, zone=zone, tail=tail)


# fixture file, line of the problem, path of the problem, words the reason must contain
FIXTURES = [
    ("wrong_element_order.xml", 10, f"{EVENTS}/ObjectEvent/action", "not expected"),
    ("missing_action.xml", 19, f"{EVENTS}/ObjectEvent[3]", "'action' expected"),
    (
        "bad_event_time_zone_offset.xml",
        9,
        f"{EVENTS}/ObjectEvent/eventTimeZoneOffset",
        "'-5:00' is not an offset written +hh:mm or -hh:mm",
    ),
    (
        "bad_affirm_transaction_statement.xml",
        26,
        "/epcis:EPCISDocument/EPCISHeader/gs1ushc:dscsaTransactionStatement"
        "/gs1ushc:affirmTransactionStatement",
        "'yes' is not a valid value of the atomic type 'xs:boolean'",
    ),
    ("unknown_element.xml", 14, f"{EVENTS}/ObjectEvent/shippingNote", "shippingNote"),
]


@pytest.mark.parametrize(("name", "line", "path", "words"), FIXTURES)
def test_invalid_fixture_is_located(name: str, line: int, path: str, words: str) -> None:
    problems = validate_xml(INVALID / name, source_name=name)
    assert problems, name
    first = problems[0]
    assert (first.source, first.line, first.path) == (name, line, path)
    assert words in first.reason


@pytest.mark.parametrize("name", ["entity_expansion.xml", "external_entity.xml"])
def test_dtd_bearing_documents_are_refused_unexpanded(name: str) -> None:
    started = time.perf_counter()
    problems = validate_xml(INVALID / name)
    assert [problem.reason for problem in problems] == [DTD_REFUSED]
    assert "root:" not in str(problems)  # /etc/passwd was not read into a message
    assert time.perf_counter() - started < 1.0


def test_bare_doctype_is_refused_too() -> None:
    document = _document_12(_event()).replace(b"?>\n", b'?>\n<!DOCTYPE x SYSTEM "http://x/">\n')
    assert [problem.reason for problem in validate_xml(document)] == [DTD_REFUSED]


def test_valid_12_document_with_gs1ushc_header() -> None:
    statement = """
    <gs1ushc:guidelineVersion>GS1 US DSCSA R1.3</gs1ushc:guidelineVersion>
    <gs1ushc:dscsaTransactionStatement>
      <gs1ushc:affirmTransactionStatement>true</gs1ushc:affirmTransactionStatement>
    </gs1ushc:dscsaTransactionStatement>"""
    events = _event(tail="<gs1ushc:dropShipment>false</gs1ushc:dropShipment>")
    assert validate_xml(_document_12(events, _SBDH.format(gs1ushc=statement))) == []


def test_transaction_statement_needs_its_affirmation() -> None:
    statement = """
    <gs1ushc:dscsaTransactionStatement>
      <gs1ushc:legalNotice>Seller has complied.</gs1ushc:legalNotice>
    </gs1ushc:dscsaTransactionStatement>"""
    problems = validate_xml(_document_12(_event(), _SBDH.format(gs1ushc=statement)))
    assert len(problems) == 1
    assert problems[0].path is not None
    assert problems[0].path.endswith("gs1ushc:dscsaTransactionStatement/gs1ushc:legalNotice")


def test_undeclared_gs1ushc_elements_stay_lax() -> None:
    events = _event(tail="<gs1ushc:dropShipment>maybe</gs1ushc:dropShipment>")
    assert validate_xml(_document_12(events)) == []


def test_sbdh_is_checked() -> None:
    header = _SBDH.format(gs1ushc="").replace("<sbdh:HeaderVersion>1.0</sbdh:HeaderVersion>", "")
    problems = validate_xml(_document_12(_event(), header))
    assert problems
    assert "HeaderVersion" in problems[0].reason


def test_12_accepts_a_zoneless_event_time_but_20_does_not() -> None:
    assert validate_xml(_document_12(_event(zone=""))) == []
    document_20 = (
        _document_12(_event(zone=""))
        .replace(b"epcis:xsd:1", b"epcis:xsd:2")
        .replace(b'schemaVersion="1.2"', b'schemaVersion="2.0"')
        .replace(b"<extension><ilmd>", b"<ilmd>")
        .replace(b"</ilmd></extension>", b"</ilmd>")
    )
    problems = validate_xml(document_20)
    assert [problem.path for problem in problems] == [f"{EVENTS}/ObjectEvent/eventTime"]
    assert "'2024-03-01T09:00:00' is not a date and time with its zone" in problems[0].reason


def test_problem_path_numbers_repeated_events() -> None:
    events = _event(1) + _event(2) + _event(3, tail="<bogus/>")
    problems = validate_xml(_document_12(events), source_name="three.xml")
    assert [(p.path, p.source) for p in problems] == [
        (f"{EVENTS}/ObjectEvent[3]/bogus", "three.xml")
    ]


def test_all_input_kinds_agree(tmp_path: Path) -> None:
    document = _document_12(_event(tail="<bogus/>"))
    path = tmp_path / "doc.xml"
    path.write_bytes(document)

    class OneWay(io.RawIOBase):
        """A stream that cannot seek, like a request body."""

        def __init__(self, data: bytes) -> None:
            self._inner = io.BytesIO(data)

        def readable(self) -> bool:
            return True

        def readinto(self, buffer: bytearray | memoryview) -> int:  # type: ignore[override]
            return self._inner.readinto(buffer)

    by_bytes = validate_xml(document, source_name="doc.xml")
    by_path = validate_xml(path)
    by_str = validate_xml(str(path), source_name="doc.xml")
    by_stream = validate_xml(io.BytesIO(document), source_name="doc.xml")
    by_one_way = validate_xml(OneWay(document), source_name="doc.xml")  # type: ignore[arg-type]
    assert by_bytes == by_str == by_stream == by_one_way
    assert by_path == [Problem(by_bytes[0].reason, str(path), by_bytes[0].line, by_bytes[0].path)]


def test_malformed_xml_is_a_located_problem() -> None:
    problems = validate_xml(_document_12(_event()).replace(b"</action>", b"</acton>"))
    assert len(problems) == 1
    assert problems[0].reason.startswith("malformed XML")
    assert problems[0].line == 11


def test_root_outside_epcis_is_refused() -> None:
    problems = validate_xml(b"<ObjectEvent><action>ADD</action></ObjectEvent>")
    assert len(problems) == 1
    assert "not an EPCIS document" in problems[0].reason
    assert problems[0].path == "/ObjectEvent"


def test_empty_input() -> None:
    problems = validate_xml(b"", source_name="empty.xml")
    assert len(problems) == 1
    assert problems[0].reason.startswith("malformed XML")
    assert problems[0].source == "empty.xml"


def test_large_document_streams_and_late_error_is_located() -> None:
    count = 3000
    events = "".join(_event(serial) for serial in range(count))
    assert validate_xml(_document_12(events)) == []
    broken = events + _event(count, tail="<late/>")
    problems = validate_xml(io.BytesIO(_document_12(broken)))
    assert [problem.path for problem in problems] == [f"{EVENTS}/ObjectEvent[{count + 1}]/late"]


def test_schema_dir_holds_every_schema() -> None:
    for name in SCHEMA_FILES.values():
        assert (schema_dir() / name).is_file(), name
