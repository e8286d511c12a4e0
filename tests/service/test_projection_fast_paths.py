"""The projection's fast paths against the slow paths they replaced.

* the fold on a mutable accumulator against the ``dataclasses.replace`` fold kept in
  ``serial_state_reference``, over the DSCSA scenario and hypothesis-generated histories;
* the incremental projection (one loader per update, fresh intervals from memory, decoded
  facts from the cache) against a from-scratch in-memory recomputation with the reference fold;
* the field-by-field state encoding with memoised ISO times against the generic one;
* the facts cache evicting under the store's feet.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Iterable
from dataclasses import fields, replace
from datetime import UTC, date, datetime, timedelta, timezone
from pathlib import Path
from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

from epcis.errors import EPCISError
from epcis.model import (
    AggregationEvent,
    EventBase,
    ObjectEvent,
    TransformationEvent,
    XmlElement,
)
from epcis.reading import read_document
from service.containment import (
    EventFacts,
    Interval,
    _lot_and_expiry,
    intervals_for_child,
    timeline,
)
from service.exception_records import ExceptionType
from service.serial_state import (
    SerialState,
    SerialStateProjection,
    Status,
    _kind_and_gtin,
    _kind_of,
    _with_identity,
    compute_state,
    gtin_of,
)
from service.sqlite_traceability_store import SQLiteTraceabilityStore
from service.traceability_store import (
    FactsCache,
    StateEncoder,
    memo_iso,
    state_from_dict,
    state_to_dict,
)
from tests.service import serial_state_reference as reference
from tests.service.dscsa_scenario import CASES, ITEMS, PALLET, facts, scenario_events

T0 = datetime(2026, 1, 5, 8, 0, tzinfo=UTC)
_FIXTURES = Path(__file__).resolve().parents[2] / "fixtures"
_SERIALS = tuple(f"urn:epc:id:sgtin:030001.0012345.{n}" for n in range(4))
_CASES = ("urn:epc:id:sgtin:030001.1012345.1", "urn:epc:id:sgtin:030001.1012345.2")
_PALLET = "urn:epc:id:sscc:030001.4000000001"
_UNIVERSE = (*_SERIALS, *_CASES, _PALLET)
_PARTIES = ("urn:epc:id:sgln:030001.111111.0", "urn:epc:id:sgln:039999.999999.0")
_LOTS = (("L1", date(2027, 6, 30)), ("L2", date(2027, 6, 30)), (None, None))


# --- a from-scratch recomputation, all in memory, with the reference fold ----------------------


def _recompute_all(
    all_facts: Iterable[EventFacts], fold: Any = reference.compute_state
) -> tuple[dict[str, SerialState], set[str]]:
    """States of every named identifier, and the keys of every finding, from nothing."""
    unique = list({f.hash_id: f for f in all_facts}.values())
    by_epc: dict[str, list[EventFacts]] = {}
    for f in unique:
        for epc in dict.fromkeys(f.names()):
            by_epc.setdefault(epc, []).append(f)
    intervals: dict[str, list[Interval]] = {}
    keys: set[str] = set()
    for epc, own in by_epc.items():
        relevant = list(own)
        for container in {f.parent_id for f in own if f.parent_id and f.parent_id != epc}:
            relevant.extend(by_epc.get(container, ()))
        intervals[epc], problems = intervals_for_child(epc, relevant)
        keys.update(p.key for p in problems)
    states: dict[str, SerialState] = {}
    for epc in by_epc:
        entries = timeline(epc, lambda e: by_epc.get(e, ()), lambda e: intervals.get(e, ()))
        parent = _open(intervals.get(epc, ()))
        top: str | None = parent
        seen = {epc}
        while top is not None and top not in seen:
            seen.add(top)
            above = _open(intervals.get(top, ()))
            if above is None:
                break
            top = above
        state, found = fold(epc, entries, parent, top)
        states[epc] = state
        keys.update(f.key for f in found)
    return states, keys


def _open(intervals: Iterable[Interval]) -> str | None:
    return next((i.parent for i in intervals if i.end is None), None)


# --- generated histories ----------------------------------------------------------------------


def _make(n: int, minute: int, **values: Any) -> EventFacts:
    defaults: dict[str, Any] = {
        "event_type": "ObjectEvent",
        "action": "OBSERVE",
        "biz_step": None,
        "disposition": None,
        "read_point": _PARTIES[0],
        "biz_location": _PARTIES[0],
        "epcs": (),
        "parent_id": None,
        "child_epcs": (),
        "sources": (),
        "destinations": (),
        "biz_transactions": (),
        "lot": None,
        "expiry": None,
    }
    defaults.update(values)
    hash_id = f"ni:///sha-256;{n:064x}?ver=CBV2.0"
    at = T0 + timedelta(minutes=minute)
    return EventFacts(hash_id=hash_id, event_id=hash_id, event_time=at, **defaults)


_some = st.lists(st.sampled_from(_UNIVERSE), min_size=1, max_size=3, unique=True).map(tuple)
_party = st.sampled_from(_PARTIES)


@st.composite
def _event(draw: st.DrawFn, n: int) -> EventFacts:
    minute = draw(st.integers(0, 12))  # few minutes: equal event times happen
    kind = draw(
        st.sampled_from(
            ["commission", "pack", "unpack", "empty", "ship", "receive", "observe", "end"]
        )
    )
    if kind == "commission":
        lot, expiry = draw(st.sampled_from(_LOTS))
        return _make(
            n,
            minute,
            action="ADD",
            biz_step="commissioning",
            disposition="active",
            epcs=draw(_some),
            lot=lot,
            expiry=expiry,
            biz_location=draw(st.sampled_from((*_PARTIES, None))),
        )
    if kind in ("pack", "unpack", "empty"):
        parent = draw(st.sampled_from((*_CASES, _PALLET)))
        children = () if kind == "empty" else tuple(e for e in draw(_some) if e != parent)
        return _make(
            n,
            minute,
            event_type="AggregationEvent",
            action="ADD" if kind == "pack" else draw(st.sampled_from(("DELETE", "OBSERVE"))),
            biz_step="packing" if kind == "pack" else "unpacking",
            parent_id=parent,
            child_epcs=children,
        )
    if kind in ("ship", "receive"):
        seller, buyer = draw(st.permutations(_PARTIES))
        return _make(
            n,
            minute,
            biz_step="shipping" if kind == "ship" else "receiving",
            epcs=draw(_some),
            sources=(("owning_party", seller), ("location", seller)),
            destinations=(("owning_party", buyer), ("location", buyer)),
            biz_location=None if kind == "ship" else buyer,
        )
    if kind == "end":
        step, disposition, action = draw(
            st.sampled_from(
                [
                    ("dispensing", "dispensed", "OBSERVE"),
                    ("decommissioning", "inactive", "OBSERVE"),
                    (None, None, "DELETE"),
                    ("destroying", None, "OBSERVE"),
                    (None, "recalled", "OBSERVE"),
                ]
            )
        )
        return _make(
            n, minute, biz_step=step, disposition=disposition, action=action, epcs=draw(_some)
        )
    return _make(n, minute, biz_step="storing", epcs=draw(_some), biz_location=draw(_party))


@st.composite
def _history(draw: st.DrawFn) -> list[EventFacts]:
    count = draw(st.integers(1, 14))
    return [draw(_event(n)) for n in range(count)]


# --- the fold -----------------------------------------------------------------------------------


def _folds_agree(all_facts: list[EventFacts]) -> None:
    fast = _recompute_all(all_facts, compute_state)
    slow = _recompute_all(all_facts)
    assert fast == slow


def test_fast_fold_equals_the_reference_fold_on_the_scenario() -> None:
    all_facts = facts(scenario_events())
    _folds_agree(all_facts)
    states, _ = _recompute_all(all_facts, compute_state)
    assert set(states) == {*ITEMS, *CASES, PALLET}


@settings(max_examples=60, deadline=None)
@given(_history())
def test_fast_fold_equals_the_reference_fold_on_generated_histories(
    history: list[EventFacts],
) -> None:
    _folds_agree(history)


def test_gtin_memo_gives_the_reference_check_digits() -> None:
    for epc in (
        *ITEMS,
        *CASES,
        PALLET,
        "urn:epc:id:sgtin:0614141.112345.400",
        "https://id.gs1.org/01/09506000134352/21/abc",
        "urn:epc:id:sgtin:0614141.012345.x",
    ):
        assert gtin_of(epc) == reference.gtin_of(epc)


def test_kind_and_gtin_in_one_match_equal_the_separate_readings() -> None:
    for epc in (
        *ITEMS,
        *CASES,
        PALLET,
        "urn:epc:id:sgtin:0614141.112345.400",
        "https://id.gs1.org/01/09506000134352/21/abc",
        "https://id.gs1.org/00/106141412345678908",
        "urn:epc:id:sgtin:0614141.012345.x",
        "urn:epc:id:sgtin:0614141.012345.",
        "urn:epc:id:sscc:0614141.1234567890",
        "urn:epc:id:grai:0614141.12345.1",
    ):
        assert _kind_and_gtin(epc) == (_kind_of(epc), gtin_of(epc))


def test_a_twin_filled_slot_by_slot_equals_the_dataclass_built_one() -> None:
    assert SerialState.__slots__[:3] == ("epc", "kind", "gtin")
    assert [f.name for f in fields(SerialState)] == list(SerialState.__slots__)
    assert not hasattr(SerialState, "__post_init__")
    states, _ = _recompute_all(facts(scenario_events()))
    full = SerialState(*(f"v{n}" for n in range(len(fields(SerialState)))))  # type: ignore[arg-type]
    for state in [*states.values(), full, SerialState(epc="x", kind="other")]:
        for epc in (ITEMS[0], PALLET, "https://id.gs1.org/01/09506000134352/21/abc"):
            twin = _with_identity(state, epc)
            expected = replace(state, epc=epc, kind=_kind_of(epc), gtin=gtin_of(epc))
            assert twin == expected
            assert hash(twin) == hash(expected)
            assert repr(twin) == repr(expected)


# --- the projection -----------------------------------------------------------------------------


async def _project(batches: list[list[EventFacts]], cache: int) -> dict[str, SerialState]:
    store = SQLiteTraceabilityStore(":memory:")
    store._cache = FactsCache(cache)
    await store.open()
    try:
        projection = SerialStateProjection(store)
        for batch in batches:
            await projection.apply(batch)
        return await store.get_states(_UNIVERSE)
    finally:
        await store.close()


@settings(max_examples=40, deadline=None)
@given(
    _history(), st.randoms(use_true_random=False), st.sampled_from([1, 3, 10_000]), st.booleans()
)
def test_incremental_projection_equals_recomputing_everything(
    history: list[EventFacts], rng: Any, cache: int, full_cases: bool
) -> None:
    """Any arrival order and batching, and a cache of any size (1 evicts all the time); with
    full cases, many siblings share their containment and their fold."""
    if full_cases:
        history = _with_full_cases(history)
    shuffled = list(history)
    rng.shuffle(shuffled)
    batches: list[list[EventFacts]] = []
    while shuffled:
        size = rng.randint(1, 5)
        batches.append(shuffled[:size])
        shuffled = shuffled[size:]
    expected, _ = _recompute_all(history)
    assert asyncio.run(_project(batches, cache)) == expected


async def test_findings_of_one_update_are_those_of_recomputing_everything() -> None:
    all_facts = facts(scenario_events())
    store = SQLiteTraceabilityStore(":memory:")
    await store.open()
    try:
        update = await SerialStateProjection(store).apply(all_facts)
    finally:
        await store.close()
    _, keys = _recompute_all(all_facts)
    assert {f.key for f in update.findings} == keys
    assert {s.epc: s for s in update.states} == _recompute_all(all_facts)[0]


def _with_full_cases(history: list[EventFacts]) -> list[EventFacts]:
    """``history`` after every serial was packed into one case and both cases on the pallet:
    siblings with the same events, whose containment is computed once and shared."""
    start = len(history)
    pack: dict[str, Any] = {"event_type": "AggregationEvent", "action": "ADD"}
    return [
        *history,
        _make(start, 0, parent_id=_CASES[0], child_epcs=_SERIALS, **pack),
        _make(start + 1, 1, parent_id=_PALLET, child_epcs=_CASES, **pack),
    ]


@settings(max_examples=40, deadline=None)
@given(_history())
def test_shared_containment_of_siblings_equals_recomputing_everything(
    history: list[EventFacts],
) -> None:
    """States and findings (which name their serial, so are never shared) of one update."""
    all_facts = _with_full_cases(history)

    async def apply() -> tuple[dict[str, SerialState], set[str]]:
        store = SQLiteTraceabilityStore(":memory:")
        await store.open()
        try:
            update = await SerialStateProjection(store).apply(all_facts)
            stored = await store.intervals_for_children(_UNIVERSE)
        finally:
            await store.close()
        assert {c: found for c, found in stored.items() if found} == _all_intervals(all_facts)
        return {s.epc: s for s in update.states}, {f.key for f in update.findings}

    assert asyncio.run(apply()) == _recompute_all(all_facts)


def _all_intervals(all_facts: list[EventFacts]) -> dict[str, list[Interval]]:
    """Each identifier's containment, child by child, as the projection did before sharing."""
    by_epc: dict[str, list[EventFacts]] = {}
    for f in {f.hash_id: f for f in all_facts}.values():
        for epc in dict.fromkeys(f.names()):
            by_epc.setdefault(epc, []).append(f)
    found: dict[str, list[Interval]] = {}
    for epc, own in by_epc.items():
        relevant = list(own)
        for container in {f.parent_id for f in own if f.parent_id and f.parent_id != epc}:
            relevant.extend(by_epc.get(container, ()))
        intervals, _ = intervals_for_child(epc, relevant)
        if intervals:
            found[epc] = intervals
    return found


