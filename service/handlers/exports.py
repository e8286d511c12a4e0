"""``/exports``: regulators' and partners' export requests, their due times, and the bundles."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Any

from aiohttp import web

from epcis.errors import EPCISError
from service.auth import Role, require_role
from service.export_jobs import app_bundle_sources, run_export
from service.export_store import EXPORTS
from service.exports import (
    ExportRequestError,
    ExportStatus,
    due_soon,
    new_request,
    parse_moment,
    request_to_dict,
    scope_from_dict,
)
from service.state import CAPTURES, SETTINGS

__all__ = [
    "ExportNotFoundError",
    "ExportNotReadyError",
    "export_routes",
    "get_bundle",
    "get_export",
    "list_exports",
    "post_export",
]

_READERS = (Role.OPERATOR, Role.AUDITOR)


class ExportNotFoundError(EPCISError):
    problem_type = "epcisException:NoSuchResourceException"
    status = 404


class ExportNotReadyError(EPCISError):
    """The bundle is still being built, or its build failed (409)."""

    problem_type = "epcisException:ImplementationException"
    status = 409


def export_routes() -> list[web.RouteDef]:
    return [
        web.post("/exports", post_export),
        web.get("/exports", list_exports, allow_head=False),
        web.get("/exports/{export_id}", get_export, allow_head=False),
        web.get("/exports/{export_id}/bundle", get_bundle, allow_head=False),
    ]


def _export_json(request_record: Any, now: datetime) -> dict[str, Any]:
    body = request_to_dict(request_record)
    body["due_soon"] = due_soon(request_record, now)
    body["overdue"] = request_record.status is not ExportStatus.READY and (
        request_record.due_at <= now
    )
    body["bundle"] = (
        f"/exports/{request_record.export_id}/bundle"
        if request_record.status is ExportStatus.READY
        else None
    )
    return body


async def _json_object(request: web.Request) -> dict[str, Any]:
    try:
        body = await request.json()
    except (json.JSONDecodeError, UnicodeDecodeError) as error:
        raise ExportRequestError(f"the body is not JSON: {error}") from error
    if not isinstance(body, dict):
        raise ExportRequestError("the body must be a JSON object")
    return body


async def post_export(request: web.Request) -> web.Response:
    """Record the request and build its bundle in the background: 202 with its Location."""
    principal = require_role(request, *_READERS)
    body = await _json_object(request)
    scope = body.get("scope")
    if not isinstance(scope, dict):
        raise ExportRequestError("give the scope as an object with a kind")
    due = body.get("due_at")
    record = new_request(
        scope=scope_from_dict(scope),
        requester_kind=str(body.get("requester_kind", "")),
        requester=str(body.get("requester", "")),
        reason=str(body.get("reason", "")),
        incident_number=body.get("incident_number"),
        due_at=parse_moment(due) if isinstance(due, str) else None,
        created_by=principal.partner_id,
    )
    store = request.app[EXPORTS]
    await store.put_request(record)
    work_dir = request.app[SETTINGS].data_dir / "exports-work"
    sources = app_bundle_sources(request.app)
    request.app[CAPTURES].start(run_export(record, sources, store, work_dir))
    location = f"/exports/{record.export_id}"
    return web.json_response(
        _export_json(record, datetime.now(UTC)), status=202, headers={"Location": location}
    )


async def list_exports(request: web.Request) -> web.Response:
    require_role(request, *_READERS)
    open_only = request.query.get("open", "").lower() in ("1", "true", "yes")
    records = await request.app[EXPORTS].list_requests(open_only=open_only)
    now = datetime.now(UTC)
    return web.json_response({"exports": [_export_json(r, now) for r in records]})


async def _found(request: web.Request) -> Any:
    require_role(request, *_READERS)
    export_id = request.match_info["export_id"]
    record = await request.app[EXPORTS].get_request(export_id)
    if record is None:
        raise ExportNotFoundError(f"no export {export_id}")
    return record


async def get_export(request: web.Request) -> web.Response:
    record = await _found(request)
    return web.json_response(_export_json(record, datetime.now(UTC)))


async def get_bundle(request: web.Request) -> web.StreamResponse:
    record = await _found(request)
    if record.status is not ExportStatus.READY:
        detail = f": {record.error}" if record.error else ""
        raise ExportNotReadyError(f"export {record.export_id} is {record.status.value}{detail}")
    response = web.StreamResponse(
        headers={
            "Content-Type": "application/zip",
            "Content-Disposition": f'attachment; filename="dscsa-export-{record.export_id}.zip"',
            "X-Bundle-SHA256": record.bundle_sha256 or "",
        }
    )
    if record.bundle_size is not None:
        response.content_length = record.bundle_size
    await response.prepare(request)
    try:
        async for chunk in request.app[EXPORTS].open_bundle(record.export_id):
            await response.write(chunk)
    except KeyError as error:
        raise ExportNotFoundError(f"the bundle of export {record.export_id} is gone") from error
    await response.write_eof()
    return response
