"""The traceability store port: projection (facts, containment, serial state), exceptions, recalls,
master data; with the record codecs every adapter shares."""

from __future__ import annotations

import itertools
import json
from collections.abc import Callable, Collection, Sequence
from dataclasses import dataclass, fields
from datetime import date, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol

from epcis.errors import InvalidIdentifierError
from epcis.identifiers import gs1_key_pairs, sgtin_spellings
from service.containment import EventFacts, Interval, TimelineEntry
from service.exception_records import (
    Determination,
    ExceptionRecord,
    ExceptionStatus,
    ExceptionType,
    Hold,
    Resolution,
)
from service.master_data import PartyRecord, ProductRecord
from service.serial_state import ProjectionStore, SerialState, Status, load_timeline

if TYPE_CHECKING:
    from service.settings import Settings

__all__ = [
    "ExceptionFilter",
    "FactsCache",
    "RecallRecord",
    "RecallSummary",
    "StateEncoder",
    "TraceView",
    "TraceabilityStore",
    "VerificationView",
    "exception_from_dict",
    "exception_to_dict",
    "gather_trace_view",
    "interval_from_row",
    "interval_to_row",
    "memo_iso",
    "open_traceability_store",
    "recall_from_dict",
    "recall_summary",
    "recall_summary_from_dict",
    "recall_to_dict",
    "resolution_from_dict",
    "resolution_to_dict",
    "shipment_party_ids",
    "sorted_recalls",
    "sqlite_traceability_path",
    "state_from_dict",
    "state_to_dict",
]


class FactsCache:
    """Decoded event facts by hash, newest kept, for one store adapter.

    Facts are immutable and keyed by their event's hash, so a cached entry is never stale
    (``clear`` goes with ``clear_projection``). It exists because decoding stored facts from
    JSON was the largest cost of keeping state current: a capture batch reads back the facts
    it has just written and those of the serials it touched a moment ago.
    """

    def __init__(self, capacity: int = 20_000) -> None:
        self._capacity = capacity
        self._facts: dict[str, EventFacts] = {}

    def get(self, hash_id: str) -> EventFacts | None:
        return self._facts.get(hash_id)

    def put(self, facts: EventFacts) -> None:
        cached = self._facts
        cached.pop(facts.hash_id, None)
        cached[facts.hash_id] = facts
        if len(cached) > self._capacity:
            # Oldest first: dicts keep insertion order, and put() moves an entry to the end.
            for stale in list(itertools.islice(cached, len(cached) - self._capacity)):
                del cached[stale]

    def clear(self) -> None:
        self._facts.clear()


@dataclass(frozen=True, slots=True)
class RecallRecord:
    """A recall of a lot (``gtin`` + ``lot``) or of a list of serials (with their contents)."""

    recall_id: str
    created_at: datetime
    created_by: str
    reason: str | None = None
    gtin: str | None = None
    lot: str | None = None
    serials: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True)
class RecallSummary:
    """A recall as a trace shows it: when, by whom, why, and its scope; without its serial list
    (a lot's recall lists every serial of the lot: too much to read for every trace)."""

    recall_id: str
    created_at: datetime
    created_by: str
    reason: str | None = None
    gtin: str | None = None
    lot: str | None = None

    @property
    def scope(self) -> str:
        """``lot`` for a recall of a GTIN's lot, ``serials`` for one of listed serials."""
        return "lot" if self.lot is not None else "serials"


def recall_summary(recall: RecallRecord) -> RecallSummary:
    return RecallSummary(
        recall.recall_id,
        recall.created_at,
        recall.created_by,
        recall.reason,
        recall.gtin,
        recall.lot,
    )


def recall_summary_from_dict(data: dict[str, Any]) -> RecallSummary:
    """A summary from a recall's stored form, with or without its serials."""
    return recall_summary(recall_from_dict({**data, "serials": ()}))


def _recall_order(summary: RecallSummary) -> tuple[datetime, str]:
    return (summary.created_at, summary.recall_id)