def test_siblings_share_containment_but_keep_their_own_name_and_findings() -> None:
    packed = _make(
        1, 0, event_type="AggregationEvent", action="ADD", parent_id=_CASES[0], child_epcs=_SERIALS
    )
    # The second serial is unpacked from a case it is not in: a finding for it alone.
    wrong = _make(
        2,
        1,
        event_type="AggregationEvent",
        action="DELETE",
        parent_id=_CASES[1],
        child_epcs=_SERIALS[1:2],
    )
    emptied = _make(3, 2, event_type="AggregationEvent", action="DELETE", parent_id=_CASES[0])
    all_facts = [packed, wrong, emptied]

    async def apply() -> tuple[SerialState, ...]:
        store = SQLiteTraceabilityStore(":memory:")
        await store.open()
        try:
            update = await SerialStateProjection(store).apply(all_facts)
            intervals = await store.intervals_for_children(_SERIALS)
        finally:
            await store.close()
        unpacked = [f for f in update.findings if f.type is ExceptionType.NOT_IN_CONTAINER]
        assert [f.identifiers for f in unpacked] == [(_SERIALS[1],)]
        for serial in _SERIALS:
            assert intervals[serial] == [Interval(_CASES[0], serial, packed.key, emptied.key)]
        return update.states

    states = asyncio.run(apply())
    assert {s.epc: s for s in states} == _recompute_all(all_facts)[0]


