"""Capture interface: ``POST /capture`` (asynchronous jobs), ``GET /capture``, ``POST /events``.

A large XML document is answered 202 before its schema check, which the app's warm worker
(``SCHEMA_CHECK``) makes while the job reads it; see ``service.capture``.
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import json
import re
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import asdict
from datetime import UTC, datetime
from typing import Any
from urllib.parse import quote

from aiohttp import web

from epcis.errors import HostileDocumentError, InvalidDocumentError, UnsupportedFormatError
from epcis.jsonld_context import GS1_CONTEXT_URL
from epcis.model import DocumentHead
from epcis.reading import ReadLimits, iter_document
from service.auth import Principal, Role, require_role, require_sender
from service.capture import (
    SpooledDocument,
    capture_problem,
    document_senders,
    dscsa_precheck,
    event_record,
    new_job,
    read_head_or_defer,
    run_capture,
    spool,
)
from service.capture_hooks import CapturePolicy
from service.capture_leases import CaptureLease, lease_directory
from service.schema_check import SchemaChecker
from service.settings import Settings
from service.state import CAPTURE_POLICY, CAPTURES, SETTINGS, STORE
from service.store import CaptureErrorBehaviour, CaptureJob, EventStore

__all__ = [
    "SCHEMA_CHECK",
    "capture_document",
    "capture_event",
    "capture_job_json",
    "get_capture_job",
    "list_capture_jobs",
    "schema_check_context",
]

SCHEMA_CHECK = web.AppKey("schema_check", SchemaChecker)

_DOCUMENT_TYPES = frozenset(
    {"application/json", "application/ld+json", "application/xml", "text/xml"}
    | {"application/octet-stream"}
)
_XML_DECLARATION = re.compile(rb"^\s*<\?xml[^>]*\?>")


def _behaviour(request: web.Request) -> CaptureErrorBehaviour:
    value = request.headers.get("GS1-Capture-Error-Behaviour", "rollback").strip().lower()
    if value == "rollback":
        return "rollback"
    if value == "proceed":
        return "proceed"
    raise InvalidDocumentError("GS1-Capture-Error-Behaviour must be rollback or proceed")


def _check_content_type(request: web.Request) -> None:
    # No Content-Type at all is allowed: the format is detected from the bytes anyway.
    if request.headers.get("Content-Type") and request.content_type not in _DOCUMENT_TYPES:
        raise UnsupportedFormatError(
            f"Content-Type {request.content_type} is not EPCIS XML or JSON-LD"
        )


@asynccontextmanager
async def schema_check_context(app: web.Application) -> AsyncIterator[None]:
    """The app's schema check worker; started by the first large document (``dscsa serve``
    warms it at start-up), stopped after the captures have drained."""
    checker = SchemaChecker()
    app[SCHEMA_CHECK] = checker
    try:
        yield
    finally:
        await checker.close()


async def _preflight(
    principal: Principal,
    document: SpooledDocument,
    limits: ReadLimits,
    source: str,
    policy: CapturePolicy,
    checker: SchemaChecker | None = None,
) -> tuple[DocumentHead, SchemaChecker | None]:
    """Refuse before a job exists: unreadable input (400/415), foreign senders (403) and, in
    strict mode, documents breaking a DSCSA document rule (422). A large XML document's
    schema check is left to ``checker`` (returned for the job), a small one's made here."""
    try:
        head, deferred = await read_head_or_defer(document, limits, source, policy, checker)
        if principal.role is not Role.OPERATOR:
            senders = await asyncio.to_thread(document_senders, document, limits, source)
            require_sender(principal, senders)
        await dscsa_precheck(policy, document, limits, source)
    except BaseException:
        document.discard()
        raise
    return head, deferred


