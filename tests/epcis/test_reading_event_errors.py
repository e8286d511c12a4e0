"""iter_document(event_errors=True): a bad event is an EventError in its place; reading goes on."""

from __future__ import annotations

import io
import json
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from lxml import etree

import epcis.xml_reader
import epcis.xml_safety
from epcis.errors import DocumentTooLargeError, InvalidDocumentError, SchemaViolationError
from epcis.model import DocumentFormat, DocumentHead, Event, ObjectEvent
from epcis.reading import EventError, ReadLimits, iter_document
from epcis.validation import validate_xml
from epcis.writing import write_document
from tests.epcis import strategies, strategies_jsonld

FIXTURES = Path(__file__).parents[2] / "fixtures" / "epcis"
BAD = FIXTURES / "bad-events"

Item = DocumentHead | Event | EventError


def _items(data: bytes | io.BytesIO, **options: Any) -> list[Item]:
    return list(iter_document(data, event_errors=True, **options))


def _comparable(items: list[Item]) -> list[object]:
    """Items with each EventError as plain values (exceptions compare by identity)."""
    return [
        (item.position, type(item.error), str(item.error), item.error.problems)
        if isinstance(item, EventError)
        else item
        for item in items
    ]


def _events(data: bytes) -> list[Event]:
    """The events of a document that has no bad ones, read the default way."""
    return [item for item in iter_document(data) if not isinstance(item, DocumentHead)]


def _split(items: list[Item]) -> tuple[list[Event], list[EventError]]:
    assert isinstance(items[0], DocumentHead)
    assert not any(isinstance(item, DocumentHead) for item in items[1:])
    good = [item for item in items[1:] if not isinstance(item, DocumentHead | EventError)]
    bad = [item for item in items[1:] if isinstance(item, EventError)]
    return good, bad


def _without_xml_events(data: bytes, positions: set[int]) -> bytes:
    """The document with the events at these 1-based positions (and their wrappers) removed."""
    root = etree.fromstring(data)
    event_list = root.find("EPCISBody/EventList")
    assert event_list is not None
    members = [child for child in event_list if isinstance(child.tag, str)]
    for position in positions:
        event_list.remove(members[position - 1])
    return etree.tostring(root, xml_declaration=True, encoding="UTF-8")


def _without_json_events(data: bytes, positions: set[int]) -> bytes:
    document = json.loads(data)
    events = document["epcisBody"]["eventList"]
    document["epcisBody"]["eventList"] = [
        event for index, event in enumerate(events, 1) if index not in positions
    ]
    return json.dumps(document).encode()


# (file, positions of bad events, text on the line each XML problem names)
_XML_FIXTURES = [
    (
        "mixed-1.2.xml",
        {
            2: "urn:epc:id:sgtin:030001.0012345<",
            4: "<QuantityEvent>",
            5: "urn:epc:id:sgtin:030001.00123456.1009",
            7: "<parentID>urn:epc:id:sscc:030001.1000000010",
        },
    ),
    (
        "mixed-2.0.xml",
        {
            2: "<eventTime>10000-",
            4: "00300010123452",
            5: "<epcClass>urn:epc:idpat:sgtin:030001.0012345<",
        },
    ),
]


@pytest.mark.parametrize(("name", "bad"), _XML_FIXTURES)
def test_xml_fixture_passes_the_schema_yet_has_bad_events(name: str, bad: dict[int, str]) -> None:
    data = (BAD / name).read_bytes()
    assert validate_xml(data) == []
    with pytest.raises(InvalidDocumentError):
        _events(data)


@pytest.mark.parametrize("validate", [False, True])
@pytest.mark.parametrize(("name", "bad"), _XML_FIXTURES)
def test_xml_bad_events_are_errors_in_place(name: str, bad: dict[int, str], validate: bool) -> None:
    data = (BAD / name).read_bytes()
    lines = data.decode().splitlines()
    good, errors = _split(_items(data, source_name=name, validate=validate))
    assert [error.position for error in errors] == sorted(bad)
    for error in errors:
        assert isinstance(error.error, InvalidDocumentError)
        (problem,) = error.error.problems
        assert problem.source == name
        assert problem.line is not None
        assert bad[error.position] in lines[problem.line - 1]
        assert problem.path is not None
        assert "/EPCISBody/EventList/" in problem.path
    assert good == _events(_without_xml_events(data, set(bad)))
    assert len(good) == _count_events(data) - len(bad)


