"""The Exports page: request an export, follow requests against their due times, download."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from aiohttp import web

from epcis.errors import InvalidIdentifierError
from service.auth import Principal, Role
from service.export_jobs import app_bundle_sources, run_export
from service.export_store import EXPORTS
from service.exports import (
    ExportRequest,
    ExportRequestError,
    ExportScope,
    ExportStatus,
    RequesterKind,
    ScopeKind,
    due_soon,
    new_request,
    parse_moment,
)
from service.state import CAPTURES, SETTINGS
from service.trace import resolve_identifier
from service.web.errors import PageError
from service.web.rendering import PAGE_PREFIX, page, redirect, render

__all__ = ["get_bundle", "get_exports", "post_export", "scope_from_form"]

_REQUESTERS = (
    (RequesterKind.FDA.value, "FDA"),
    (RequesterKind.STATE.value, "State or local regulator"),
    (RequesterKind.TRADING_PARTNER.value, "Trading partner"),
)
_SCOPES = (
    (ScopeKind.SERIALS.value, "Listed packages (serials, SSCCs or scans)"),
    (ScopeKind.LOT.value, "A lot of a product"),
    (ScopeKind.GTIN.value, "A product over a date range"),
    (ScopeKind.PARTNER.value, "A trading partner over a date range"),
)
_FIELDS = (
    "requester_kind",
    "requester",
    "reason",
    "incident_number",
    "scope_kind",
    "serials",
    "gtin",
    "lot",
    "partner_gln",
    "date_from",
    "date_to",
    "due_at",
)


def _moment(text: str, *, end_of_day: bool = False) -> datetime | None:
    # <input type="datetime-local"> sends no zone; the form says times are UTC.
    value = text.strip()
    if not value:
        return None
    if len(value) > 10 and not value.endswith("Z") and "+" not in value[10:]:
        value += "Z"
    return parse_moment(value, end_of_day=end_of_day)


def _serials(text: str) -> tuple[str, ...]:
    serials = []
    for line in text.replace(",", "\n").splitlines():
        if line.strip():
            try:
                serials.append(resolve_identifier(line))
            except InvalidIdentifierError as error:
                raise ExportRequestError(f"{line.strip()!r} is not a package: {error}") from None
    return tuple(serials)


def scope_from_form(form: dict[str, str]) -> ExportScope:
    try:
        kind = ScopeKind(form["scope_kind"])
    except ValueError:
        raise ExportRequestError("choose what the export covers") from None
    return ExportScope(
        kind=kind,
        serials=_serials(form["serials"]) if kind is ScopeKind.SERIALS else (),
        gtin=form["gtin"].strip().zfill(14) if form["gtin"].strip() else None,
        lot=form["lot"].strip() or None,
        partner_gln=form["partner_gln"].strip() or None,
        date_from=_moment(form["date_from"]),
        date_to=_moment(form["date_to"], end_of_day=True),
    )


def _row(record: ExportRequest, now: datetime) -> dict[str, Any]:
    return {
        "record": record,
        "due_soon": due_soon(record, now),
        "overdue": record.status is not ExportStatus.READY and record.due_at <= now,
        "busy": record.status in (ExportStatus.PENDING, ExportStatus.RUNNING),
    }


async def _page(
    request: web.Request,
    principal: Principal,
    form: dict[str, str],
    *,
    error: str | None = None,
    status: int = 200,
) -> web.Response:
    records = await request.app[EXPORTS].list_requests(limit=100)
    now = datetime.now(UTC)
    return render(
        request,
        "exports.html",
        principal=principal,
        status=status,
        form=form,
        error=error,
        rows=[_row(r, now) for r in records],
        requesters=_REQUESTERS,
        scopes=_SCOPES,
        created=request.query.get("created", ""),
    )


def _blank_form() -> dict[str, str]:
    form = dict.fromkeys(_FIELDS, "")
    form.update(requester_kind=RequesterKind.FDA.value, scope_kind=ScopeKind.LOT.value)
    return form


@page(Role.OPERATOR, Role.AUDITOR)
async def get_exports(request: web.Request, principal: Principal) -> web.StreamResponse:
    return await _page(request, principal, _blank_form())


@page(Role.OPERATOR, Role.AUDITOR)
async def post_export(request: web.Request, principal: Principal) -> web.StreamResponse:
    posted = await request.post()
    form = {name: str(posted.get(name, "")) for name in _FIELDS}
    try:
        record = new_request(
            scope=scope_from_form(form),
            requester_kind=form["requester_kind"],
            requester=form["requester"],
            reason=form["reason"],
            incident_number=form["incident_number"],
            due_at=_moment(form["due_at"]),
            created_by=principal.partner_id,
        )
    except ExportRequestError as error:
        return await _page(request, principal, form, error=str(error), status=400)
    store = request.app[EXPORTS]
    await store.put_request(record)
    work_dir = request.app[SETTINGS].data_dir / "exports-work"
    sources = app_bundle_sources(request.app)
    request.app[CAPTURES].start(run_export(record, sources, store, work_dir))
    return redirect(f"{PAGE_PREFIX}/exports?created={record.export_id}")


@page(Role.OPERATOR, Role.AUDITOR)
async def get_bundle(request: web.Request, principal: Principal) -> web.StreamResponse:
    export_id = request.match_info["export_id"]
    record = await request.app[EXPORTS].get_request(export_id)
    if record is None:
        raise PageError("There is no such export request.", status=404)
    if record.status is not ExportStatus.READY:
        raise PageError(f"This export is {record.status.value}; it cannot be downloaded yet.")
    response = web.StreamResponse(
        headers={
            "Content-Type": "application/zip",
            "Content-Disposition": f'attachment; filename="dscsa-export-{export_id}.zip"',
            "X-Bundle-SHA256": record.bundle_sha256 or "",
            "Cache-Control": "no-store",
        }
    )
    if record.bundle_size is not None:
        response.content_length = record.bundle_size
    await response.prepare(request)
    async for chunk in request.app[EXPORTS].open_bundle(export_id):
        await response.write(chunk)
    await response.write_eof()
    return response
