"""Our JSON schema for EPCIS 2.0 JSON-LD: located problems, limits, streaming, GS1's verdicts."""

from __future__ import annotations

import io
import json
import tracemalloc
from collections.abc import Iterator
from functools import cache
from pathlib import Path
from typing import Any

import pytest
from jsonschema import Draft7Validator
from referencing import Registry, Resource
from referencing.jsonschema import DRAFT7

from epcis.jsonld_validation import (
    JSON_SCHEMA_FILE,
    format_checker,
    json_schema,
    validate_jsonld,
)
from epcis.model import DocumentFormat
from epcis.reading import ReadLimits, read_document
from epcis.validation import schema_dir
from epcis.writing import write_document
from service.cli import main

ROOT = Path(__file__).resolve().parents[2]
FIXTURES = ROOT / "fixtures" / "epcis"
VALID = FIXTURES / "dscsa-shipment.jsonld"
INVALID = FIXTURES / "invalid-jsonld"
REFERENCE = ROOT.parent / "shared" / "reference" / "data"
GS1 = REFERENCE / "gs1-epcis"
OPENEPCIS_JSON = REFERENCE / "openepcis-test-resources" / "2.0" / "EPCIS" / "JSON" / "Capture"

# Files on which we deliberately disagree with GS1's JSON schema, and why. Keep this short.
DELIBERATE = {
    "AggregationEvent_with_persistentDisposition.json": (
        "persistentDisposition is allowed on every event type, as in the EPCIS 2.0 data model "
        "and our XSD; GS1's JSON schema only lists it for ObjectEvent and TransformationEvent"
    ),
}

# Each invalid fixture: (JSON pointer, words the reason must contain), first problem only.
EXPECTED = {
    "missing_action.jsonld": ("/epcisBody/eventList/1", "required field 'action' is missing"),
    "bad_time_zone_offset.jsonld": (
        "/epcisBody/eventList/0/eventTimeZoneOffset",
        "'-5:00' is not a time zone offset",
    ),
    "event_time_without_zone.jsonld": ("/epcisBody/eventList/0/eventTime", "with its zone"),
    "ilmd_with_observe.jsonld": ("/epcisBody/eventList/0", "ilmd is only allowed when action"),
    "source_without_type.jsonld": (
        "/epcisBody/eventList/0/sourceList/0",
        "required field 'type' is missing",
    ),
    "error_declaration_without_time.jsonld": (
        "/epcisBody/eventList/0/errorDeclaration",
        "required field 'declarationTime' is missing",
    ),
    "unprefixed_extension.jsonld": (
        "/epcisBody/eventList/0/shipmentNote",
        "needs a prefix declared in @context",
    ),
    "bad_uom.jsonld": ("/epcisBody/eventList/0/quantityList/0/uom", "'kg' is not a UN/ECE unit"),
    "object_event_without_what.jsonld": ("/epcisBody/eventList/0", "needs epcList"),
    "transformation_without_outputs.jsonld": ("/epcisBody/eventList/0", "an input and an output"),
    "query_without_query_name.jsonld": (
        "/epcisBody/queryResults",
        "required field 'queryName' is missing",
    ),
}


def _event(index: int, action: str = "OBSERVE") -> dict[str, Any]:
    return {
        "type": "ObjectEvent",
        "eventTime": "2024-03-01T09:00:00.000-05:00",
        "eventTimeZoneOffset": "-05:00",
        "epcList": [f"urn:epc:id:sgtin:030001.0123456.{index}"],
        "action": action,
        "bizStep": "shipping",
    }


def _document(events: list[Any], **extra: Any) -> dict[str, Any]:
    return {
        "@context": ["https://ref.gs1.org/standards/epcis/2.0.0/epcis-context.jsonld"],
        "type": "EPCISDocument",
        "schemaVersion": "2.0",
        "creationDate": "2024-03-01T10:00:00Z",
        **extra,
        "epcisBody": {"eventList": events},
    }


def _bytes(document: Any) -> bytes:
    return json.dumps(document).encode()


# --- our schema ------------------------------------------------------------------------


def test_schema_file_is_in_the_schema_folder() -> None:
    assert (schema_dir() / JSON_SCHEMA_FILE).is_file()
    assert json_schema()["$schema"] == "https://json-schema.org/draft/2020-12/schema"
    Draft7Validator.check_schema({})  # the library is present for the differential below


def test_valid_fixture_has_no_problems() -> None:
    assert validate_jsonld(VALID) == []


def test_our_converter_output_is_valid() -> None:
    xml = FIXTURES / "dscsa-shipment-1.2.xml"
    document = read_document(xml.read_bytes())
    out = io.BytesIO()
    write_document(document.head, document.events, out, DocumentFormat.JSONLD_2_0)
    assert validate_jsonld(out.getvalue(), source_name="converted") == []


@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_invalid_fixture_problem(name: str) -> None:
    path, words = EXPECTED[name]
    problems = validate_jsonld(INVALID / name)
    assert problems, name
    first = problems[0]
    assert first.path == path
    assert words in first.reason
    assert first.source == str(INVALID / name)