# --- encodings and caches -------------------------------------------------------------------


def _generic(state: SerialState) -> dict[str, Any]:
    data: dict[str, Any] = {f.name: getattr(state, f.name) for f in fields(state)}
    for name in ("expiry", "commissioned_at", "last_event_time"):
        data[name] = data[name].isoformat() if data[name] is not None else None
    data["lifecycle"] = state.lifecycle.value
    data["status"] = state.status.value
    return data


def test_state_encoding_with_memoised_times_equals_the_generic_one() -> None:
    states, _ = _recompute_all(facts(scenario_events()))
    plus_two = timezone(timedelta(hours=2))
    same_instant = datetime(2026, 1, 5, 10, 0, tzinfo=plus_two)
    extra = [
        SerialState(epc="a", kind="other", commissioned_at=T0),
        SerialState(epc="b", kind="other", commissioned_at=same_instant),
        SerialState(epc="c", kind="other", expiry=date(2027, 1, 1), last_event_time=T0),
    ]
    assert same_instant == extra[0].commissioned_at  # equal instants, printed differently
    iso = memo_iso()
    for state in [*states.values(), *extra]:
        assert state_to_dict(state, iso) == _generic(state)
        assert list(state_to_dict(state, iso)) == list(_generic(state))


def test_facts_cache_keeps_the_newest_and_moves_refreshed_entries_to_the_end() -> None:
    made = [_make(n, n, epcs=(_SERIALS[0],)) for n in range(4)]
    cache = FactsCache(2)
    for f in made[:2]:
        cache.put(f)
    cache.put(made[0])  # refreshed: now the newest
    cache.put(made[2])
    assert [cache.get(f.hash_id) for f in made] == [made[0], None, made[2], None]
    cache.clear()
    assert cache.get(made[0].hash_id) is None