async def _run_and_discard(
    store: EventStore,
    document: SpooledDocument,
    job: CaptureJob,
    limits: ReadLimits,
    policy: CapturePolicy,
    schema_check: SchemaChecker | None,
    lease: CaptureLease,
) -> CaptureJob:
    try:
        return await run_capture(
            store,
            document,
            job,
            limits=limits,
            source="body",
            instance=f"/capture/{job.capture_id}",
            hooks=policy.hooks,
            spool_dir=policy.spool_dir,
            schema_check=schema_check,
        )
    finally:
        lease.release()
        document.discard()


async def capture_document(request: web.Request) -> web.Response:
    principal = require_role(request, Role.PARTNER, Role.OPERATOR)
    settings = request.app[SETTINGS]
    behaviour = _behaviour(request)
    _check_content_type(request)
    limit = settings.capture_file_size_limit
    if request.content_length is not None and request.content_length > limit:
        raise web.HTTPRequestEntityTooLarge(max_size=limit, actual_size=request.content_length)
    document = await spool(request.content.iter_chunked(256 * 1024), settings.spool_dir, limit)
    limits = settings.read_limits
    policy = request.app[CAPTURE_POLICY]
    checker = request.app.get(SCHEMA_CHECK)
    _, deferred = await _preflight(principal, document, limits, "body", policy, checker)
    job = new_job(principal.partner_id, behaviour)
    store = request.app[STORE]
    # Taken before the job is recorded as running: if this process dies, the next start
    # finds the lease unheld and marks the job interrupted (service.capture_leases).
    lease = CaptureLease.take(lease_directory(settings.data_dir), job)
    try:
        await store.put_capture_job(job)
        work = _run_and_discard(store, document, job, limits, policy, deferred, lease)
    except BaseException:
        lease.release()
        document.discard()
        raise
    request.app[CAPTURES].start(work)
    return web.Response(status=202, headers={"Location": f"/capture/{job.capture_id}"})


def capture_job_json(job: CaptureJob) -> dict[str, Any]:
    """The EPCIS 2.0 capture job object, plus our counts."""
    body: dict[str, Any] = {
        "captureID": job.capture_id,
        "createdAt": job.created_at.isoformat(),
        "running": job.running,
        "success": job.success,
        "captureErrorBehaviour": job.capture_error_behaviour,
        "errors": [
            {key: value for key, value in asdict(problem).items() if value is not None}
            for problem in job.errors
        ],
        "captured": job.captured,
        "duplicates": job.duplicates,
        "rejected": job.rejected,
    }
    if job.finished_at is not None:
        body["finishedAt"] = job.finished_at.isoformat()
    return body


def _visible_job(job: CaptureJob | None, principal: Principal) -> CaptureJob:
    if job is None or (principal.role is Role.PARTNER and job.partner_id != principal.partner_id):
        raise web.HTTPNotFound(text="no such capture job")
    return job


async def get_capture_job(request: web.Request) -> web.Response:
    principal = require_role(request, Role.PARTNER, Role.OPERATOR, Role.AUDITOR)
    job = await request.app[STORE].get_capture_job(request.match_info["captureID"])
    return web.json_response(capture_job_json(_visible_job(job, principal)))


def _offset(token: str | None) -> int:
    if token is None:
        return 0
    try:
        return int(base64.urlsafe_b64decode(token.encode()).decode())
    except (ValueError, binascii.Error):
        raise InvalidDocumentError("nextPageToken is not one this server issued") from None


async def list_capture_jobs(request: web.Request) -> web.Response:
    principal = require_role(request, Role.PARTNER, Role.OPERATOR, Role.AUDITOR)
    settings = request.app[SETTINGS]
    per_page = _per_page(request, settings)
    offset = _offset(request.query.get("nextPageToken"))
    partner = principal.partner_id if principal.role is Role.PARTNER else None
    # The store lists newest first up to a limit; capture job lists are short, so offset
    # paging over that list is enough here (events use keyset paging).
    jobs = await request.app[STORE].list_capture_jobs(partner, limit=offset + per_page + 1)
    page = list(jobs[offset : offset + per_page])
    headers = {}
    if len(jobs) > offset + per_page:
        token = base64.urlsafe_b64encode(str(offset + per_page).encode()).decode()
        headers["Link"] = f'</capture?perPage={per_page}&nextPageToken={token}>; rel="next"'
    return web.json_response([capture_job_json(job) for job in page], headers=headers)


