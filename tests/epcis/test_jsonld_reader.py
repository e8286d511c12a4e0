"""EPCIS 2.0 JSON-LD reading: every corpus example, GS1 conventions, and hostile input."""

from __future__ import annotations

import io
import json
from pathlib import Path
from typing import Any

import pytest

from epcis.errors import DocumentTooLargeError, InvalidDocumentError
from epcis.jsonld_reader import event_from_jsonld, iter_jsonld
from epcis.jsonld_writer import write_jsonld
from epcis.model import DocumentHead, EventBase, ObjectEvent, XmlElement
from epcis.reading import ReadLimits as Limits
from tests.epcis.strategies_jsonld import LIMITS, read

DATA = Path("/work/shared/reference/data")
FIXTURE = Path(__file__).parents[2] / "fixtures" / "epcis" / "dscsa-shipment.jsonld"


def _corpus(pattern: str) -> list[Path]:
    return sorted(DATA.glob(pattern)) if DATA.is_dir() else []


_DOCUMENTS = [
    *_corpus("gs1-epcis/JSON/**/*.jsonld"),
    *_corpus("openepcis-test-resources/2.0/EPCIS/JSON/Capture/Documents/*.json"),
    *_corpus("openepcis-test-resources/2.0/EPCIS/JSON/Query/*.json"),
    *_corpus("event-hash-vectors/tests/examples/*.jsonld"),
]
# Examples whose bytes are not acceptable, and why.
_REJECTED = {
    "AssociationEvent-h.jsonld": "duplicate key 'eventID'",
    # GS1 keys with a wrong check digit (GRAI 3001345000771...) or a GRAI not starting with 0.
    "Combination_of_different_event.json": "check digit",
    "SensorData_with_combined_events.json": "GRAI starts with",
    "queryDocument.json": "check digit",
}
_INVALID = [
    *_corpus("openepcis-test-resources/2.0/EPCIS/JSON/Capture/Invalid/*.json"),
    *_corpus("openepcis-test-resources/2.0/EPCIS/JSON/Query/Invalid/*.json"),
]
_SCHEMA_RULES = {"ObjectEvent_without_identifier_list.json"}
_needs_corpus = pytest.mark.skipif(not DATA.is_dir(), reason="/work/shared corpus not present")


def _ids(paths: list[Path]) -> list[str]:
    return [str(p.relative_to(DATA)) for p in paths]


@_needs_corpus
@pytest.mark.parametrize("path", _DOCUMENTS, ids=_ids(_DOCUMENTS))
def test_corpus_document_reads_and_round_trips(path: Path) -> None:
    if path.name in _REJECTED:
        with pytest.raises(InvalidDocumentError, match=_REJECTED[path.name]):
            read(path.read_bytes())
        return
    head, events = read(path.read_bytes())
    raw = json.loads(path.read_bytes())
    body = raw["epcisBody"]
    expected = body["queryResults"]["resultsBody"] if "queryResults" in body else body
    assert len(events) == len(expected["eventList"])
    assert [e.type for e in events] == [e["type"] for e in expected["eventList"]]
    out = io.BytesIO()
    write_jsonld(head, events, out)
    head2, events2 = read(out.getvalue())
    assert events2 == events
    assert (head2.header, head2.extensions, head2.creation_date) == (
        head.header,
        head.extensions,
        head.creation_date,
    )


@_needs_corpus
@pytest.mark.parametrize("path", _INVALID, ids=_ids(_INVALID))
def test_corpus_invalid_document_is_rejected_with_a_pointer(path: Path) -> None:
    if path.name in _SCHEMA_RULES:
        # A cross-field JSON-schema rule: the reader maps it, validation rejects it.
        assert len(read(path.read_bytes())[1]) >= 1
        return
    with pytest.raises(InvalidDocumentError) as caught:
        read(path.read_bytes())
    assert all(p.path and p.path.startswith("/") for p in caught.value.problems)


_SINGLE_EVENTS = _corpus("openepcis-test-resources/2.0/EPCIS/JSON/Capture/Events/*.json")


@_needs_corpus
@pytest.mark.parametrize("path", _SINGLE_EVENTS, ids=_ids(_SINGLE_EVENTS))
def test_corpus_single_event_reads(path: Path) -> None:
    obj = json.loads(path.read_bytes())
    event = event_from_jsonld(obj, {})
    assert event.type == obj["type"]


