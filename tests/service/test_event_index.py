"""service.event_index agrees with the reference key functions of epcis.query on any event."""

from __future__ import annotations

from hypothesis import given, settings

from epcis.model import Event
from epcis.query import event_class_keys, event_epc_keys, identifier_key, ilmd_lot_and_expiry
from epcis.vocabulary import CBVKind, canonical
from service.event_index import index_event, index_from_json, index_to_json
from tests.epcis.strategies import events
from tests.service.store_fixtures import stored_events


def _typed(kind: CBVKind, entries: list[tuple[str | None, str]]) -> tuple[tuple[str, str], ...]:
    return tuple(dict.fromkeys((canonical(kind, t or ""), identifier_key(v)) for t, v in entries))


def _reference_checks(event: Event) -> None:
    index = index_event(event)
    sdt = CBVKind.SOURCE_DESTINATION_TYPE
    sources = _typed(sdt, [(s.type, s.value) for s in event.source_list])
    destinations = _typed(sdt, [(d.type, d.value) for d in event.destination_list])
    assert index.epcs == tuple(dict.fromkeys(event_epc_keys(event)))
    assert index.classes == tuple(dict.fromkeys(event_class_keys(event)))
    assert index.sources == sources
    assert index.destinations == destinations
    assert index.parties == tuple(dict.fromkeys(v for _, v in sources + destinations))
    bts = [(bt.type, bt.value) for bt in event.biz_transaction_list]
    assert index.biz_transactions == _typed(CBVKind.BIZ_TRANSACTION_TYPE, bts)
    assert (index.lot, index.expiry) == ilmd_lot_and_expiry(event)
    action = getattr(event, "action", None)
    assert index.action == (str(action) if action is not None else None)
    assert index.read_point == (event.read_point and identifier_key(event.read_point))
    assert index.biz_location == (event.biz_location and identifier_key(event.biz_location))
    assert index.transformation_id == getattr(event, "transformation_id", None)
    assert index.error_declared is (event.error_declaration is not None)


@settings(max_examples=60, deadline=None)
@given(events())
def test_generated_events_index_as_the_reference_says(event: Event) -> None:
    _reference_checks(event)


def test_fixture_events_index_as_the_reference_says() -> None:
    checked = 0
    for _, stored in stored_events():
        for item in stored:
            _reference_checks(item.event)  # type: ignore[arg-type]
            checked += 1
    assert checked >= 10


def test_index_json_round_trip() -> None:
    for _, stored in stored_events():
        for item in stored:
            index = item.record.index
            assert index_from_json(index_to_json(index)) == index
