"""Chain of custody of one package: its events (direct or inferred), ownership changes with
their DSCSA transaction information, and its current state."""

from __future__ import annotations

import importlib
from collections.abc import Callable
from dataclasses import asdict, dataclass
from datetime import date, datetime
from typing import Any

from epcis.errors import EPCISError, InvalidIdentifierError
from service.containment import EventFacts, TimelineEntry
from service.master_data import PartyRecord, ProductRecord
from service.serial_state import SerialState, effective_status
from service.traceability_store import TraceabilityStore

__all__ = [
    "OwnershipChange",
    "Party",
    "Trace",
    "TraceEvent",
    "UnknownIdentifierError",
    "resolve_identifier",
    "trace",
]


class UnknownIdentifierError(EPCISError):
    """No event names this identifier (404)."""

    problem_type = "epcisException:NoSuchResourceException"
    status = 404


def _identifier_functions() -> tuple[Callable[[str], Any], Callable[[str], str]] | None:
    # epcis.identifiers is written in parallel: until it offers both, EPC URNs still work.
    try:
        identifiers = importlib.import_module("epcis.identifiers")
    except ImportError:
        return None
    parse_scan = getattr(identifiers, "parse_scan", None)
    canonical_epc = getattr(identifiers, "canonical_epc", None)
    if parse_scan is None or canonical_epc is None:
        return None
    return parse_scan, canonical_epc


def resolve_identifier(text: str) -> str:
    """The canonical EPC of an EPC URN, a GS1 Digital Link, or scanned barcode data."""
    value = text.strip()
    if not value:
        raise InvalidIdentifierError("empty identifier")
    functions = _identifier_functions()
    if value.startswith("urn:epc:id:"):
        return functions[1](value) if functions else value
    if functions is None:
        raise InvalidIdentifierError(f"cannot read {value!r} yet: only EPC URNs are understood")
    if value.startswith(("http://", "https://")):
        return functions[1](value)
    scanned = functions[0](value)
    # parse_scan gives an object (or a string) that canonical_epc turns into the EPC.
    return functions[1](scanned if isinstance(scanned, str) else str(scanned))


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
class Trace:
    identifier: str
    status: str
    state: SerialState
    events: tuple[TraceEvent, ...]
    ownership_changes: tuple[OwnershipChange, ...]

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


async def trace(store: TraceabilityStore, identifier: str) -> Trace:
    epc = resolve_identifier(identifier)
    view = await store.trace_view(epc)
    state, entries = view.state, view.entries
    if state is None or not entries:
        raise UnknownIdentifierError(f"no event names {epc}")
    status = effective_status(state, view.recalled, view.holds)
    shipments = [e for e in entries if e.facts.biz_step == "shipping"]
    product = view.products.get(state.gtin) if state.gtin else None
    return Trace(
        identifier=epc,
        status=status.value,
        state=state,
        events=tuple(_event(e) for e in entries),
        ownership_changes=tuple(_change(e, state, product, view.parties) for e in shipments),
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
