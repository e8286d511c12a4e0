"""The Exceptions page: the queue with filters, and the resolution form."""

from __future__ import annotations

from collections import Counter
from datetime import UTC, datetime
from typing import Any
from urllib.parse import parse_qsl, urlencode

from aiohttp import web

from epcis.errors import EPCISError, InvalidIdentifierError
from service.auth import Principal, Role
from service.exception_records import ExceptionStatus, ExceptionType
from service.handlers.traceability import TRACEABILITY, resolution_from_body, resolve_exception
from service.trace import resolve_identifier
from service.traceability_store import ExceptionFilter
from service.web.errors import PageError
from service.web.rendering import PAGE_PREFIX, page, redirect, render
from service.web.words import EXCEPTION_LABELS

__all__ = ["get_exceptions", "post_resolution"]

_LIMIT = 200
_FILTERS = ("type", "status", "identifier")


def _filter(query: Any) -> tuple[ExceptionFilter, dict[str, str]]:
    chosen = {k: str(query.get(k, "")).strip() for k in _FILTERS}
    if "status" not in query:
        chosen["status"] = ExceptionStatus.OPEN.value
    try:
        kind = ExceptionType(chosen["type"]) if chosen["type"] else None
        status = ExceptionStatus(chosen["status"]) if chosen["status"] else None
        identifier = resolve_identifier(chosen["identifier"]) if chosen["identifier"] else None
    except (ValueError, InvalidIdentifierError) as error:
        raise PageError(f"That filter cannot be used: {error}") from None
    return ExceptionFilter(kind, status, None, identifier, _LIMIT), chosen


@page(Role.OPERATOR, Role.AUDITOR)
async def get_exceptions(request: web.Request, principal: Principal) -> web.StreamResponse:
    where, chosen = _filter(request.query)
    records = await request.app[TRACEABILITY].list_exceptions(where)
    records.sort(key=lambda r: r.created_at, reverse=True)
    return render(
        request,
        "exceptions.html",
        principal=principal,
        records=records,
        chosen=chosen,
        counts=Counter(r.type.value for r in records),
        types=[(kind.value, label) for kind, label in EXCEPTION_LABELS.items()],
        can_resolve=principal.role is Role.OPERATOR,
        resolved=request.query.get("resolved", ""),
        back=urlencode({k: v for k, v in chosen.items() if v}),
        limit=_LIMIT,
    )


@page(Role.OPERATOR)
async def post_resolution(request: web.Request, principal: Principal) -> web.StreamResponse:
    form = await request.post()
    if not str(form.get("note", "")).strip():
        raise PageError("Write a note that says how the exception was resolved.")
    # The same rules as the API's: an empty field of the form means "not given".
    body = {
        k: str(form[k]).strip()
        for k in ("note", "status", "determination", "form3911")
        if str(form.get(k, "")).strip()
    }
    exception_id = request.match_info["exception_id"]
    try:
        resolution = resolution_from_body(
            body, exception_id, principal.partner_id, datetime.now(UTC)
        )
        record = await resolve_exception(request.app[TRACEABILITY], resolution)
    except EPCISError as error:
        raise PageError(f"This resolution was not recorded: {error}", status=error.status) from None
    if record is None:
        raise PageError("There is no such exception.", status=404)
    # Back to the same filters; only the filter names are carried over, re-encoded.
    kept = [(k, v) for k, v in parse_qsl(str(form.get("back", ""))) if k in _FILTERS]
    query = urlencode([*kept, ("resolved", exception_id)])
    return redirect(f"{PAGE_PREFIX}/exceptions?{query}#exception-{exception_id}")