def _count_events(data: bytes) -> int:
    root = etree.fromstring(data)
    event_list = root.find("EPCISBody/EventList")
    assert event_list is not None
    return sum(1 for child in event_list if isinstance(child.tag, str))


def test_the_error_is_what_the_default_mode_raises() -> None:
    data = (BAD / "mixed-1.2.xml").read_bytes()
    default = iter_document(data, source_name="m.xml")
    head, first = next(default), next(default)
    assert isinstance(head, DocumentHead)
    assert isinstance(first, ObjectEvent)
    with pytest.raises(InvalidDocumentError) as raised:
        next(default)
    errors = _split(_items(data, source_name="m.xml"))[1]
    assert errors[0].error.problems == raised.value.problems
    assert str(errors[0].error) == str(raised.value)


def test_a_stream_reads_as_bytes_do() -> None:
    data = (BAD / "mixed-2.0.xml").read_bytes()
    assert _comparable(_items(io.BytesIO(data))) == _comparable(_items(data))
    jsonld = (BAD / "mixed.jsonld").read_bytes()
    assert _comparable(_items(io.BytesIO(jsonld))) == _comparable(_items(jsonld))


def test_jsonld_bad_events_are_errors_in_place() -> None:
    data = (BAD / "mixed.jsonld").read_bytes()
    good, errors = _split(_items(data, source_name="m.jsonld"))
    assert [error.position for error in errors] == [2, 4, 6]
    paths = [[p.path for p in error.error.problems] for error in errors]
    assert paths == [
        ["/epcisBody/eventList/1/epcList"],
        ["/epcisBody/eventList/3/action"],
        ["/epcisBody/eventList/5/bizStep"],
    ]
    assert all(p.source == "m.jsonld" for error in errors for p in error.error.problems)
    assert "check digit" in str(errors[0].error)
    assert good == _events(_without_json_events(data, {2, 4, 6}))
    assert [event.biz_step for event in good] == [
        "commissioning",
        "packing",
        "shipping",
        "receiving",
    ]


def test_default_mode_still_ends_at_the_first_bad_jsonld_event() -> None:
    items = iter_document((BAD / "mixed.jsonld").read_bytes())
    assert isinstance(next(items), DocumentHead)
    assert isinstance(next(items), ObjectEvent)
    with pytest.raises(InvalidDocumentError, match="check digit"):
        next(items)


# --- document-level errors still raise ---------------------------------------------------

_HEAD_2_0 = (
    '<epcis:EPCISDocument xmlns:epcis="urn:epcglobal:epcis:xsd:2" schemaVersion="2.0" '
    'creationDate="2026-03-03T14:05:00Z"><EPCISBody><EventList>'
)
_TAIL = "</EventList></EPCISBody></epcis:EPCISDocument>"
_GOOD = (
    "<ObjectEvent><eventTime>2026-03-02T11:45:16Z</eventTime>"
    "<eventTimeZoneOffset>-05:00</eventTimeZoneOffset>"
    "<epcList><epc>urn:epc:id:sgtin:030001.0012345.{n}</epc></epcList>"
    "<action>OBSERVE</action>{extra}</ObjectEvent>"
)
_BAD_EPC_EXTRA = _GOOD.replace(".{n}</epc>", "</epc>")  # an SGTIN without serial
_BAD_EPC = _BAD_EPC_EXTRA.format(extra="")


def _doc(*events: str) -> bytes:
    return (_HEAD_2_0 + "\n".join(events) + _TAIL).encode()  # one line per event


def _good(n: int, extra: str = "") -> str:
    return _GOOD.format(n=n, extra=extra)


def _read_until_raised(data: bytes, **options: Any) -> tuple[list[Item], Exception]:
    """What was read before the document-level error, and that error (callers check its type)."""
    items: list[Item] = []
    try:
        for item in iter_document(data, event_errors=True, **options):
            items.append(item)
    except Exception as error:
        return items, error
    raise AssertionError(f"read to the end: {items}")


def test_malformed_xml_after_a_bad_event_raises() -> None:
    data = _doc(_good(1), _BAD_EPC, _good(2))[: -len(_TAIL) - 20]
    items, error = _read_until_raised(data)
    assert isinstance(error, InvalidDocumentError)
    assert "malformed XML" in str(error)
    assert [type(item).__name__ for item in items[1:]] == ["ObjectEvent", "EventError"]