def test_fixture_header_sbdh_master_data_and_gs1ushc() -> None:
    head, events = read(FIXTURE.read_bytes())
    assert head.header is not None
    sbdh = head.header.standard_business_document_header
    assert sbdh is not None
    assert sbdh.sender[0].authority == "SGLN"
    assert sbdh.sender[0].contact_information[0].email_address == "ship@example.com"
    assert sbdh.document_identification.instance_identifier == "SHIP-0001"
    assert head.header.gs1ushc is not None
    assert head.header.gs1ushc.guideline_version == "GS1 US DSCSA R1.3"
    statement = head.header.gs1ushc.dscsa_transaction_statement
    assert statement is not None
    assert statement.affirm_transaction_statement
    assert [v.type for v in head.header.master_data] == [
        "urn:epcglobal:epcis:vtype:EPCClass",
        "urn:epcglobal:epcis:vtype:Location",
    ]
    assert head.header.master_data[1].vocabulary_element_list[0].children == (
        "urn:epc:id:sgln:030001.111111.1",
    )
    assert head.header.extensions == ()
    assert head.namespaces["gs1ushc"] == "http://epcis.gs1us.org/hc/ns"
    assert len(events) == 2


def test_cbvmda_is_the_xml_namespace() -> None:
    _, events = read(FIXTURE.read_bytes())
    first = events[0]
    assert isinstance(first, ObjectEvent)
    assert first.ilmd == (
        XmlElement(namespace="urn:epcglobal:cbv:mda", name="lotNumber", text="LOT42"),
        XmlElement(namespace="urn:epcglobal:cbv:mda", name="itemExpirationDate", text="2026-12-31"),
    )


def test_attributes_text_and_repeated_elements() -> None:
    _, events = read(FIXTURE.read_bytes())
    ns = "http://ns.example.com/epcis/"
    drop, note, pallet1, pallet2 = events[1].extensions
    assert drop == XmlElement(
        namespace="http://epcis.gs1us.org/hc/ns", name="dropShipment", text="false"
    )
    assert note == XmlElement(namespace=ns, name="note", attributes={"lang": "en"}, text="fragile")
    assert [p.children[0].text for p in (pallet1, pallet2)] == ["1", "2"]


def test_pseudo_sbdh_becomes_an_sbdh() -> None:
    doc = _document([_event()])
    doc |= {"sender": "urn:epc:id:sgln:0353579.00001.0", "instanceIdentifier": "42"}
    head, _ = read(json.dumps(doc).encode())
    assert head.header is not None
    sbdh = head.header.standard_business_document_header
    assert sbdh is not None
    assert sbdh.sender[0].identifier == "urn:epc:id:sgln:0353579.00001.0"
    assert sbdh.document_identification.instance_identifier == "42"
    assert sbdh.document_identification.creation_date_and_time == head.creation_date


def test_cbv_spellings_all_become_bare_words() -> None:
    spellings = [
        "shipping",
        "cbv:BizStep-shipping",
        "https://ref.gs1.org/cbv/BizStep-shipping",
        "urn:epcglobal:cbv:bizstep:shipping",
    ]
    for spelling in spellings:
        event = event_from_jsonld(_event(bizStep=spelling), {})
        assert event.biz_step == "shipping"
    with pytest.raises(InvalidDocumentError) as caught:
        event_from_jsonld(_event(bizStep="transforming"), {}, path="/epcisBody/eventList/0")
    assert caught.value.problems[0].path == "/epcisBody/eventList/0/bizStep"


def test_context_after_body_and_event_level_context() -> None:
    event = _event(**{"@context": {"e2": "http://e2.example/"}, "e2:a": "x", "e1:b": "y"})
    doc = _document([event])
    context = doc.pop("@context")
    doc["@context"] = context  # now the last key
    _, events = read(json.dumps(doc).encode())
    assert [(e.namespace, e.name) for e in events[0].extensions] == [
        ("http://e2.example/", "a"),
        ("http://e1.example/", "b"),
    ]


def test_query_document_events() -> None:
    doc = _document([_event(), _event()])
    doc["type"] = "EPCISQueryDocument"
    doc["epcisBody"] = {
        "queryResults": {"queryName": "SimpleEventQuery", "resultsBody": doc["epcisBody"]}
    }
    _, events = read(json.dumps(doc).encode())
    assert len(events) == 2


@pytest.mark.parametrize(
    ("doc", "limits", "error", "match"),
    [
        (b'{"a": 1, "a": 2}', LIMITS, InvalidDocumentError, "duplicate key"),
        (b'{"a":' + b"[" * 100 + b"]" * 100 + b"}", LIMITS, InvalidDocumentError, "deeply"),
        (
            b'{"a": "' + b"x" * 200 + b'"}',
            Limits(max_text_length=100),
            InvalidDocumentError,
            "too long",
        ),
        (b"{" + b" " * 2000 + b"}", Limits(max_bytes=1000), DocumentTooLargeError, "limit|exceeds"),
        (b"{not json", LIMITS, InvalidDocumentError, "well-formed"),
        (b"[1, 2]", LIMITS, InvalidDocumentError, "must be an object"),
    ],
)
def test_hostile_input(doc: bytes, limits: Limits, error: type[Exception], match: str) -> None:
    for source in (doc, io.BytesIO(doc), _Unseekable(doc)):
        with pytest.raises(error, match=match):
            list(iter_jsonld(source, limits=limits))  # type: ignore[arg-type]


