"""Verification endpoints: the LMVS responder (``/vrs/...``), the verification log, the
lookup directory, and saleable returns; with the context that opens what they use."""

from __future__ import annotations

import json
import time
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from functools import lru_cache
from typing import Any

import aiohttp
from aiohttp import web
from multidict import CIMultiDict
from pydantic import ValidationError

from epcis.errors import EPCISError, InvalidDocumentError
from service.audit import LEDGER
from service.audit_records import LeafQueue, LedgeredVerificationLog
from service.auth import Principal, Role, principal_of, require_role
from service.credentials import (
    CredentialCheck,
    CredentialRejectedError,
    JwtPresentationCheck,
    load_issuer_keys,
)
from service.handlers.traceability import TRACEABILITY
from service.lookup_directory import DirectoryEntry, FileLookupDirectory
from service.partners import party_keys
from service.returns import ReturnProcessor
from service.settings import Settings
from service.state import CAPTURE_POLICY, SETTINGS, STORE
from service.verification_log import (
    LogFilter,
    VerificationLog,
    entry_to_dict,
    open_verification_log,
    to_csv,
)
from service.verification_responder import LocalResponder, VerificationSettings
from verification.decisions import Decision
from verification.messages import (
    MalformedRequestError,
    VerificationRequest,
    parse_connectivity,
    parse_request,
    response_json,
)
from verification.ports import Direction, VerificationLogEntry, new_entry_id
from verification.requestor import Requestor, RequestorConfig

__all__ = [
    "VERIFICATION",
    "ForbiddenRequestError",
    "NotOurProductError",
    "VerificationServices",
    "return_processor",
    "verification_context",
    "verification_routes",
]


class ForbiddenRequestError(EPCISError):
    problem_type = "epcisException:SecurityException"
    status = 403


class NotOurProductError(EPCISError):
    problem_type = "epcisException:NoSuchResourceException"
    status = 404


@dataclass(slots=True)
class VerificationServices:
    settings: VerificationSettings
    responder_gln: str
    log: VerificationLog
    directory: FileLookupDirectory
    requestor: Requestor
    credential_check: CredentialCheck | None = None
    # The responder of the traceability store it was made for (see _responder).
    responder: tuple[object, LocalResponder] | None = None


VERIFICATION = web.AppKey("verification", VerificationServices)

# Verification leaves wait this long (seconds) to be appended to the ledger in one group.
LEAF_LINGER = 0.05

LogFactory = Callable[[Settings], VerificationLog]


def verification_context(
    verification_settings: VerificationSettings | None = None,
    *,
    log_factory: LogFactory = open_verification_log,
) -> Callable[[web.Application], AsyncIterator[None]]:
    """For ``app.cleanup_ctx``: opens the log, loads the lookup directory, starts the client
    session of the requestor; closed in reverse on shutdown."""

    @asynccontextmanager
    async def context(app: web.Application) -> AsyncIterator[None]:
        settings = app[SETTINGS]
        vrs = verification_settings or VerificationSettings.from_environ()
        log = log_factory(settings)
        ledger = app.get(LEDGER)
        if ledger is not None:
            log = LedgeredVerificationLog(log, LeafQueue(ledger.append, linger=LEAF_LINGER))
        await log.open()
        directory = FileLookupDirectory(vrs.directory_path(settings))
        directory.load()
        check = None
        if vrs.credential_header and vrs.issuer_keys:
            issuers = load_issuer_keys(vrs.issuer_keys)
            check = JwtPresentationCheck(
                vrs.credential_header, issuers, required=vrs.credential_required
            )
        gln = vrs.gln(settings)
        config = RequestorConfig(
            req_gln=gln,
            timeout=vrs.timeout,
            retries=vrs.retries,
            breaker_threshold=vrs.breaker_threshold,
            breaker_reset=vrs.breaker_reset,
        )
        try:
            async with aiohttp.ClientSession() as session:
                requestor = Requestor(session, directory, log, config)
                app[VERIFICATION] = VerificationServices(vrs, gln, log, directory, requestor, check)
                yield
        finally:
            await log.close()

    return context  # type: ignore[return-value]


def verification_routes() -> list[web.RouteDef]:
    # checkConnectivity first: the verify route's pattern would match it too.
    return [
        web.get("/vrs/checkConnectivity", check_connectivity, allow_head=False),
        web.get("/vrs/{tail:.+}", verify, allow_head=False),
        web.get("/verifications", list_verifications, allow_head=False),
        web.get("/lookup-directory", list_directory, allow_head=False),
        web.put("/lookup-directory/{key}", put_directory_entry),
        web.delete("/lookup-directory/{key}", delete_directory_entry),
        web.post("/returns", post_return),
    ]