def test_an_unknown_element_in_the_event_list_raises() -> None:
    _, error = _read_until_raised(_doc(_BAD_EPC, "<Mystery/>", _good(1)))
    assert isinstance(error, InvalidDocumentError)
    assert "unknown event type Mystery" in str(error)


def test_a_schema_violation_wins_over_the_event_error() -> None:
    missing_action = _good(2).replace("<action>OBSERVE</action>", "")
    items, error = _read_until_raised(_doc(_good(1), missing_action, _good(3)), validate=True)
    assert isinstance(error, SchemaViolationError)
    assert not any(isinstance(item, EventError) for item in items)
    # Without validation the same event is an EventError and reading goes on.
    good, errors = _split(_items(_doc(_good(1), missing_action, _good(3))))
    assert [e.position for e in errors] == [2]
    assert len(good) == 2
    assert "without action" in str(errors[0].error)


def test_a_bad_header_raises() -> None:
    data = (FIXTURES / "invalid" / "bad_affirm_transaction_statement.xml").read_bytes()
    _, error = _read_until_raised(data)
    assert isinstance(error, InvalidDocumentError)


@pytest.mark.parametrize(
    ("limits", "extra", "expected"),
    [
        (ReadLimits(max_text_length=100), f"<x:note xmlns:x='urn:x'>{'n' * 101}</x:note>", "text"),
        (
            ReadLimits(max_depth=3),
            "<x:a xmlns:x='urn:x'><x:b><x:c><x:d><x:e/></x:d></x:c></x:b></x:a>",
            "nesting",
        ),
    ],
)
def test_limits_inside_an_event_raise(limits: ReadLimits, extra: str, expected: str) -> None:
    data = _doc(_good(1), _BAD_EPC, _good(2, extra), _good(3))
    items, error = _read_until_raised(data, limits=limits)
    assert isinstance(error, InvalidDocumentError)
    assert expected in str(error)
    assert [type(item).__name__ for item in items[1:]] == ["ObjectEvent", "EventError"]


def test_bad_events_count_towards_the_event_limit() -> None:
    data = _doc(_BAD_EPC, _BAD_EPC, _BAD_EPC)
    items, error = _read_until_raised(data, limits=ReadLimits(max_events=2))
    assert isinstance(error, DocumentTooLargeError)
    assert len(items) == 3


def test_jsonld_document_errors_raise() -> None:
    document = json.loads((BAD / "mixed.jsonld").read_bytes())
    document["epcisBody"]["eventList"][4]["eventTimeZoneOffset"] = "-05:00"
    text = json.dumps(document).replace('"eventTimeZoneOffset"', '"action": "ADD", "action"', 1)
    items, error = _read_until_raised(text.encode())
    assert isinstance(error, InvalidDocumentError)
    assert "duplicate key" in str(error)
    assert items == []  # found by the first pass, before the head


# --- memory ------------------------------------------------------------------------------


class _Watched:
    """An iterparse that remembers the root element, which it starts with."""

    def __init__(self, parser: Any) -> None:
        self.parser = parser
        self.root: Any = None

    def __iter__(self) -> Iterator[tuple[str, Any]]:
        for action, element in self.parser:
            if self.root is None:
                self.root = element
            yield action, element

    def __getattr__(self, name: str) -> Any:
        return getattr(self.parser, name)


def test_bad_events_are_dropped_from_the_tree(monkeypatch: pytest.MonkeyPatch) -> None:
    parsers: list[_Watched] = []
    original = epcis.xml_safety.safe_iterparse

    def watched(*args: Any, **kwargs: Any) -> _Watched:
        parsers.append(_Watched(original(*args, **kwargs)))
        return parsers[-1]

    monkeypatch.setattr(epcis.xml_reader, "safe_iterparse", watched)
    extra = "<x:note xmlns:x='urn:x'><x:a>1</x:a><x:b>2</x:b></x:note>"
    events = [_BAD_EPC_EXTRA.format(extra=extra) if n % 3 else _good(n, extra) for n in range(300)]
    before: list[int] = []
    for item in iter_document(_doc(*events), event_errors=True):
        if isinstance(item, EventError):
            line = item.error.problems[0].line
            assert line is not None
            event_list = parsers[0].root.find("EPCISBody/EventList")
            # What is still in the tree from earlier lines (the parser may have read ahead).
            before.append(sum(1 for e in event_list.iterdescendants() if e.sourceline < line))
    assert len(before) == 200
    # Only the event just before, cleared: nothing accumulates.
    assert max(before) == 1