async def test_facts_for_is_the_same_with_a_cold_and_an_evicting_cache() -> None:
    all_facts = facts(scenario_events())
    answers = []
    for capacity in (10_000, 2, 0):
        store = SQLiteTraceabilityStore(":memory:")
        store._cache = FactsCache(capacity)
        await store.open()
        try:
            await store.add_facts(all_facts)
            if capacity == 0:
                store._cache.clear()
            found = await store.facts_for([*ITEMS, *CASES, PALLET, "urn:epc:id:sgtin:0.0.none"])
        finally:
            await store.close()
        answers.append({epc: sorted(f.hash_id for f in fs) for epc, fs in found.items()})
        assert all(f in all_facts for fs in found.values() for f in fs)
    assert answers[0] == answers[1] == answers[2]


def _recursive_lot_and_expiry(ilmd: Iterable[XmlElement]) -> tuple[str | None, date | None]:
    """The recursive walk the stack-based one replaced."""
    lot: str | None = None
    expiry: date | None = None

    def walk(elements: Iterable[XmlElement]) -> Iterable[XmlElement]:
        for element in elements:
            yield element
            yield from walk(element.children)

    for element in walk(ilmd):
        if element.namespace not in ("urn:epcglobal:cbv:mda", "http://epcis.gs1us.org/hc/ns"):
            continue
        if not element.text:
            continue
        if element.name == "lotNumber":
            lot = element.text.strip()
        elif element.name == "itemExpirationDate":
            try:
                expiry = date.fromisoformat(element.text.strip())
            except ValueError:
                expiry = None
    return lot, expiry


