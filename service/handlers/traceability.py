"""Traceability endpoints: trace, lot view, recalls, exceptions and their resolutions."""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import asdict, dataclass
from datetime import UTC, datetime
from typing import Any

from aiohttp import web

from epcis.errors import InvalidDocumentError
from service.exception_records import (
    Determination,
    ExceptionRecord,
    ExceptionStatus,
    ExceptionType,
    Resolution,
    ResolutionRefusedError,
)
from service.recalls import RecallRequest, effective_statuses, lot_serials, recall
from service.serial_state import SerialState, Status
from service.trace import PartyMatch, partner_state, resolve_identifier, trace
from service.traceability_store import ExceptionFilter, TraceabilityStore

__all__ = [
    "TRACEABILITY",
    "Authorize",
    "Caller",
    "Identify",
    "InvalidRequestError",
    "exception_json",
    "resolution_from_body",
    "resolve_exception",
    "traceability_routes",
    "view_party",
    "visible_lot_serials",
]

TRACEABILITY = web.AppKey("traceability", TraceabilityStore)

# Given the request and the roles allowed, returns the caller's id or raises 401/403.
Authorize = Callable[[web.Request, tuple[str, ...]], str]

_READERS = ("operator", "auditor")
_OPERATORS = ("operator",)
_PARTNER = "partner"


@dataclass(frozen=True, slots=True)
class Caller:
    """Who asks: an id, a role, and for a trading partner the match keys of its GLNs."""

    id: str
    role: str
    identifiers: frozenset[str] = frozenset()


# Who the (authenticated) caller is; the routes open to trading partners decide with it.
Identify = Callable[[web.Request], Caller]


def _app_authorize(request: web.Request, roles: tuple[str, ...]) -> str:
    # Imported when called: service.auth is the app's, and is built alongside this module.
    from service.auth import Role, require_role

    return require_role(request, *(Role(role) for role in roles)).partner_id


def _app_identify(request: web.Request) -> Caller:
    from service.auth import principal_of

    principal = principal_of(request)
    return Caller(principal.partner_id, principal.role.value, principal.identifiers)


class InvalidRequestError(InvalidDocumentError):
    """A malformed request body or parameter (400)."""


def traceability_routes(
    authorize: Authorize = _app_authorize, identify: Identify = _app_identify
) -> list[web.RouteDef]:
    """The routes; ``authorize`` and ``identify`` are the app's unless a test injects others."""
    handlers = _Handlers(authorize, identify)
    return [
        web.get("/trace/{identifier:.+}", handlers.get_trace),
        web.get("/lots/{gtin}/{lot}", handlers.get_lot),
        web.post("/recalls", handlers.post_recall),
        web.get("/exceptions", handlers.get_exceptions),
        web.post("/exceptions/{exception_id}/resolution", handlers.post_resolution),
    ]


def _jsonable(value: Any) -> Any:
    if isinstance(value, dict):
        return {k: _jsonable(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_jsonable(v) for v in value]
    if hasattr(value, "isoformat"):
        return value.isoformat()
    return value


def exception_json(record: ExceptionRecord) -> dict[str, Any]:
    data: dict[str, Any] = _jsonable(asdict(record))
    data["status"] = record.status.value
    data["hold"] = record.hold.value
    determination = record.determination
    data["determination"] = determination.value if determination is not None else None
    data["form3911"] = record.form3911
    return data


async def resolve_exception(
    store: TraceabilityStore, resolution: Resolution
) -> ExceptionRecord | None:
    """Append ``resolution`` unless the record's history refuses it (409); None when there
    is no such exception."""
    record = await store.get_exception(resolution.exception_id)
    if record is None:
        return None
    reason = record.refusal(resolution)
    if reason is not None:
        raise ResolutionRefusedError(reason)
    return await store.add_resolution(resolution)


def _form3911(value: Any) -> str | None:
    # FDA's incident numbers are numbers in some answers and text in others: kept as text.
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, str | int):
        raise InvalidRequestError("form3911 is the incident number FDA gave, text or a number")
    text = str(value).strip()
    if not text or len(text) > 64:
        raise InvalidRequestError("form3911 must be 1 to 64 characters")
    return text


def resolution_from_body(
    body: dict[str, Any], exception_id: str, by: str, at: datetime
) -> Resolution:
    """The resolution a request body asks for: ``note`` (required), ``status``,
    ``determination`` and ``form3911``; 400 for anything malformed."""
    note = body.get("note")
    if not isinstance(note, str) or not note.strip():
        raise InvalidRequestError("a resolution needs a non-empty note")
    try:
        status = ExceptionStatus(body.get("status", ExceptionStatus.RESOLVED.value))
        raw = body.get("determination")
        determination = Determination(raw) if raw is not None else None
        return Resolution(
            exception_id,
            note.strip(),
            by,
            at,
            status,
            determination=determination,
            form3911=_form3911(body.get("form3911")),
        )
    except ValueError as error:
        raise InvalidRequestError(f"not a resolution this service records: {error}") from error