_NO_CACHE = {"Cache-Control": "no-cache"}
# The answer's headers as json_response would write them, made once, not per verification.
_ANSWER_HEADERS = CIMultiDict(
    {"Cache-Control": "no-cache", "Content-Type": "application/json; charset=utf-8"}
)


def _responder(request: web.Request) -> LocalResponder:
    # Made once per traceability store rather than per request.
    services = request.app[VERIFICATION]
    store = request.app[TRACEABILITY]
    made = services.responder
    if made is not None and made[0] is store:
        return made[1]
    responder = LocalResponder(
        store, request.app[SETTINGS].company_prefixes, services.responder_gln
    )
    services.responder = (store, responder)
    return responder


def _check_requestor(principal: Principal, req_gln: str | None) -> None:
    if principal.role is Role.OPERATOR:
        return
    if principal.role is not Role.PARTNER:
        raise ForbiddenRequestError("only trading partners and operators may verify")
    if req_gln is not None and _party_keys(req_gln).isdisjoint(principal.identifiers):
        raise ForbiddenRequestError(f"reqGLN {req_gln} is not one of your identifiers")


@lru_cache(maxsize=1024)
def _party_keys(identifier: str) -> frozenset[str]:
    # party_keys builds and parses two Digital Links per GLN; partners send the same few.
    return frozenset(party_keys(identifier))


def _tail(request: web.Request) -> str:
    # The raw path: a percent-encoded "/" inside a lot or serial must not split segments.
    return request.raw_path.partition("?")[0].removeprefix("/vrs/")


async def check_connectivity(request: web.Request) -> web.Response:
    query = parse_connectivity(request.query)
    _check_requestor(principal_of(request), query.req_gln)
    responder = _responder(request)
    if not responder.owns(query.gtin):
        raise NotOurProductError(f"GTIN {query.gtin} is not one of ours")
    return web.json_response({"responderGLN": responder.responder_gln}, headers=_NO_CACHE)


async def verify(request: web.Request) -> web.Response:
    started = time.perf_counter()
    principal = principal_of(request)
    services = request.app[VERIFICATION]
    parsed: VerificationRequest | None = None
    extras: dict[str, str] = {}
    try:
        parsed = parse_request(_tail(request), request.query, request.headers)
        extras = _extras(parsed)
        _check_requestor(principal, parsed.req_gln)
        if services.credential_check is not None:
            outcome = await services.credential_check.check(
                request.headers, corr_uuid=parsed.corr_uuid
            )
            extras["credential"] = f"{outcome.scheme}:{'ok' if outcome.presented else 'absent'}"
            if outcome.issuer:
                extras["credentialIssuer"] = outcome.issuer
        responder = _responder(request)
        if not responder.owns(parsed.gtin):
            raise NotOurProductError(f"GTIN {parsed.gtin} is not one of ours")
        now = responder.now()
        decision = await responder.decision(parsed, now.date())
    except (
        MalformedRequestError,
        ForbiddenRequestError,
        CredentialRejectedError,
        NotOurProductError,
    ) as error:
        await services.log.append(
            _inbound(request, principal, parsed, None, error.status, started, extras, str(error))
        )
        raise
    # The answer is built from the decision, not from the response models: the same body
    # (VerificationResponse.to_json is response_json of its fields), once per verification.
    answer = response_json(
        now,
        responder.responder_gln,
        decision.verified,
        decision.reason,
        decision.info,
        parsed.corr_uuid,
    )
    await services.log.append(
        _inbound(request, principal, parsed, decision, 200, started, extras, None, answer)
    )
    return web.Response(body=json.dumps(answer).encode(), headers=_ANSWER_HEADERS)


def _extras(parsed: VerificationRequest) -> dict[str, str]:
    extras: dict[str, str] = {}
    if parsed.version:
        extras["version"] = parsed.version
    if parsed.ctrl_possess_att is not None:
        extras["ctrlPossessAtt"] = str(parsed.ctrl_possess_att).lower()
    if parsed.contact_email:
        extras["email"] = parsed.contact_email
    if parsed.contact_phone:
        extras["telephone"] = parsed.contact_phone
    if parsed.link_type:
        extras["linkType"] = parsed.link_type
    return extras