def test_every_invalid_fixture_is_listed() -> None:
    assert sorted(p.name for p in INVALID.glob("*.jsonld")) == sorted(EXPECTED)


def test_query_document_events_are_located_in_the_results() -> None:
    problems = validate_jsonld(INVALID / "query_without_query_name.jsonld")
    paths = [problem.path for problem in problems]
    assert "/epcisBody/queryResults/resultsBody/eventList/0/action" in paths


def test_bare_event_needs_its_context() -> None:
    event = _event(1)
    assert [p.reason for p in validate_jsonld(_bytes(event))] == [
        "required field '@context' is missing"
    ]
    event["@context"] = "https://ref.gs1.org/standards/epcis/2.0.0/epcis-context.jsonld"
    assert validate_jsonld(_bytes(event)) == []


def test_several_problems_one_each() -> None:
    events = [_event(0, action="ADD"), _event(1, action="UPDATE"), _event(2)]
    events[2]["recordTime"] = "yesterday"
    problems = validate_jsonld(_bytes(_document(events, sender=7)))
    assert [(p.path, p.reason) for p in problems] == [
        ("/sender", "7 is not a string"),
        ("/epcisBody/eventList/1/action", "'UPDATE' is not one of: ADD, OBSERVE, DELETE"),
        (
            "/epcisBody/eventList/2/recordTime",
            "'yesterday' is not a date and time with its zone, like 2025-02-03T16:00:00.000Z "
            "or 2025-02-03T11:00:00-05:00",
        ),
    ]


def test_pointer_escapes_slash_and_tilde() -> None:
    event = _event(0)
    event["a/b~c"] = 1
    (problem,) = validate_jsonld(_bytes(_document([event])))
    assert problem.path == "/epcisBody/eventList/0/a~1b~0c"


def test_extension_fields_need_a_prefix_even_in_ilmd() -> None:
    event = _event(0, action="ADD")
    event["ilmd"] = {"cbvmda:lotNumber": "L1", "lot": "L1"}
    event["example:note"] = {"anything": ["goes", 1]}
    (problem,) = validate_jsonld(_bytes(_document([event])))
    assert problem.path == "/epcisBody/eventList/0/ilmd/lot"


# --- reading limits and streaming ------------------------------------------------------


def test_malformed_json() -> None:
    (problem,) = validate_jsonld(b'{"type": "EPCISDocument",', source_name="x.jsonld")
    assert problem.reason.startswith("not well-formed JSON")
    assert problem.source == "x.jsonld"


def test_not_an_object() -> None:
    (problem,) = validate_jsonld(b"[1, 2]")
    assert (problem.path, problem.reason) == ("/", "the list is not an object")


def test_size_limit() -> None:
    data = _bytes(_document([_event(i) for i in range(50)]))
    (problem,) = validate_jsonld(data, limits=ReadLimits(max_bytes=len(data) - 1))
    assert problem.reason == f"document larger than {len(data) - 1} bytes"
    assert validate_jsonld(data, limits=ReadLimits(max_bytes=len(data))) == []


def test_depth_limit_before_validation() -> None:
    event = _event(0)
    event["example:deep"] = "DEEP"
    deep = _bytes(_document([event])).replace(b'"DEEP"', b"[" * 5000 + b"]" * 5000)
    (problem,) = validate_jsonld(deep)
    assert problem.reason == "nested deeper than 64 levels"
    assert problem.path is not None
    assert problem.path.startswith("/epcisBody/eventList/item/example:deep")


def test_event_limit() -> None:
    data = _bytes(_document([_event(i) for i in range(11)]))
    (problem,) = validate_jsonld(data, limits=ReadLimits(max_events=10))
    assert problem.reason == "more than 10 events"


class _Generated(io.RawIOBase):
    """A non-seekable document of ``count`` events, made as it is read."""

    def __init__(self, count: int, bad: int) -> None:
        super().__init__()
        head = json.dumps(_document([]))[: -len("]}}")]
        self._parts = self._make(head, count, bad)
        self._pending = b""
        self.size = 0

    @staticmethod
    def _make(head: str, count: int, bad: int) -> Iterator[bytes]:
        yield head.encode()
        for index in range(count):
            event = _event(index, action="OOPS" if index == bad else "OBSERVE")
            event["example:padding"] = "x" * 4000
            yield (("," if index else "") + json.dumps(event)).encode()
        yield b"]}}"

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: Any) -> int:
        while len(self._pending) < len(buffer):
            part = next(self._parts, None)
            if part is None:
                break
            self._pending += part
        data, self._pending = self._pending[: len(buffer)], self._pending[len(buffer) :]
        buffer[: len(data)] = data
        self.size += len(data)
        return len(data)