@dataclass(frozen=True, slots=True)
class ExceptionFilter:
    type: ExceptionType | None = None
    status: ExceptionStatus | None = None
    partner_id: str | None = None
    identifier: str | None = None
    limit: int = 100
    determination: Determination | None = None

    @property
    def derived(self) -> bool:
        """Whether it filters on what resolutions decide, so only after loading them."""
        return self.status is not None or self.determination is not None

    def keeps(self, record: ExceptionRecord) -> bool:
        """The filters on what resolutions decide (the stored columns are matched in queries)."""
        return (self.status is None or record.status is self.status) and (
            self.determination is None or record.determination is self.determination
        )


@dataclass(frozen=True, slots=True)
class VerificationView:
    """What a verification needs about one serial, read in one store round trip: its state,
    whether a recall covers it (a stored recall or a recalled disposition in the data), and
    the holds of its open exceptions."""

    state: SerialState
    recalled: bool
    holds: frozenset[Hold]


@dataclass(frozen=True, slots=True)
class TraceView:
    """What a trace of one identifier reads: its timeline, state, recall and holds, and the
    master data of the parties its shipments name and of its product."""

    entries: tuple[TimelineEntry, ...]
    state: SerialState | None
    recalled: bool  # a stored recall covers it: what ``recalled([state])`` says
    holds: frozenset[Hold]
    parties: dict[str, PartyRecord]
    products: dict[str, ProductRecord]
    recalls: tuple[RecallSummary, ...] = ()  # what ``recalls_of(state)`` says


def shipment_party_ids(entries: Sequence[TimelineEntry]) -> set[str]:
    """Every party or location that the shipping events among ``entries`` name."""
    return {
        value
        for e in entries
        if e.facts.biz_step == "shipping"
        for _, value in (*e.facts.sources, *e.facts.destinations)
    }


class TraceabilityStore(ProjectionStore, Protocol):
    async def open(self) -> None: ...
    async def close(self) -> None: ...

    async def get_states(self, epcs: Collection[str]) -> dict[str, SerialState]: ...
    async def states_by_lot(self, gtin: str, lot: str) -> list[SerialState]: ...

    async def add_exceptions(self, records: Sequence[ExceptionRecord]) -> list[ExceptionRecord]:
        """Store new records; a record whose ``key`` is already stored is skipped."""
        ...

    async def add_resolution(self, resolution: Resolution) -> ExceptionRecord | None: ...
    async def get_exception(self, exception_id: str) -> ExceptionRecord | None: ...
    async def list_exceptions(self, query: ExceptionFilter) -> list[ExceptionRecord]: ...
    async def holds_for(self, epcs: Collection[str]) -> dict[str, set[Hold]]: ...

    async def add_recall(self, recall: RecallRecord) -> None: ...
    async def get_recall(self, recall_id: str) -> RecallRecord | None:
        """The whole recall as stored, serials included (ledger verification reads it)."""
        ...

    async def recalled(self, states: Sequence[SerialState]) -> set[str]:
        """The epcs among ``states`` that a recall covers (by serial, or by GTIN and lot)."""
        ...

    async def recalls_of(self, state: SerialState) -> list[RecallSummary]:
        """The recalls covering ``state``'s identifier (by serial, or by its GTIN and lot),
        oldest first; ``recalled([state])`` names it exactly when this is not empty."""
        ...

    async def verification_view(self, *spellings: str) -> VerificationView | None:
        """State, recall and holds of one serial in one round trip; None when it has no state.
        ``spellings`` are URNs of that one serial (usually one; see ``known_spelling``): the
        view is of the first that has state. ``recalled`` is ``state.recalled_in_data`` or
        what ``recalled([state])`` says, and ``holds`` what ``holds_for([epc])`` gives."""
        ...

    async def trace_view(self, epc: str) -> TraceView:
        """Everything a trace of ``epc`` reads, in as few round trips as the store allows."""
        ...

    async def put_products(self, products: Sequence[ProductRecord]) -> None: ...
    async def put_parties(self, parties: Sequence[PartyRecord]) -> None: ...
    async def get_products(self, gtins: Collection[str]) -> dict[str, ProductRecord]: ...
    async def get_parties(self, party_ids: Collection[str]) -> dict[str, PartyRecord]: ...

    # The pending-projection journal: a capture names its document here (durably) before
    # its events commit, and the name is cleared once their projection is durable; what a
    # crash leaves named is projected again at start-up (service.projection_recovery).
    async def add_pending_projection(self, document_id: str, capture_id: str, at: datetime) -> None:
        """Name ``document_id`` (captured by ``capture_id``); naming it again changes nothing."""
        ...

    async def pending_projections(self) -> list[tuple[str, str]]:
        """(document id, capture id) of each name not cleared, oldest first."""
        ...

    async def clear_pending_projections(self, document_ids: Collection[str]) -> None: ...


