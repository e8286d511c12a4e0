"""Chain of custody of one package: its events (direct or inferred), ownership changes with
their DSCSA transaction information, and its current state."""

from __future__ import annotations

from dataclasses import asdict, dataclass, replace
from datetime import date, datetime
from typing import Any

from epcis.errors import EPCISError, InvalidIdentifierError
from epcis.identifiers import canonical_epc, parse_scan
from service.containment import EventFacts, TimelineEntry
from service.master_data import PartyRecord, ProductRecord
from service.partners import party_keys
from service.serial_state import SerialState, effective_status
from service.traceability_store import (
    RecallSummary,
    TraceabilityStore,
    TraceView,
    known_spelling,
)

__all__ = [
    "OwnershipChange",
    "Party",
    "PartyMatch",
    "RecallNotice",
    "Trace",
    "TraceEvent",
    "UnknownIdentifierError",
    "partner_state",
    "partner_trace",
    "resolve_identifier",
    "trace",
]


class UnknownIdentifierError(EPCISError):
    """No event names this identifier (404)."""

    problem_type = "epcisException:NoSuchResourceException"
    status = 404


def resolve_identifier(text: str) -> str:
    """The canonical EPC of an EPC URN, a GS1 Digital Link, or scanned barcode data."""
    value = text.strip()
    if not value:
        raise InvalidIdentifierError("empty identifier")
    if value.startswith(("urn:epc:id:", "http://", "https://")):
        return canonical_epc(value)
    return canonical_epc(parse_scan(value).epc)


@dataclass(frozen=True, slots=True)
class Party:
    id: str
    name: str | None = None
    address: str | None = None


@dataclass(frozen=True, slots=True)
class TraceEvent:
    hash_id: str
    event_id: str
    event_type: str
    event_time: datetime
    action: str | None
    biz_step: str | None
    disposition: str | None
    read_point: str | None
    biz_location: str | None
    inferred: bool
    via: tuple[str, ...]


@dataclass(frozen=True, slots=True)
class OwnershipChange:
    """DSCSA transaction information of one shipping event that applies to the package."""

    event_hash: str
    shipment_date: datetime
    # The GS1 US guideline leaves the transaction date's EPCIS home open; the shipping
    # event time stands in for it, as most implementations do.
    transaction_date: date
    seller: Party | None
    buyer: Party | None
    ship_from: Party | None
    ship_to: Party | None
    purchase_orders: tuple[str, ...]
    despatch_advices: tuple[str, ...]
    product_name: str | None
    strength: str | None
    dosage_form: str | None
    ndc: str | None
    lot: str | None
    expiry: date | None
    via: tuple[str, ...]


@dataclass(frozen=True, slots=True)
class RecallNotice:
    """A recall covering the package: when, by whom (None in a partner's view), why, scope."""

    recall_id: str
    created_at: datetime
    created_by: str | None
    reason: str | None
    scope: str  # "lot" (gtin and lot) or "serials" (the package, or a container of it, listed)
    gtin: str | None
    lot: str | None


@dataclass(frozen=True, slots=True)
class Trace:
    identifier: str
    status: str
    state: SerialState
    events: tuple[TraceEvent, ...]
    ownership_changes: tuple[OwnershipChange, ...]
    recalls: tuple[RecallNotice, ...] = ()
    # Holds of open exceptions and determinations, by value (empty in a partner's view).
    holds: tuple[str, ...] = ()
    # "full" for operators and auditors, "partner" for a trading partner's restricted view.
    view: str = "full"

    def to_json(self) -> dict[str, Any]:
        data: dict[str, Any] = asdict(self)
        return _jsonable(data)  # type: ignore[no-any-return]