_MDA = "urn:epcglobal:cbv:mda"
_leaf = st.builds(
    XmlElement,
    namespace=st.sampled_from((_MDA, "urn:other")),
    name=st.sampled_from(("lotNumber", "itemExpirationDate", "x")),
    text=st.sampled_from(("L1", " L2 ", "2027-01-31", "bad", None)),
)
_tree = st.recursive(
    _leaf,
    lambda inner: st.builds(
        XmlElement,
        namespace=st.just(_MDA),
        name=st.just("group"),
        children=st.lists(inner, max_size=3).map(tuple),
    ),
    max_leaves=8,
)


@settings(max_examples=60, deadline=None)
@given(st.lists(_tree, max_size=4))
def test_ilmd_walk_finds_what_the_recursive_walk_found(ilmd: list[XmlElement]) -> None:
    assert _lot_and_expiry(ilmd) == _recursive_lot_and_expiry(ilmd)


def test_state_encoder_gives_the_text_of_json_dumps_for_runs_of_twins() -> None:
    states, _ = _recompute_all(facts(scenario_events()))
    plus_two = timezone(timedelta(hours=2))
    base = SerialState(epc="x", kind="sgtin", gtin="g", lot="L1", commissioned_at=T0)
    twins = [
        replace(base, epc=epc)
        for epc in ("urn:epc:id:sgtin:1.2.a", 'quote"d', "caf\u00e9", "urn:epc:id:sgtin:1.2.b")
    ]
    other_offset = replace(base, epc="y", commissioned_at=T0.astimezone(plus_two))
    encoder = StateEncoder()
    for state in [*states.values(), *twins, other_offset, *twins]:
        text = encoder.encode(state)
        assert text == json.dumps(_generic(state))
        assert state_from_dict(json.loads(text)) == state