def test_event_limit_is_checked_before_any_event() -> None:
    doc = json.dumps(_document([_event()] * 5)).encode()
    with pytest.raises(DocumentTooLargeError):
        next(iter_jsonld(doc, limits=Limits(max_events=4)))
    assert len(list(iter_jsonld(doc, limits=Limits(max_events=5)))) == 6


def test_errors_carry_source_and_event_pointer() -> None:
    doc = _document([_event(), _event(action="JUMP")])
    with pytest.raises(InvalidDocumentError) as caught:
        list(iter_jsonld(json.dumps(doc).encode(), limits=LIMITS, source_name="in.jsonld"))
    problem = caught.value.problems[0]
    assert (problem.source, problem.path) == ("in.jsonld", "/epcisBody/eventList/1/action")


def test_undeclared_prefix_is_an_error() -> None:
    with pytest.raises(InvalidDocumentError, match="not declared") as caught:
        event_from_jsonld(_event(**{"nope:x": "1"}), {}, path="/e")
    assert caught.value.problems[0].path == "/e/nope:x"


def test_remote_contexts_are_never_fetched() -> None:
    doc = _document([_event()])
    doc["@context"] = ["https://evil.example/context.jsonld", *doc["@context"]]
    head, _ = read(json.dumps(doc).encode())
    assert isinstance(head, DocumentHead)


def test_streams_are_read_incrementally() -> None:
    doc = json.dumps(_document([_event()] * 3)).encode()
    for source in (io.BytesIO(doc), _Unseekable(doc)):
        items = list(iter_jsonld(source, limits=LIMITS))  # type: ignore[arg-type]
        assert isinstance(items[0], DocumentHead)
        assert all(isinstance(i, EventBase) for i in items[1:])
        assert len(items) == 4


class _Unseekable(io.RawIOBase):
    def __init__(self, data: bytes) -> None:
        self._data = io.BytesIO(data)

    def readable(self) -> bool:
        return True

    def seekable(self) -> bool:
        return False

    def readinto(self, buffer: Any) -> int:
        chunk = self._data.read(len(buffer))
        buffer[: len(chunk)] = chunk
        return len(chunk)


def _event(**fields: Any) -> dict[str, Any]:
    return {
        "type": "ObjectEvent",
        "eventTime": "2024-01-01T00:00:00Z",
        "eventTimeZoneOffset": "+00:00",
        "epcList": ["urn:epc:id:sgtin:0614141.107346.2017"],
        "action": "OBSERVE",
        **fields,
    }


def _document(events: list[dict[str, Any]]) -> dict[str, Any]:
    return {
        "@context": [
            "https://ref.gs1.org/standards/epcis/2.0.0/epcis-context.jsonld",
            {"e1": "http://e1.example/"},
        ],
        "type": "EPCISDocument",
        "schemaVersion": "2.0",
        "creationDate": "2024-01-01T00:00:00Z",
        "epcisBody": {"eventList": events},
    }


def _uncached_event(obj: dict[str, Any], namespaces: dict[str, str]) -> EventBase:
    """The event read with the memo tables bypassed (the reader before they existed)."""
    from epcis import jsonld_reader

    saved = jsonld_reader._canonical_epc, jsonld_reader._canonical_class
    saved_cbv = jsonld_reader._canonical_cbv
    jsonld_reader._canonical_epc = jsonld_reader._canonical_epc.__wrapped__  # type: ignore[assignment]
    jsonld_reader._canonical_class = jsonld_reader._canonical_class.__wrapped__  # type: ignore[assignment]
    jsonld_reader._canonical_cbv = jsonld_reader._canonical_cbv.__wrapped__  # type: ignore[assignment]
    try:
        return event_from_jsonld(obj, namespaces)
    finally:
        jsonld_reader._canonical_epc, jsonld_reader._canonical_class = saved
        jsonld_reader._canonical_cbv = saved_cbv


def test_memoised_identifiers_read_the_fixture_as_before() -> None:
    from epcis.jsonld_reader import context_prefixes

    document = json.loads(FIXTURE.read_bytes())
    namespaces = context_prefixes(document["@context"], "/@context")
    events = document["epcisBody"]["eventList"]
    assert events
    for _ in range(2):  # cold, then warm memo tables
        for obj in events:
            assert event_from_jsonld(obj, namespaces) == _uncached_event(obj, namespaces)


def test_a_bad_identifier_fails_every_time_it_is_read() -> None:
    bad = _event(
        epcList=["urn:epc:id:sgln:0614141.00001.1"], readPoint={"id": "urn:epc:id:sgtin:1.2"}
    )
    for _ in range(3):
        with pytest.raises(InvalidDocumentError, match="dot-separated") as caught:
            event_from_jsonld(bad, {})
        assert caught.value.problems[0].path == "/readPoint"
    good = _event(bizStep="urn:epcglobal:cbv:bizstep:shipping")
    assert event_from_jsonld(good, {}).biz_step == "shipping"
    assert event_from_jsonld(good, {}).biz_step == "shipping"