def _jsonable(value: Any) -> Any:
    if isinstance(value, dict):
        return {k: _jsonable(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_jsonable(v) for v in value]
    if isinstance(value, datetime | date):
        return value.isoformat()
    return value


async def trace(
    store: TraceabilityStore, identifier: str, *, party: frozenset[str] | None = None
) -> Trace:
    """The full trace; with ``party`` (the match keys of a trading partner's GLNs, see
    :func:`service.partners.party_keys`) only what that partner is party to, see
    :func:`partner_trace`, and the same 404 when it is party to nothing."""
    epc = resolve_identifier(identifier)
    view = await store.trace_view(epc)
    if view.state is None:
        spelling = await known_spelling(store, epc)
        if spelling != epc:
            epc, view = spelling, await store.trace_view(spelling)
    state, entries = view.state, view.entries
    unknown = UnknownIdentifierError(f"no event names {epc}")
    if state is None or not entries:
        raise unknown
    if party is not None:
        restricted = partner_trace(epc, view, state, party)
        if restricted is None:
            # The same answer as for an identifier nobody recorded: no existence oracle.
            raise unknown
        return restricted
    status = effective_status(state, view.recalled, view.holds)
    shipments = [e for e in entries if e.facts.biz_step == "shipping"]
    product = view.products.get(state.gtin) if state.gtin else None
    return Trace(
        identifier=epc,
        status=status.value,
        state=state,
        events=tuple(_event(e) for e in entries),
        ownership_changes=tuple(_change(e, state, product, view.parties) for e in shipments),
        recalls=tuple(_notice(r) for r in view.recalls),
        holds=tuple(sorted(h.value for h in view.holds)),
    )


def _notice(recall: RecallSummary) -> RecallNotice:
    return RecallNotice(
        recall.recall_id,
        recall.created_at,
        recall.created_by,
        recall.reason,
        recall.scope,
        recall.gtin,
        recall.lot,
    )


def _event(entry: TimelineEntry) -> TraceEvent:
    f = entry.facts
    return TraceEvent(
        f.hash_id,
        f.event_id,
        f.event_type,
        f.event_time,
        f.action,
        f.biz_step,
        f.disposition,
        f.read_point,
        f.biz_location,
        entry.inferred,
        entry.via,
    )


def _party(party_id: str | None, parties: dict[str, PartyRecord]) -> Party | None:
    if party_id is None:
        return None
    record = parties.get(party_id)
    return Party(party_id, record.name, record.address) if record else Party(party_id)


def _transactions(facts: EventFacts, kind: str) -> tuple[str, ...]:
    return tuple(value for type_, value in facts.biz_transactions if type_ == kind)


def _change(
    entry: TimelineEntry,
    state: SerialState,
    product: ProductRecord | None,
    parties: dict[str, PartyRecord],
) -> OwnershipChange:
    f = entry.facts
    return OwnershipChange(
        event_hash=f.hash_id,
        shipment_date=f.event_time,
        transaction_date=f.event_time.date(),
        seller=_party(f.source("owning_party"), parties),
        buyer=_party(f.destination("owning_party"), parties),
        ship_from=_party(f.source("location"), parties),
        ship_to=_party(f.destination("location"), parties),
        purchase_orders=_transactions(f, "po"),
        despatch_advices=_transactions(f, "desadv"),
        product_name=product.name if product else None,
        strength=product.strength if product else None,
        dosage_form=product.dosage_form if product else None,
        ndc=product.ndc if product else None,
        lot=state.lot,
        expiry=state.expiry,
        via=entry.via,
    )


class PartyMatch:
    """Whether a party or location identifier is one of a partner's (by match key)."""

    def __init__(self, keys: frozenset[str]) -> None:
        self._keys = keys
        self._seen: dict[str, bool] = {}

    def __call__(self, value: str | None) -> bool:
        if not value:
            return False
        hit = self._seen.get(value)
        if hit is None:
            hit = self._seen[value] = not party_keys(value).isdisjoint(self._keys)
        return hit

    def names(self, facts: EventFacts) -> bool:
        """The event names the partner: as a source or destination (owning party or
        location), or as where it happened (its read point or business location)."""
        return (
            any(self(value) for _, value in facts.sources)
            or any(self(value) for _, value in facts.destinations)
            or self(facts.read_point)
            or self(facts.biz_location)
        )


def partner_state(state: SerialState, mine: PartyMatch) -> SerialState:
    """The state fields a partner may see: what identifies the package and its status, and
    owner, custodian, location and destination only where they are the partner itself; the
    containers only while it has custody. Other parties' custody stays out."""

    def own(value: str | None) -> str | None:
        return value if mine(value) else None

    custody = mine(state.custodian)
    return SerialState(
        epc=state.epc,
        kind=state.kind,
        gtin=state.gtin,
        lot=state.lot,
        expiry=state.expiry,
        parent=state.parent if custody else None,
        top_container=state.top_container if custody else None,
        owner=own(state.owner),
        custodian=own(state.custodian),
        location=own(state.location) if custody else None,
        destination=own(state.destination),
        lifecycle=state.lifecycle,
        recalled_in_data=state.recalled_in_data,
        status=state.status,
    )


def partner_trace(
    epc: str, view: TraceView, state: SerialState, party: frozenset[str]
) -> Trace | None:
    """A trading partner's view, or None when it is party to none of the identifier's events.

    It sees the events (direct or through a container) that name it (see
    :meth:`PartyMatch.names`), the transaction information of the shipments among them (it is
    their seller or buyer, or they left or reached one of its locations), the status, the
    recalls (without who recorded them) and :func:`partner_state`; not other events, exception
    holds or other partners' custody.
    """
    mine = PartyMatch(party)
    entries = [e for e in view.entries if mine.names(e.facts)]
    if not entries:
        return None
    status = effective_status(state, view.recalled, view.holds)
    product = view.products.get(state.gtin) if state.gtin else None
    shipments = [e for e in entries if e.facts.biz_step == "shipping"]
    return Trace(
        identifier=epc,
        status=status.value,
        state=partner_state(state, mine),
        events=tuple(_event(e) for e in entries),
        ownership_changes=tuple(_change(e, state, product, view.parties) for e in shipments),
        recalls=tuple(replace(_notice(r), created_by=None) for r in view.recalls),
        view="partner",
    )
