"""Capture's fast paths give what the plain ones give: the shared JSON encoder, the index."""

from __future__ import annotations

import json
import math
from collections.abc import Iterable
from decimal import Decimal
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from epcis.model import (
    AggregationEvent,
    AssociationEvent,
    Event,
    ObjectEvent,
    QuantityElement,
    TransactionEvent,
    TransformationEvent,
)
from epcis.query import identifier_key, ilmd_lot_and_expiry
from epcis.vocabulary import CBVKind, canonical
from service.event_index import index_event
from service.store import EventIndex, compact_json_encoder
from tests.epcis.strategies import events
from tests.service.store_fixtures import stored_events

_encode = compact_json_encoder()


def _plain(value: Any) -> str:
    return json.dumps(value, ensure_ascii=False, separators=(",", ":"))


_scalars = (
    st.none()
    | st.booleans()
    | st.integers(min_value=-(10**30), max_value=10**30)
    | st.floats(allow_nan=True, allow_infinity=True)
    | st.text()
)
_json_values = st.recursive(
    _scalars,
    lambda inner: (
        st.lists(inner, max_size=4)
        | st.tuples(inner, inner)
        | st.dictionaries(st.text(max_size=8), inner, max_size=4)
    ),
    max_leaves=20,
)


@settings(max_examples=200, deadline=None)
@given(_json_values)
def test_compact_encoder_writes_what_json_dumps_writes(value: Any) -> None:
    assert _encode(value) == _plain(value)


def test_compact_encoder_on_the_awkward_cases() -> None:
    awkward = {
        "control": "\x00\x1f\x7f\u2028\u2029",
        "quotes": 'a"b\\c/d',
        "non-ascii": "caf\u00e9 \U0001f600",
        "numbers": [0.1, 1e300, -0.0, 10**25, math.inf, -math.inf],
        "nested": {"": [[], {}, ()]},
    }
    assert _encode(awkward) == _plain(awkward)
    assert _encode("text") == _plain("text")


def test_compact_encoder_refuses_what_json_dumps_refuses() -> None:
    with pytest.raises(TypeError):
        _encode({"value": Decimal("1.5")})
    with pytest.raises(TypeError):
        _plain({"value": Decimal("1.5")})


def _previous_index(event: Event) -> EventIndex:
    """index_event as it was before its fast paths (getattr, generators, str of the action)."""

    def roled(*groups: tuple[str, Iterable[str]]) -> tuple[tuple[str, str], ...]:
        return tuple(
            dict.fromkeys((role, identifier_key(v)) for role, values in groups for v in values)
        )

    def classes(*groups: tuple[str, Iterable[QuantityElement]]) -> tuple[tuple[str, str], ...]:
        return tuple(
            dict.fromkeys(
                (role, identifier_key(q.epc_class)) for role, items in groups for q in items
            )
        )

    def typed(
        kind: CBVKind, entries: Iterable[tuple[str | None, str]]
    ) -> tuple[tuple[str, str], ...]:
        return tuple(
            dict.fromkeys((canonical(kind, t or ""), identifier_key(v)) for t, v in entries)
        )

    parent_id: str | None = getattr(event, "parent_id", None)
    parent = (parent_id,) if parent_id else ()
    if isinstance(event, ObjectEvent):
        epcs, kinds = roled(("epc", event.epc_list)), classes(("epc", event.quantity_list))
    elif isinstance(event, AggregationEvent | AssociationEvent):
        epcs = roled(("child", event.child_epcs), ("parent", parent))
        kinds = classes(("child", event.child_quantity_list))
    elif isinstance(event, TransactionEvent):
        epcs = roled(("epc", event.epc_list), ("parent", parent))
        kinds = classes(("epc", event.quantity_list))
    else:
        assert isinstance(event, TransformationEvent)
        epcs = roled(("input", event.input_epc_list), ("output", event.output_epc_list))
        kinds = classes(
            ("input", event.input_quantity_list), ("output", event.output_quantity_list)
        )
    sdt = CBVKind.SOURCE_DESTINATION_TYPE
    sources = typed(sdt, ((s.type, s.value) for s in event.source_list))
    destinations = typed(sdt, ((d.type, d.value) for d in event.destination_list))
    lot, expiry = ilmd_lot_and_expiry(event)
    action = getattr(event, "action", None)
    error = event.error_declaration
    return EventIndex(
        action=str(action) if action is not None else None,
        biz_step=event.biz_step and canonical(CBVKind.BIZ_STEP, event.biz_step),
        disposition=event.disposition and canonical(CBVKind.DISPOSITION, event.disposition),
        read_point=event.read_point and identifier_key(event.read_point),
        biz_location=event.biz_location and identifier_key(event.biz_location),
        epcs=epcs,
        classes=kinds,
        biz_transactions=typed(
            CBVKind.BIZ_TRANSACTION_TYPE, ((b.type, b.value) for b in event.biz_transaction_list)
        ),
        sources=sources,
        destinations=destinations,
        parties=tuple(dict.fromkeys(value for _, value in sources + destinations)),
        lot=lot,
        expiry=expiry,
        error_declared=error is not None,
        error_declaration_time=error.declaration_time if error is not None else None,
        transformation_id=getattr(event, "transformation_id", None),
    )


@settings(max_examples=100, deadline=None)
@given(events())
def test_index_equals_the_previous_index_on_generated_events(event: Event) -> None:
    assert index_event(event) == _previous_index(event)


def test_index_equals_the_previous_index_on_fixture_events() -> None:
    checked = 0
    for _, stored in stored_events():
        for item in stored:
            assert index_event(item.event) == _previous_index(item.event)  # type: ignore[arg-type]
            checked += 1
    assert checked >= 10