def test_state_decoding_fills_defaults_for_records_without_every_field() -> None:
    stored = {"epc": "e", "kind": "sgtin", "lifecycle": "received", "status": "received"}
    assert state_from_dict(stored) == SerialState(
        epc="e", kind="sgtin", lifecycle=Status.RECEIVED, status=Status.RECEIVED
    )
    full = _generic(SerialState(epc="e", kind="sgtin", expiry=date(2027, 1, 1)))
    assert state_from_dict({"_id": "e", **full}).expiry == date(2027, 1, 1)


@settings(max_examples=30, deadline=None)
@given(_history())
def test_facts_come_back_from_their_stored_json_unchanged(history: list[EventFacts]) -> None:
    for f in [*history, *facts(scenario_events())]:
        assert EventFacts.from_json(f.to_json()) == f


def test_stored_facts_json_is_the_text_the_generic_encoding_gave() -> None:
    for f in facts(scenario_events()):
        data: dict[str, Any] = {name: getattr(f, name) for name in f.__slots__}
        data["event_time"] = f.event_time.isoformat()
        data["expiry"] = f.expiry.isoformat() if f.expiry else None
        assert f.to_json() == json.dumps(data, separators=(",", ":"))


async def test_add_facts_reports_each_new_hash_once_in_order() -> None:
    all_facts = facts(scenario_events())
    store = SQLiteTraceabilityStore(":memory:")
    await store.open()
    try:
        assert await store.add_facts(all_facts[:2]) == all_facts[:2]
        again = [all_facts[1], all_facts[3], all_facts[2], all_facts[3], all_facts[0]]
        assert await store.add_facts(again) == [all_facts[3], all_facts[2]]
        found = await store.facts_for([PALLET])
        assert {f.hash_id for f in found[PALLET]} <= {f.hash_id for f in all_facts[:4]}
    finally:
        await store.close()


def _reference_from_event(event: EventBase, hash_id: str, document_id: str | None) -> EventFacts:
    """``EventFacts.from_event`` as it was before reading fields by class."""
    parent = getattr(event, "parent_id", None)
    if isinstance(event, AggregationEvent):
        epcs: tuple[str, ...] = ()
        children = event.child_epcs
    elif isinstance(event, TransformationEvent):
        epcs, children = event.input_epc_list + event.output_epc_list, ()
    else:
        epcs, children = tuple(getattr(event, "epc_list", ())), ()
    ilmd = event.ilmd if isinstance(event, ObjectEvent | TransformationEvent) else None
    lot, expiry = _lot_and_expiry(ilmd or ())
    action = getattr(event, "action", None)
    return EventFacts(
        hash_id=hash_id,
        event_id=event.event_id or hash_id,
        event_type=type(event).__name__,
        event_time=event.event_time,
        action=str(action) if action is not None else None,
        biz_step=event.biz_step,
        disposition=event.disposition,
        read_point=event.read_point,
        biz_location=event.biz_location,
        epcs=epcs,
        parent_id=parent,
        child_epcs=children,
        sources=tuple((s.type, s.value) for s in event.source_list),
        destinations=tuple((d.type, d.value) for d in event.destination_list),
        biz_transactions=tuple((b.type or "", b.value) for b in event.biz_transaction_list),
        lot=lot,
        expiry=expiry,
        document_id=document_id,
    )