async def gather_trace_view(store: TraceabilityStore, epc: str) -> TraceView:
    """:class:`TraceView` from the store's single-purpose calls (adapters without a faster way)."""
    entries, _, _ = await load_timeline(store, epc)
    state = (await store.get_states([epc])).get(epc)
    recalls = tuple(await store.recalls_of(state)) if state is not None else ()
    holds = frozenset((await store.holds_for([epc])).get(epc, ()))
    parties = await store.get_parties(shipment_party_ids(entries))
    gtin = state.gtin if state is not None else None
    products = await store.get_products([gtin] if gtin else [])
    return TraceView(tuple(entries), state, bool(recalls), holds, parties, products, recalls)


def sorted_recalls(summaries: Collection[RecallSummary]) -> list[RecallSummary]:
    """Oldest first, each once: the order every adapter's ``recalls_of`` answers in."""
    unique = {s.recall_id: s for s in summaries}
    return sorted(unique.values(), key=_recall_order)


def _iso(value: datetime | date | None) -> str | None:
    return value.isoformat() if value is not None else None


def state_to_dict(
    state: SerialState, iso: Callable[[datetime | date | None], str | None] = _iso
) -> dict[str, Any]:
    """The stored form of a state, keys in field order; ``iso`` may be a memoising formatter.

    Written out field by field: ``dataclasses.fields`` and ``getattr`` per field cost a
    visible share of the projection, which stores every state it recomputes.
    """
    return {
        "epc": state.epc,
        "kind": state.kind,
        "gtin": state.gtin,
        "lot": state.lot,
        "expiry": iso(state.expiry),
        "commissioned_at": iso(state.commissioned_at),
        "commissioner": state.commissioner,
        "commissioning_event": state.commissioning_event,
        "parent": state.parent,
        "top_container": state.top_container,
        "owner": state.owner,
        "custodian": state.custodian,
        "location": state.location,
        "destination": state.destination,
        "lifecycle": state.lifecycle.value,
        "recalled_in_data": state.recalled_in_data,
        "status": state.status.value,
        "last_event": state.last_event,
        "last_event_time": iso(state.last_event_time),
        "last_shipment": state.last_shipment,
    }


def memo_iso() -> Callable[[datetime | date | None], str | None]:
    """An ISO formatter remembering its answers: the states of one batch share a few times
    (every item of a commissioning or a shipped case has the same ones)."""
    seen: dict[tuple[date, object], str] = {}

    def iso(value: datetime | date | None) -> str | None:
        if value is None:
            return None
        # The tzinfo is part of the key: equal instants in other offsets print differently.
        key = (value, getattr(value, "tzinfo", None))
        text = seen.get(key)
        if text is None:
            text = seen[key] = value.isoformat()
        return text

    return iso


def state_from_dict(data: dict[str, Any]) -> SerialState:
    """A state from its stored form; fields missing there (older records) take defaults."""
    try:
        return _state_from_full_dict(data)
    except KeyError:
        pass  # an older record without every field (or an unknown status: refused below)
    values: dict[str, Any] = {f.name: data[f.name] for f in fields(SerialState) if f.name in data}
    values["expiry"] = date.fromisoformat(data["expiry"]) if data.get("expiry") else None
    for name in ("commissioned_at", "last_event_time"):
        values[name] = datetime.fromisoformat(data[name]) if data.get(name) else None
    values["lifecycle"] = Status(data["lifecycle"])
    values["status"] = Status(data["status"])
    return SerialState(**values)