# --- generated mixes ---------------------------------------------------------------------

# Bad XML events and the text on the line each one's problem names (both XML versions).
_BAD_XML = {
    "epc": (_BAD_EPC, "urn:epc:id:sgtin:030001.0012345<"),
    "time": (_good(9).replace("2026-03-02T11:45:16Z", "10000-01-01T00:00:00Z"), "10000-"),
    "parent": (
        "<AggregationEvent><eventTime>2026-03-02T12:10:00Z</eventTime>"
        "<eventTimeZoneOffset>+01:00</eventTimeZoneOffset>"
        "<parentID>urn:epc:id:sscc:030001.1000000010</parentID>\n<action>ADD</action>"
        "</AggregationEvent>",
        "<parentID>",
    ),
    "unknown": (_good(8, "\n<colour>red</colour>"), "<colour>"),
    "no-action": (
        "\n<ObjectEvent><eventTime>2026-03-02T11:45:16Z</eventTime>"
        "<eventTimeZoneOffset>-05:00</eventTimeZoneOffset></ObjectEvent>",
        "<ObjectEvent>",
    ),
    "quantity": (
        "\n<QuantityEvent><eventTime>2026-03-02T11:45:16Z</eventTime>"
        "<eventTimeZoneOffset>-05:00</eventTimeZoneOffset>"
        "<epcClass>urn:epc:idpat:sgtin:030001.0012345.*</epcClass><quantity>2</quantity>"
        "</QuantityEvent>",
        "<QuantityEvent>",
    ),
    "wrapped": (
        "<extension><TransformationEvent><eventTime>2026-03-02T12:30:00Z</eventTime>"
        "<eventTimeZoneOffset>-05:00</eventTimeZoneOffset><inputEPCList>\n"
        "<epc>urn:epc:id:sgtin:030001.00123456.1009</epc></inputEPCList>"
        "</TransformationEvent></extension>",
        "00123456",
    ),
}


def _insert_xml(data: bytes, bad: list[tuple[int, str]]) -> bytes:
    """``data`` with bad events inserted, each before the good event of that index."""
    root = etree.fromstring(data)
    event_list = root.find("EPCISBody/EventList")
    assert event_list is not None
    for index, kind in sorted(bad, key=lambda entry: -entry[0]):
        event_list.insert(index, etree.fromstring(_BAD_XML[kind][0]))
    # Line breaks between events, so each bad event's problem has a line of its own.
    for child in event_list:
        child.tail = "\n"
    return etree.tostring(root, xml_declaration=True, encoding="UTF-8")


def _mixes(good: int) -> st.SearchStrategy[list[tuple[int, str]]]:
    return st.lists(
        st.tuples(st.integers(min_value=0, max_value=good), st.sampled_from(sorted(_BAD_XML))),
        max_size=5,
    )


def _positions(good: int, bad: list[tuple[int, str]]) -> list[tuple[int, str]]:
    """(1-based position, kind) of each bad event once inserted (stable for equal indexes)."""
    order: list[tuple[str, Any]] = [("good", n) for n in range(good)]
    for index, kind in sorted(bad, key=lambda entry: -entry[0]):
        order.insert(index, ("bad", kind))  # as the inserting functions do
    return [(n, entry[1]) for n, entry in enumerate(order, 1) if entry[0] == "bad"]