def _fixture_events() -> list[EventBase]:
    events: list[EventBase] = list(scenario_events())
    for path in sorted(_FIXTURES.rglob("*.xml")):
        try:
            events.extend(read_document(path.read_bytes()).events)
        except EPCISError:
            continue  # the fixtures of broken documents
    return events


def test_facts_from_events_are_those_of_the_generic_reading() -> None:
    events = _fixture_events()
    kinds = {type(e).__name__ for e in events}
    assert kinds >= {"ObjectEvent", "AggregationEvent", "TransactionEvent", "TransformationEvent"}
    assert any(e.source_list for e in events)
    assert any(e.biz_transaction_list for e in events)
    for n, event in enumerate(events):
        for document_id in (None, "doc"):
            expected = _reference_from_event(event, f"h{n}", document_id)
            assert EventFacts.from_event(event, f"h{n}", document_id) == expected


def test_compact_facts_json_is_what_json_dumps_gives() -> None:
    for f in [
        *facts(scenario_events()),
        *(EventFacts.from_event(e, "h") for e in _fixture_events()),
    ]:
        data: dict[str, Any] = {name: getattr(f, name) for name in f.__slots__}
        data["event_time"] = f.event_time.isoformat()
        data["expiry"] = f.expiry.isoformat() if f.expiry else None
        assert f.to_json() == json.dumps(data, separators=(",", ":"))


_TEXT = st.one_of(st.none(), st.text(max_size=12))
_TIMES = st.one_of(
    st.none(),
    st.datetimes(timezones=st.sampled_from([UTC, timezone(timedelta(hours=-5))])),
)


@settings(max_examples=60, deadline=None)
@given(
    texts=st.lists(_TEXT, min_size=11, max_size=11),
    expiry=st.one_of(st.none(), st.dates()),
    commissioned=_TIMES,
    last=_TIMES,
    lifecycle=st.sampled_from(list(Status)),
    status=st.sampled_from(list(Status)),
    recalled=st.booleans(),
)
def test_state_decoding_slot_by_slot_equals_the_dataclass(
    texts: list[str | None],
    expiry: date | None,
    commissioned: datetime | None,
    last: datetime | None,
    lifecycle: Status,
    status: Status,
    recalled: bool,
) -> None:
    # Every field its own value, so a setter out of field order cannot go unnoticed.
    gtin, lot, commissioner, event, parent, top, owner, custodian, location, destination, ship = (
        texts
    )
    state = SerialState(
        epc="urn:epc:id:sgtin:030001.0012345.1",
        kind="sgtin",
        gtin=gtin,
        lot=lot,
        expiry=expiry,
        commissioned_at=commissioned,
        commissioner=commissioner,
        commissioning_event=event,
        parent=parent,
        top_container=top,
        owner=owner,
        custodian=custodian,
        location=location,
        destination=destination,
        lifecycle=lifecycle,
        recalled_in_data=recalled,
        status=status,
        last_event=event,
        last_event_time=last,
        last_shipment=ship,
    )
    stored = json.loads(json.dumps(state_to_dict(state)))
    decoded = state_from_dict(stored)
    assert decoded == state
    assert [getattr(decoded, f.name) for f in fields(SerialState)] == [
        getattr(state, f.name) for f in fields(SerialState)
    ]
    assert hash(decoded) == hash(state)