# The slots' setters in field order (a slotted dataclass's __slots__ are its fields).
_STATE_SLOT_SETTERS = tuple(getattr(SerialState, name).__set__ for name in SerialState.__slots__)
_STATUS_BY_VALUE = {status.value: status for status in Status}


def _state_from_full_dict(data: dict[str, Any]) -> SerialState:
    """A record with every field (all that this code writes), read on the path of every
    verification and trace: filled slot by slot, as the frozen dataclass's ``__init__`` sets
    each of the twenty fields through ``object.__setattr__`` (15 -> ~6 us a state)."""
    expiry, commissioned, last = data["expiry"], data["commissioned_at"], data["last_event_time"]
    values = (
        data["epc"],
        data["kind"],
        data["gtin"],
        data["lot"],
        date.fromisoformat(expiry) if expiry else None,
        datetime.fromisoformat(commissioned) if commissioned else None,
        data["commissioner"],
        data["commissioning_event"],
        data["parent"],
        data["top_container"],
        data["owner"],
        data["custodian"],
        data["location"],
        data["destination"],
        _STATUS_BY_VALUE[data["lifecycle"]],
        data["recalled_in_data"],
        _STATUS_BY_VALUE[data["status"]],
        data["last_event"],
        datetime.fromisoformat(last) if last else None,
        data["last_shipment"],
    )
    state: SerialState = object.__new__(SerialState)
    for set_slot, value in zip(_STATE_SLOT_SETTERS, values, strict=True):
        set_slot(state, value)
    return state


class StateEncoder:
    """JSON text of states as ``json.dumps(state_to_dict(state))`` gives it, faster for runs of
    states that differ only in their identifier (the items of one case): everything after
    ``epc`` (the first key) is encoded once per distinct rest and reused."""

    def __init__(self) -> None:
        self._iso = memo_iso()
        self._tails: dict[tuple[object, ...], str] = {}

    def encode(self, state: SerialState) -> str:
        rest = (
            state.kind,
            state.gtin,
            state.lot,
            state.expiry,
            state.commissioned_at,
            state.commissioner,
            state.commissioning_event,
            state.parent,
            state.top_container,
            state.owner,
            state.custodian,
            state.location,
            state.destination,
            state.lifecycle,
            state.recalled_in_data,
            state.status,
            state.last_event,
            state.last_event_time,
            state.last_shipment,
            # Equal instants in other offsets print differently: the offsets are in the key.
            _tz(state.commissioned_at),
            _tz(state.last_event_time),
        )
        tail = self._tails.get(rest)
        if tail is None:
            head = json.dumps(state.epc)
            text = json.dumps(state_to_dict(state, self._iso))
            tail = self._tails[rest] = text[len(_EPC_KEY) + len(head) :]
            return text
        return _EPC_KEY + json.dumps(state.epc) + tail


_EPC_KEY = '{"epc": '


def _tz(value: datetime | None) -> object:
    return value.tzinfo if value is not None else None


def interval_to_row(interval: Interval) -> dict[str, Any]:
    end = interval.end
    return {
        "parent": interval.parent,
        "child": interval.child,
        "start_time": _iso(interval.start[0]),
        "start_hash": interval.start[1],
        "end_time": _iso(end[0]) if end else None,
        "end_hash": end[1] if end else None,
    }


def interval_from_row(row: dict[str, Any]) -> Interval:
    end = (datetime.fromisoformat(row["end_time"]), row["end_hash"]) if row["end_time"] else None
    return Interval(
        parent=row["parent"],
        child=row["child"],
        start=(datetime.fromisoformat(row["start_time"]), row["start_hash"]),
        end=end,
    )


def resolution_to_dict(resolution: Resolution) -> dict[str, Any]:
    """The stored form; the determination and Form 3911 number are part of the record."""
    determination = resolution.determination
    return {
        "exception_id": resolution.exception_id,
        "note": resolution.note,
        "resolved_by": resolution.resolved_by,
        "resolved_at": resolution.resolved_at.isoformat(),
        "status": resolution.status.value,
        "determination": determination.value if determination is not None else None,
        "form3911": resolution.form3911,
    }