async def _json_body(request: web.Request) -> dict[str, Any]:
    try:
        body = await request.json()
    except (json.JSONDecodeError, UnicodeDecodeError) as error:
        raise InvalidRequestError(f"the body is not JSON: {error}") from error
    if not isinstance(body, dict):
        raise InvalidRequestError("the body must be a JSON object")
    return body


def _enum_param(request: web.Request, name: str, enum: type[Any]) -> Any:
    value = request.query.get(name)
    if value is None:
        return None
    try:
        return enum(value)
    except ValueError as error:
        allowed = ", ".join(member.value for member in enum)
        raise InvalidRequestError(f"{name} must be one of {allowed}") from error


def view_party(caller: Caller) -> frozenset[str] | None:
    """None for a full view (operators, auditors), a partner's match keys for its own view;
    403 for any other role."""
    if caller.role in _READERS:
        return None
    if caller.role == _PARTNER:
        return caller.identifiers
    raise web.HTTPForbidden(text="this needs the role operator, auditor or partner")


def _lot_row(state: SerialState, status: Status) -> dict[str, Any]:
    return {
        "identifier": state.epc,
        "status": status.value,
        "custodian": state.custodian,
        "location": state.location,
        "expiry": state.expiry.isoformat() if state.expiry else None,
    }


def _holds_now(state: SerialState, mine: PartyMatch) -> bool:
    """A partner's serials of a lot: those it owns or has in custody, or that are on their
    way to it."""
    return mine(state.owner) or mine(state.custodian) or mine(state.destination)


async def visible_lot_serials(
    store: TraceabilityStore, gtin: str, lot: str, party: frozenset[str] | None
) -> list[tuple[SerialState, Status]]:
    """The serials of a lot with their statuses, as ``GET /lots`` and the Trace page show
    them: all for a full view (``party`` None); for a partner only those it owns, holds or
    that are on their way to it, each as :func:`partner_state` (statuses from the full
    state)."""
    if party is None:
        return await lot_serials(store, gtin, lot)
    # Decided before statuses are read: a partner's answer never depends on (nor costs the
    # reads of) the serials it has nothing to do with.
    mine = PartyMatch(party)
    held = [s for s in await store.states_by_lot(gtin, lot) if _holds_now(s, mine)]
    statuses = await effective_statuses(store, held)
    return [(partner_state(s, mine), statuses[s.epc]) for s in held]


class _Handlers:
    def __init__(self, authorize: Authorize, identify: Identify) -> None:
        self._authorize = authorize
        self._identify = identify

    async def get_trace(self, request: web.Request) -> web.Response:
        party = view_party(self._identify(request))
        identifier = request.match_info["identifier"]
        result = await trace(request.app[TRACEABILITY], identifier, party=party)
        return web.json_response(result.to_json())

    async def get_lot(self, request: web.Request) -> web.Response:
        party = view_party(self._identify(request))
        gtin, lot = request.match_info["gtin"], request.match_info["lot"]
        rows = await visible_lot_serials(request.app[TRACEABILITY], gtin, lot, party)
        serials = [_lot_row(state, status) for state, status in rows]
        return web.json_response({"gtin": gtin, "lot": lot, "serials": serials})

    async def post_recall(self, request: web.Request) -> web.Response:
        by = self._authorize(request, _OPERATORS)
        body = await _json_body(request)
        serials = body.get("serials") or []
        if not isinstance(serials, list) or not all(isinstance(s, str) for s in serials):
            raise InvalidRequestError("serials must be a list of identifiers")
        try:
            recall_request = RecallRequest(
                gtin=body.get("gtin"),
                lot=body.get("lot"),
                serials=tuple(resolve_identifier(s) for s in serials),
                reason=body.get("reason"),
            )
        except ValueError as error:
            raise InvalidRequestError(str(error)) from error
        scope = await recall(request.app[TRACEABILITY], recall_request, by)
        return web.json_response(_jsonable(asdict(scope)), status=201)

    async def get_exceptions(self, request: web.Request) -> web.Response:
        self._authorize(request, _READERS)
        identifier = request.query.get("identifier")
        try:
            limit = int(request.query.get("limit", "100"))
        except ValueError as error:
            raise InvalidRequestError("limit must be a whole number") from error
        query = ExceptionFilter(
            type=_enum_param(request, "type", ExceptionType),
            status=_enum_param(request, "status", ExceptionStatus),
            determination=_enum_param(request, "determination", Determination),
            partner_id=request.query.get("partner"),
            identifier=resolve_identifier(identifier) if identifier else None,
            limit=max(1, min(limit, 1000)),
        )
        records = await request.app[TRACEABILITY].list_exceptions(query)
        return web.json_response({"exceptions": [exception_json(r) for r in records]})

    async def post_resolution(self, request: web.Request) -> web.Response:
        by = self._authorize(request, _OPERATORS)
        body = await _json_body(request)
        exception_id = request.match_info["exception_id"]
        resolution = resolution_from_body(body, exception_id, by, datetime.now(UTC))
        record = await resolve_exception(request.app[TRACEABILITY], resolution)
        if record is None:
            raise web.HTTPNotFound(text="no such exception")
        return web.json_response(exception_json(record), status=201)