def _inbound(
    request: web.Request,
    principal: Principal,
    parsed: VerificationRequest | None,
    decision: Decision | None,
    status: int,
    started: float,
    extras: dict[str, str],
    error: str | None,
    answer: dict[str, Any] | None = None,
) -> VerificationLogEntry:
    return VerificationLogEntry(
        entry_id=new_entry_id(),
        direction=Direction.INBOUND,
        time=datetime.now(UTC),
        requestor=principal.partner_id,
        responder=request.app[VERIFICATION].responder_gln,
        req_gln=parsed.req_gln if parsed else request.query.get("reqGLN"),
        corr_uuid=parsed.corr_uuid if parsed else request.query.get("corrUUID"),
        gtin=parsed.gtin if parsed else None,
        serial=parsed.serial if parsed else None,
        lot=parsed.lot if parsed else None,
        expiry=parsed.expiry.raw if parsed else request.query.get("exp"),
        context=parsed.context if parsed else request.query.get("context"),
        status=status,
        verified=decision.verified if decision else None,
        failure_reason=decision.reason if decision else None,
        additional_info=decision.info if decision else None,
        latency_ms=(time.perf_counter() - started) * 1000,
        answer=answer,
        error=error,
        extras=extras,
    )


def _log_filter(query: Any) -> LogFilter:
    values: dict[str, Any] = {}
    try:
        for name in ("gtin", "serial", "lot", "requestor"):
            if query.get(name):
                values[name] = query[name]
        if query.get("reqGLN"):
            values["req_gln"] = query["reqGLN"]
        if query.get("corrUUID"):
            values["corr_uuid"] = query["corrUUID"]
        if query.get("direction"):
            values["direction"] = Direction(query["direction"])
        for name in ("since", "until"):
            if query.get(name):
                moment = datetime.fromisoformat(query[name])
                if moment.tzinfo is None:
                    raise ValueError(f"{name} needs a time zone offset")
                values[name] = moment
        if query.get("limit"):
            values["limit"] = max(1, min(int(query["limit"]), 100_000))
    except ValueError as error:
        raise InvalidDocumentError(f"bad filter: {error}") from None
    return LogFilter(**values)


async def list_verifications(request: web.Request) -> web.Response:
    require_role(request, Role.OPERATOR, Role.AUDITOR)
    entries = await request.app[VERIFICATION].log.query(_log_filter(request.query))
    wants_csv = request.query.get("format") == "csv" or "text/csv" in request.headers.get(
        "Accept", ""
    )
    if wants_csv:
        return web.Response(
            text=to_csv(entries),
            content_type="text/csv",
            headers={"Content-Disposition": 'attachment; filename="verifications.csv"'},
        )
    return web.json_response({"verifications": [entry_to_dict(e) for e in entries]})


async def list_directory(request: web.Request) -> web.Response:
    require_role(request, Role.OPERATOR, Role.AUDITOR)
    entries = request.app[VERIFICATION].directory.entries()
    # Only the reference to a credential is ever stored, so listing it reveals no secret.
    return web.json_response({"entries": [e.model_dump(exclude_none=True) for e in entries]})


async def put_directory_entry(request: web.Request) -> web.Response:
    require_role(request, Role.OPERATOR)
    body = await _json_object(request)
    try:
        entry = DirectoryEntry.model_validate({**body, "key": request.match_info["key"]})
    except ValidationError as error:
        raise InvalidDocumentError(f"not a lookup directory entry: {error}") from None
    await request.app[VERIFICATION].directory.put(entry)
    return web.json_response(entry.model_dump(exclude_none=True))


async def delete_directory_entry(request: web.Request) -> web.Response:
    require_role(request, Role.OPERATOR)
    if not await request.app[VERIFICATION].directory.remove(request.match_info["key"]):
        raise web.HTTPNotFound(text="no such lookup directory entry")
    return web.Response(status=204)


async def _json_object(request: web.Request) -> dict[str, Any]:
    try:
        body = await request.json()
    except ValueError as error:
        raise InvalidDocumentError(f"the body is not JSON: {error}") from None
    if not isinstance(body, dict):
        raise InvalidDocumentError("the body must be a JSON object")
    return body


def return_processor(app: web.Application) -> ReturnProcessor:
    services = app[VERIFICATION]
    settings = app[SETTINGS]
    return ReturnProcessor(
        app[STORE],
        app[TRACEABILITY],
        LocalResponder(app[TRACEABILITY], settings.company_prefixes, services.responder_gln),
        services.log,
        our_gln=services.responder_gln,
        spool_dir=settings.spool_dir,
        remote=services.requestor,
        hooks=app[CAPTURE_POLICY].hooks,
    )


async def post_return(request: web.Request) -> web.Response:
    """``{"scan": "<barcode data or Digital Link>", "from": "<returner GLN>"}``."""
    principal = require_role(request, Role.OPERATOR)
    body = await _json_object(request)
    scan, returned_by = body.get("scan"), body.get("from")
    if not isinstance(scan, str) or not isinstance(returned_by, str):
        raise InvalidDocumentError("the body needs a scan and a from GLN (strings)")
    outcome = await return_processor(request.app).process(scan, returned_by, principal.partner_id)
    return web.json_response(outcome.to_json())