def _per_page(request: web.Request, settings: Settings) -> int:
    raw = request.query.get("perPage")
    if raw is None:
        return settings.default_page_size
    if not raw.isdigit() or int(raw) < 1:
        raise InvalidDocumentError("perPage must be a positive integer")
    return min(int(raw), settings.max_page_size)


# --- POST /events: one event, captured synchronously ------------------------------------------


def _wrap_event(body: bytes) -> bytes:
    """A one-event EPCIS 2.0 document around a posted event, so the capture pipeline reads it."""
    created = datetime.now(UTC).isoformat()
    start = body.lstrip()
    if start.startswith(b"{"):
        try:
            event = json.loads(body)
        except ValueError as error:
            raise InvalidDocumentError(f"not well-formed JSON: {error}") from None
        document = {
            "@context": [GS1_CONTEXT_URL],
            "type": "EPCISDocument",
            "schemaVersion": "2.0",
            "creationDate": created,
            "epcisBody": {"eventList": [event]},
        }
        return json.dumps(document).encode()
    if start.startswith(b"<"):
        if b"<!DOCTYPE" in body.upper() or b"<!ENTITY" in body.upper():
            raise HostileDocumentError("document type declarations are refused")
        event_xml = _XML_DECLARATION.sub(b"", body, count=1)
        return (
            b'<epcis:EPCISDocument xmlns:epcis="urn:epcglobal:epcis:xsd:2" schemaVersion="2.0" '
            + f'creationDate="{created}"><EPCISBody><EventList>'.encode()
            + event_xml
            + b"</EventList></EPCISBody></epcis:EPCISDocument>"
        )
    raise UnsupportedFormatError("the body is neither an EPCIS JSON-LD nor an XML event")


def _single_event_id(document: SpooledDocument, limits: ReadLimits) -> str:
    with document.path.open("rb") as handle:
        items = iter_document(handle, limits=limits, source_name="body")
        head = next(items)
        assert isinstance(head, DocumentHead)
        events = list(items)
    if len(events) != 1:
        raise InvalidDocumentError("POST /events takes exactly one event")
    event = events[0]
    assert not isinstance(event, DocumentHead)
    return event_record(event, frozenset(), datetime.now(UTC), None).event_id


async def capture_event(request: web.Request) -> web.Response:
    principal = require_role(request, Role.PARTNER, Role.OPERATOR)
    settings = request.app[SETTINGS]
    _check_content_type(request)
    wrapped = _wrap_event(await request.read())

    async def chunks() -> Any:
        yield wrapped

    document = await spool(chunks(), settings.spool_dir, settings.capture_file_size_limit)
    limits = settings.read_limits
    policy = request.app[CAPTURE_POLICY]
    await _preflight(principal, document, limits, "body", policy)
    try:
        event_id = await asyncio.to_thread(_single_event_id, document, limits)
        job = new_job(principal.partner_id, "rollback")
        finished = await run_capture(
            request.app[STORE],
            document,
            job,
            limits=limits,
            source="body",
            hooks=policy.hooks,
            spool_dir=policy.spool_dir,
        )
    finally:
        document.discard()
    if finished.duplicates:
        raise web.HTTPConflict(text=f"event {event_id} already exists")
    if not finished.success:
        problem = (
            finished.errors[0]
            if finished.errors
            else capture_problem(InvalidDocumentError("rejected"))
        )
        raise web.HTTPBadRequest(text=problem.detail or problem.title)
    return web.Response(status=201, headers={"Location": f"/events/{quote(event_id, safe='')}"})
