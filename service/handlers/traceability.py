"""Traceability endpoints: trace, lot view, recalls, exceptions and their resolutions."""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import asdict
from datetime import UTC, datetime
from typing import Any

from aiohttp import web

from epcis.errors import InvalidDocumentError
from service.exception_records import ExceptionRecord, ExceptionStatus, ExceptionType, Resolution
from service.recalls import RecallRequest, lot_serials, recall
from service.trace import resolve_identifier, trace
from service.traceability_store import ExceptionFilter, TraceabilityStore

__all__ = [
    "TRACEABILITY",
    "Authorize",
    "InvalidRequestError",
    "exception_json",
    "traceability_routes",
]

TRACEABILITY = web.AppKey("traceability", TraceabilityStore)

# Given the request and the roles allowed, returns the caller's id or raises 401/403.
Authorize = Callable[[web.Request, tuple[str, ...]], str]

_READERS = ("operator", "auditor")
_OPERATORS = ("operator",)


def _app_authorize(request: web.Request, roles: tuple[str, ...]) -> str:
    # Imported when called: service.auth is the app's, and is built alongside this module.
    from service.auth import Role, require_role

    return require_role(request, *(Role(role) for role in roles)).partner_id


class InvalidRequestError(InvalidDocumentError):
    """A malformed request body or parameter (400)."""


def traceability_routes(authorize: Authorize = _app_authorize) -> list[web.RouteDef]:
    """The routes; ``authorize`` is the app's role check unless a test injects another."""
    handlers = _Handlers(authorize)
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
    return data


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


class _Handlers:
    def __init__(self, authorize: Authorize) -> None:
        self._authorize = authorize

    async def get_trace(self, request: web.Request) -> web.Response:
        self._authorize(request, _READERS)
        result = await trace(request.app[TRACEABILITY], request.match_info["identifier"])
        return web.json_response(result.to_json())

    async def get_lot(self, request: web.Request) -> web.Response:
        self._authorize(request, _READERS)
        gtin, lot = request.match_info["gtin"], request.match_info["lot"]
        rows = await lot_serials(request.app[TRACEABILITY], gtin, lot)
        serials = [
            {
                "identifier": state.epc,
                "status": status.value,
                "custodian": state.custodian,
                "location": state.location,
                "expiry": state.expiry.isoformat() if state.expiry else None,
            }
            for state, status in rows
        ]
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
            partner_id=request.query.get("partner"),
            identifier=resolve_identifier(identifier) if identifier else None,
            limit=max(1, min(limit, 1000)),
        )
        records = await request.app[TRACEABILITY].list_exceptions(query)
        return web.json_response({"exceptions": [exception_json(r) for r in records]})

    async def post_resolution(self, request: web.Request) -> web.Response:
        by = self._authorize(request, _OPERATORS)
        body = await _json_body(request)
        note = body.get("note")
        if not isinstance(note, str) or not note.strip():
            raise InvalidRequestError("a resolution needs a non-empty note")
        status = ExceptionStatus(body.get("status", ExceptionStatus.RESOLVED.value))
        resolution = Resolution(
            request.match_info["exception_id"], note.strip(), by, datetime.now(UTC), status
        )
        record = await request.app[TRACEABILITY].add_resolution(resolution)
        if record is None:
            raise web.HTTPNotFound(text="no such exception")
        return web.json_response(exception_json(record), status=201)