def resolution_from_dict(data: dict[str, Any]) -> Resolution:
    """A resolution from its stored form; records stored before determinations have none."""
    determination = data.get("determination")
    return Resolution(
        exception_id=data["exception_id"],
        note=data["note"],
        resolved_by=data["resolved_by"],
        resolved_at=datetime.fromisoformat(data["resolved_at"]),
        status=ExceptionStatus(data["status"]),
        determination=Determination(determination) if determination else None,
        form3911=data.get("form3911"),
    )


def exception_to_dict(record: ExceptionRecord) -> dict[str, Any]:
    """The stored form of a record, without its resolutions (those are stored apart)."""
    return {
        "exception_id": record.exception_id,
        "key": record.key,
        "type": record.type.value,
        "detail": record.detail,
        "created_at": record.created_at.isoformat(),
        "document_id": record.document_id,
        "partner_id": record.partner_id,
        "identifiers": list(record.identifiers),
        "event_hashes": list(record.event_hashes),
    }


def exception_from_dict(
    data: dict[str, Any], resolutions: Sequence[Resolution] = ()
) -> ExceptionRecord:
    return ExceptionRecord(
        exception_id=data["exception_id"],
        key=data["key"],
        type=ExceptionType(data["type"]),
        detail=data["detail"],
        created_at=datetime.fromisoformat(data["created_at"]),
        document_id=data.get("document_id"),
        partner_id=data.get("partner_id"),
        identifiers=tuple(data.get("identifiers", ())),
        event_hashes=tuple(data.get("event_hashes", ())),
        resolutions=tuple(resolutions),
    )


def recall_to_dict(recall: RecallRecord) -> dict[str, Any]:
    return {
        "recall_id": recall.recall_id,
        "created_at": recall.created_at.isoformat(),
        "created_by": recall.created_by,
        "reason": recall.reason,
        "gtin": recall.gtin,
        "lot": recall.lot,
        "serials": list(recall.serials),
    }


async def known_spelling(store: TraceabilityStore, epc: str) -> str:
    """``epc`` as ``store`` holds its state: ``epc`` itself, or another SGTIN URN spelling of the
    same GTIN and serial (see ``epcis.identifiers.sgtin_spellings``: documents may spell the URN
    with another company prefix length than the one a scan resolves to); ``epc`` when none has
    state. One store call."""
    try:
        pairs = gs1_key_pairs(epc)
    except InvalidIdentifierError:
        return epc
    if pairs is None or [ai for ai, _ in pairs] != ["01", "21"]:
        return epc
    (_, gtin), (_, serial) = pairs
    spellings = (epc, *(s for s in sgtin_spellings(gtin, serial) if s != epc))
    states = await store.get_states(spellings)
    return next((spelling for spelling in spellings if spelling in states), epc)


def recall_from_dict(data: dict[str, Any]) -> RecallRecord:
    return RecallRecord(
        recall_id=data["recall_id"],
        created_at=datetime.fromisoformat(data["created_at"]),
        created_by=data["created_by"],
        reason=data.get("reason"),
        gtin=data.get("gtin"),
        lot=data.get("lot"),
        serials=tuple(data.get("serials", ())),
    )


def sqlite_traceability_path(settings: Settings) -> Path:
    """The traceability store's (projection) file beside a SQLite event store's file."""
    return settings.sqlite_path.with_suffix(".traceability.sqlite")


def open_traceability_store(settings: Settings) -> TraceabilityStore:
    """The adapter for the configured store (not yet opened): a SQLite file beside the event
    store's (``events.sqlite`` -> ``events.traceability.sqlite``), or the same MongoDB database."""
    if settings.store_scheme == "sqlite":
        from service.sqlite_traceability_store import SQLiteTraceabilityStore

        path = sqlite_traceability_path(settings)
        path.parent.mkdir(parents=True, exist_ok=True)
        return SQLiteTraceabilityStore(path)
    from pymongo import AsyncMongoClient

    from service.mongo_traceability_store import MongoTraceabilityStore

    client: AsyncMongoClient[dict[str, Any]] = AsyncMongoClient(settings.store.get_secret_value())
    return MongoTraceabilityStore(client.get_default_database(), client=client)