def test_big_document_streams_event_by_event() -> None:
    stream = _Generated(count=600, bad=321)
    validate_jsonld(VALID)  # the compiled schema is not the document's cost
    tracemalloc.start()
    try:
        problems = validate_jsonld(stream)  # type: ignore[arg-type]
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert [p.path for p in problems] == ["/epcisBody/eventList/321/action"]
    assert stream.size > 2_000_000
    # Holding the document would cost several times its size; streaming costs one event.
    assert peak < stream.size / 4, (peak, stream.size)


# --- formats ---------------------------------------------------------------------------

_DATE_TIMES = [
    "2024-03-01T09:00:00Z",
    "2024-03-01T09:00:00.123456-05:00",
    "2024-02-29T23:59:59+14:00",
    "2024-03-01t09:00:00z",
    "2024-03-01T09:00:00",
    "2023-02-29T09:00:00Z",
    "2024-03-01 09:00:00Z",
    "2024-13-01T09:00:00Z",
    "2024-03-01T24:00:00Z",
    "2024-03-01T09:00:00+5:00",
    "2024-03-01T09:00:00+24:00",
    "22-07-2026",
    "",
]
_URIS = [
    "urn:epc:id:sgtin:0614141.107346.2017",
    "https://id.gs1.org/01/09506000134352/21/Serial%2042?x=1#frag",
    "example:myField",
    "cbvmda:lotNumber",
    "http://[::1]/x",
    "lotNumber",
    "has space:x",
    "urn:x:a b",
    "urn:bad%zz",
    "1abc:x",
    "http://example.com/a#b#c",
    "",
]


@pytest.mark.parametrize("value", _DATE_TIMES)
def test_date_time_agrees_with_rfc3339_validator(value: str) -> None:
    ours = format_checker().conforms(value, "date-time")
    assert ours == Draft7Validator.FORMAT_CHECKER.conforms(value, "date-time")


@pytest.mark.parametrize("value", _URIS)
def test_uri_agrees_with_rfc3986_validator(value: str) -> None:
    assert format_checker().conforms(value, "uri") == Draft7Validator.FORMAT_CHECKER.conforms(
        value, "uri"
    )


# --- differential against GS1's JSON schema --------------------------------------------


def _corpus() -> list[Path]:
    files = [*sorted(INVALID.glob("*.jsonld")), VALID]
    if REFERENCE.is_dir():
        files += sorted(p for p in (GS1 / "JSON").rglob("*.json*") if p.is_file())
        for kind in ("Documents", "Events", "Invalid"):
            files += sorted((OPENEPCIS_JSON / kind).glob("*.json*"))
    return files


@cache
def _official() -> Draft7Validator:
    folder = GS1 / "JSON-Schema"
    resources = []
    for path in [*folder.glob("*.json"), *folder.glob("schemas/*.json")]:
        contents = json.loads(path.read_text("utf-8"))
        resources.append(
            (contents["$id"], Resource.from_contents(contents, default_specification=DRAFT7))
        )
    # Every $ref resolves in this registry; with no retrieve function nothing is fetched.
    registry: Registry[Any] = Registry().with_resources(resources)
    root = json.loads((folder / "EPCIS-JSON-Schema-root.json").read_text("utf-8"))
    return Draft7Validator(root, registry=registry, format_checker=Draft7Validator.FORMAT_CHECKER)


def _test_id(path: Path) -> str:
    return str(path.relative_to(REFERENCE if path.is_relative_to(REFERENCE) else ROOT))


@pytest.mark.parametrize("path", _corpus(), ids=_test_id)
def test_same_verdict_as_gs1(path: Path) -> None:
    if not REFERENCE.is_dir():
        pytest.skip(f"GS1's JSON schema is not here: {REFERENCE} is absent")
    checker = Draft7Validator.FORMAT_CHECKER.checkers
    assert "uri" in checker, "rfc3986-validator is missing"
    assert "date-time" in checker, "rfc3339-validator is missing"
    official_valid = _official().is_valid(json.loads(path.read_bytes()))
    ours_valid = not validate_jsonld(path)
    if path.name in DELIBERATE:
        assert ours_valid != official_valid, f"no longer differs: {DELIBERATE[path.name]}"
    else:
        assert ours_valid == official_valid, validate_jsonld(path)


def test_the_reference_corpus_is_there_when_shared_is() -> None:
    if not REFERENCE.is_dir():
        pytest.skip(f"GS1's JSON schema is not here: {REFERENCE} is absent")
    assert len(_corpus()) > 100


# --- dscsa validate --------------------------------------------------------------------


def test_cli_valid_jsonld(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["validate", str(VALID)]) == 0
    assert capsys.readouterr().out == ""


@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_cli_invalid_jsonld(capsys: pytest.CaptureFixture[str], name: str) -> None:
    path = INVALID / name
    assert main(["validate", str(path)]) == 1
    lines = capsys.readouterr().out.splitlines()
    expected = validate_jsonld(path)
    assert lines == [str(problem) for problem in expected]
    pointer, words = EXPECTED[name]
    assert lines[0] == f"{path}: {expected[0].reason} (at {pointer})"
    assert words in lines[0]