@settings(max_examples=20, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(data=st.data(), target=st.sampled_from([DocumentFormat.XML_1_2, DocumentFormat.XML_2_0]))
def test_generated_xml_mixes_read_the_good_events_as_alone(
    data: st.DataObject, target: DocumentFormat
) -> None:
    head = data.draw(strategies.documents_heads(target))
    generated = data.draw(st.lists(strategies.events(), max_size=4))
    buffer = io.BytesIO()
    write_document(head, generated, buffer, target)
    alone = buffer.getvalue()
    bad = data.draw(_mixes(len(generated)))
    mixed = _insert_xml(alone, bad)
    good, errors = _split(_items(mixed, source_name="mix.xml"))
    assert good == _events(alone) == generated
    expected = _positions(len(generated), bad)
    assert [error.position for error in errors] == [position for position, _ in expected]
    lines = mixed.decode().splitlines()
    for error, (_, kind) in zip(errors, expected, strict=True):
        (problem,) = error.error.problems
        assert problem.source == "mix.xml"
        assert problem.line is not None
        assert _BAD_XML[kind][1] in lines[problem.line - 1]


_BAD_JSON: dict[str, Any] = {
    "epc": {
        "type": "ObjectEvent",
        "eventTime": "2026-03-02T11:46:00Z",
        "eventTimeZoneOffset": "-05:00",
        "epcList": ["https://id.gs1.org/01/00300010123452/21/1003"],
        "action": "ADD",
    },
    "no-action": {
        "type": "ObjectEvent",
        "eventTime": "2026-03-02T11:46:00Z",
        "eventTimeZoneOffset": "-05:00",
        "epcList": ["urn:epc:id:sgtin:030001.0012345.1"],
    },
    "biz-step": {
        "type": "ObjectEvent",
        "eventTime": "2026-03-02T11:46:00Z",
        "eventTimeZoneOffset": "-05:00",
        "epcList": [],
        "action": "OBSERVE",
        "bizStep": "shipped",
    },
    "unprefixed": {
        "type": "AggregationEvent",
        "eventTime": "2026-03-02T11:46:00Z",
        "eventTimeZoneOffset": "-05:00",
        "action": "OBSERVE",
        "colour": "red",
    },
    "undeclared": {
        "type": "ObjectEvent",
        "eventTime": "2026-03-02T11:46:00Z",
        "eventTimeZoneOffset": "-05:00",
        "action": "OBSERVE",
        "zz:colour": "red",
    },
    "type": {"type": "QuantityEvent", "eventTime": "2026-03-02T11:46:00Z"},
    "not-an-object": "ObjectEvent",
    "time": {
        "type": "ObjectEvent",
        "eventTime": "yesterday",
        "eventTimeZoneOffset": "-05:00",
        "action": "OBSERVE",
    },
}


def _jsonld_head() -> DocumentHead:
    return DocumentHead(
        format=DocumentFormat.JSONLD_2_0,
        schema_version="2.0",
        creation_date=datetime(2026, 3, 3, 14, 5, tzinfo=UTC),
    )


def _with_json_events(data: bytes, bad: list[tuple[int, str]]) -> bytes:
    document = json.loads(data)
    events = document["epcisBody"].setdefault("eventList", [])
    for index, kind in sorted(bad, key=lambda entry: -entry[0]):
        events.insert(index, _BAD_JSON[kind])
    return json.dumps(document).encode()


@settings(max_examples=20, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(data=st.data())
def test_generated_jsonld_mixes_read_the_good_events_as_alone(data: st.DataObject) -> None:
    generated = data.draw(st.lists(strategies_jsonld.events(), max_size=4))
    buffer = io.BytesIO()
    write_document(_jsonld_head(), generated, buffer, DocumentFormat.JSONLD_2_0)
    bad = data.draw(
        st.lists(
            st.tuples(
                st.integers(min_value=0, max_value=len(generated)),
                st.sampled_from(sorted(_BAD_JSON)),
            ),
            max_size=5,
        )
    )
    # Both documents go through json.loads/dumps, so number spellings match.
    alone = _with_json_events(buffer.getvalue(), [])
    mixed = _with_json_events(buffer.getvalue(), bad)
    good, errors = _split(_items(mixed, source_name="mix.jsonld"))
    assert good == _events(alone)
    expected = _positions(len(generated), bad)
    assert [error.position for error in errors] == [position for position, _ in expected]
    for error in errors:
        assert all(p.source == "mix.jsonld" for p in error.error.problems)
        prefix = f"/epcisBody/eventList/{error.position - 1}"
        assert all((p.path or "").startswith(prefix) for p in error.error.problems)


@pytest.mark.parametrize(
    "path",
    [
        FIXTURES / "dscsa-shipment-1.2.xml",
        FIXTURES / "every-field-2.0.xml",
        FIXTURES / "dscsa-shipment.jsonld",
    ],
    ids=lambda p: p.name,
)
def test_documents_without_bad_events_read_the_same_either_way(path: Path) -> None:
    data = path.read_bytes()
    assert _items(data) == list(iter_document(data))
