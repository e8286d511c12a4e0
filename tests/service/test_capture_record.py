"""service.capture.event_record writes eventID/recordTime into the JSON-LD body without copying
the model: the stored record must equal what the earlier model_copy path produced."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from epcis.errors import EPCISError
from epcis.event_hash import event_hash, ignored_fields
from epcis.jsonld_writer import event_to_jsonld, json_time
from epcis.model import DocumentHead, Event, XmlElement
from epcis.reading import iter_document
from service.capture import event_record
from service.event_index import index_event
from service.store import EventRecord
from tests.epcis.strategies import events

FIXTURES = Path(__file__).resolve().parents[2] / "fixtures"


def _copy_path(
    event: Event, ignore: frozenset[str], record_time: datetime, document_id: str | None
) -> EventRecord:
    """The record as capture built it before: a model copy with eventID and recordTime set."""
    hash_id = event_hash(event, ignore=ignore)
    stored = event.model_copy(
        update={"event_id": event.event_id or hash_id, "record_time": record_time}
    )
    body = json.dumps(event_to_jsonld(stored, {}), ensure_ascii=False, separators=(",", ":"))
    return EventRecord(
        hash_id=hash_id,
        event_id=stored.event_id or hash_id,
        event_type=event.type,
        event_time=event.event_time.astimezone(UTC),
        record_time=record_time,
        document_id=document_id,
        body=body.encode(),
        index=index_event(stored),
    )


def _fixture_documents() -> list[Path]:
    paths = sorted(FIXTURES.rglob("*.xml")) + sorted(FIXTURES.rglob("*.jsonld"))
    return [p for p in paths if not {"invalid", "invalid-jsonld", "hostile"} & set(p.parts)]


def _read(path: Path) -> tuple[DocumentHead, list[Event]] | None:
    try:
        with path.open("rb") as handle:
            items = list(iter_document(handle, source_name=path.name))
    except EPCISError:
        return None  # a fixture meant to be refused
    head, events_read = items[0], items[1:]
    assert isinstance(head, DocumentHead)
    return head, [e for e in events_read if not isinstance(e, DocumentHead)]


RECORD_TIMES = (
    datetime(2026, 11, 27, 3, 4, 5, 123000, tzinfo=UTC),
    datetime(2026, 11, 27, 3, 4, 5, 123456, tzinfo=UTC),
    datetime(2026, 11, 27, 3, 4, 5, tzinfo=timezone(timedelta(hours=-5))),
)


def test_fixture_documents_are_found() -> None:
    readable = [p for p in _fixture_documents() if _read(p) is not None]
    assert len(readable) >= 8


@pytest.mark.parametrize("path", _fixture_documents(), ids=lambda p: p.name)
def test_records_of_fixture_events_equal_the_model_copy_path(path: Path) -> None:
    read = _read(path)
    if read is None:
        return
    head, events_read = read
    ignore = ignored_fields(head)
    for record_time in RECORD_TIMES:
        for event in events_read:
            expected = _copy_path(event, ignore, record_time, "doc")
            assert event_record(event, ignore, record_time, "doc") == expected
            text = json_time(record_time)
            fast = event_record(event, ignore, record_time, "doc", record_time_text=text)
            assert fast == expected


@settings(max_examples=80, deadline=None)
@given(event=events(), moment=st.sampled_from(RECORD_TIMES))
def test_records_of_any_event_equal_the_model_copy_path(event: Event, moment: datetime) -> None:
    assert event_record(event, frozenset(), moment, None) == _copy_path(
        event, frozenset(), moment, None
    )


def test_given_event_id_is_kept_and_hash_fills_a_missing_one() -> None:
    read = _read(FIXTURES / "epcis" / "every-field-2.0.xml")
    assert read is not None
    head, events_read = read
    for event in events_read:
        record = event_record(event, ignored_fields(head), RECORD_TIMES[0], None)
        body = json.loads(record.body)
        assert body["eventID"] == record.event_id == (event.event_id or record.hash_id)
        assert body["recordTime"] == "2026-11-27T03:04:05.123Z"


def test_generated_prefixes_do_not_leak_between_events() -> None:
    """The prefix tables start shared between events; a generated prefix must stay local."""
    read = _read(FIXTURES / "epcis" / "every-field-2.0.xml")
    assert read is not None
    event = read[1][0]
    plain = event_to_jsonld(event, {})
    foreign = event.model_copy(
        update={"extensions": (XmlElement(namespace="urn:h2:test", name="x", text="1"),)}
    )
    first = event_to_jsonld(foreign, {})
    assert {"@id": "urn:h2:test", "@prefix": True} in first["@context"].values()
    assert event_to_jsonld(foreign, {}) == first
    assert event_to_jsonld(event, {}) == plain
    declared = event_to_jsonld(foreign, {"o": "urn:h2:test"})
    assert declared["o:x"] == "1"
    assert "urn:h2:test" not in json.dumps(declared.get("@context", {}))
