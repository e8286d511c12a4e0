"""The Trace page: find a package, case, pallet or lot and show its chain of custody."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from aiohttp import web

from epcis.errors import EPCISError, InvalidIdentifierError
from epcis.identifiers import canonical_epc, parse_scan
from service.auth import Principal, Role
from service.exception_records import ExceptionRecord
from service.handlers.traceability import TRACEABILITY, Caller, view_party, visible_lot_serials
from service.master_data import PartyRecord, ProductRecord
from service.serial_state import SerialState, Status
from service.trace import Trace, UnknownIdentifierError, resolve_identifier, trace
from service.traceability_store import ExceptionFilter, TraceabilityStore
from service.verification_responder import serial_epc
from service.web.rendering import page, render

__all__ = ["LotView", "TraceView", "find", "get_trace", "lot_view", "trace_view"]

_DL = "https://id.gs1.org"


@dataclass(frozen=True, slots=True)
class TraceView:
    trace: Trace
    product: ProductRecord | None
    parties: dict[str, PartyRecord]
    exceptions: tuple[ExceptionRecord, ...]
    contents: tuple[str, ...]
    recalled: bool


@dataclass(frozen=True, slots=True)
class LotView:
    gtin: str
    lot: str
    product: ProductRecord | None
    serials: tuple[tuple[SerialState, Status], ...] = field(default=())


def _typed_identifier(text: str) -> str | tuple[str, str]:
    """An EPC, or ``(gtin, lot)`` when the input names a lot (a scan without serial)."""
    value = text.strip()
    if value.isdigit() and len(value) == 18:
        return canonical_epc(f"{_DL}/00/{value}")
    if value.startswith("urn:epc:id:"):
        return resolve_identifier(value)
    scanned = parse_scan(value)
    if scanned.serial is not None:
        return serial_epc(scanned.gtin, scanned.serial)
    if scanned.lot is not None:
        return scanned.gtin, scanned.lot
    raise InvalidIdentifierError(
        f"product code {scanned.gtin} alone names no package: add a serial number or a lot"
    )


def _by_parts(gtin: str, serial: str, lot: str) -> str | tuple[str, str]:
    if not (gtin.isdigit() and len(gtin) in (13, 14)):
        raise InvalidIdentifierError("a product code (GTIN) is 14 digits")
    gtin = gtin.zfill(14)
    if serial:
        return serial_epc(gtin, serial)
    if lot:
        return gtin, lot
    raise InvalidIdentifierError("give a serial number or a lot with the product code")


def _party_ids(result: Trace) -> set[str]:
    state = result.state
    ids = {state.owner, state.custodian, state.location, state.destination, state.commissioner}
    for event in result.events:
        ids.update((event.read_point, event.biz_location))
    for change in result.ownership_changes:
        for party in (change.seller, change.buyer, change.ship_from, change.ship_to):
            ids.add(party.id if party else None)
    return {i for i in ids if i}


async def _exceptions(store: TraceabilityStore, names: list[str]) -> tuple[ExceptionRecord, ...]:
    found: dict[str, ExceptionRecord] = {}
    for name in names:
        for record in await store.list_exceptions(ExceptionFilter(identifier=name, limit=50)):
            found[record.exception_id] = record
    return tuple(sorted(found.values(), key=lambda r: r.created_at))


async def trace_view(
    store: TraceabilityStore, epc: str, party: frozenset[str] | None = None
) -> TraceView:
    """What the page shows of ``epc``: the trace as ``GET /trace`` gives it to the same
    caller (``party``: see :func:`service.handlers.traceability.view_party`); exceptions and
    a container's contents only in the full view, as the JSON partner view has neither."""
    result = await trace(store, epc, party=party)
    state = result.state
    products = await store.get_products([state.gtin] if state.gtin else [])
    exceptions: tuple[ExceptionRecord, ...] = ()
    contents: tuple[str, ...] = ()
    if party is None:
        containers = [c for c in (state.parent, state.top_container) if c]
        names = [result.identifier, *dict.fromkeys(containers)]
        exceptions = await _exceptions(store, names)
        contents = tuple(sorted(await store.children_ever([result.identifier])))
    return TraceView(
        trace=result,
        product=products.get(state.gtin) if state.gtin else None,
        parties=await store.get_parties(_party_ids(result)),
        exceptions=exceptions,
        contents=contents,
        recalled=state.recalled_in_data or bool(result.recalls),
    )


async def lot_view(
    store: TraceabilityStore, gtin: str, lot: str, party: frozenset[str] | None = None
) -> LotView:
    """The lot's serials as ``GET /lots`` gives them to the same caller."""
    products = await store.get_products([gtin])
    rows = await visible_lot_serials(store, gtin, lot, party)
    return LotView(gtin, lot, products.get(gtin), tuple(sorted(rows, key=lambda r: r[0].epc)))


async def find(
    store: TraceabilityStore, query: dict[str, str], party: frozenset[str] | None = None
) -> TraceView | LotView | None:
    text = query.get("q", "").strip()
    parts = (query.get("gtin", ""), query.get("serial", ""), query.get("lot", ""))
    if text:
        target = _typed_identifier(text)
    elif any(p.strip() for p in parts):
        target = _by_parts(*(p.strip() for p in parts))
    else:
        return None
    if isinstance(target, tuple):
        return await lot_view(store, *target, party)
    return await trace_view(store, target, party)


def _party(principal: Principal) -> frozenset[str] | None:
    # The JSON routes' own decision, so the page never shows a partner more (or less).
    return view_party(Caller(principal.partner_id, principal.role.value, principal.identifiers))


@page(Role.OPERATOR, Role.AUDITOR, Role.PARTNER)
async def get_trace(request: web.Request, principal: Principal) -> web.StreamResponse:
    query = {k: request.query.get(k, "") for k in ("q", "gtin", "serial", "lot")}
    party = _party(principal)
    context: dict[str, Any] = {"query": query, "view": None, "error": None}
    context["partner_view"] = party is not None
    status = 200
    try:
        view = await find(request.app[TRACEABILITY], query, party)
    except UnknownIdentifierError as error:
        context["error"], status = f"Nothing is recorded for this identifier ({error}).", 404
    except (InvalidIdentifierError, EPCISError) as error:
        context["error"], status = f"This could not be read as an identifier: {error}", 400
    else:
        context["view"] = view
        context["kind"] = "lot" if isinstance(view, LotView) else "trace"
    return render(request, "trace.html", principal=principal, status=status, **context)
