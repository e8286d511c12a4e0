"""The Verify page: one scan in, a verdict in plain words out (our GTINs decided here,
others' asked of their manufacturer through the requestor)."""

from __future__ import annotations

import time
from dataclasses import dataclass
from datetime import date
from typing import Any

from aiohttp import web

from epcis.errors import InvalidIdentifierError
from epcis.identifiers import ProductIdentifier, parse_scan
from service.auth import Principal, Role
from service.handlers.traceability import TRACEABILITY
from service.handlers.verification import VERIFICATION
from service.master_data import ProductRecord
from service.returns import local_log_entry
from service.state import SETTINGS
from service.verification_responder import LocalResponder
from service.web.rendering import page, render
from service.web.words import failure_words, info_words
from verification.messages import VerificationRequest, VerificationResponse
from verification.requestor import (
    RequestorError,
    ResponderNotFoundError,
    ResponderUnavailableError,
)

__all__ = ["Verdict", "get_verify", "post_verify", "read_identifier", "verify_identifier"]

_CONTEXTS = (
    ("dscsaSaleableReturn", "Saleable return"),
    ("dscsaSuspectProduct", "Suspect product investigation"),
)


@dataclass(frozen=True, slots=True)
class Verdict:
    """What the page shows: ``verified`` is None when no answer could be had."""

    identifier: ProductIdentifier
    verified: bool | None
    reasons: tuple[str, ...]
    decided_by: str
    product: ProductRecord | None = None
    failure_reason: str | None = None
    additional_info: str | None = None

    @property
    def expiry(self) -> date | None:
        return self.identifier.expiry.date if self.identifier.expiry else None


def read_identifier(scan: str) -> ProductIdentifier:
    """The product identifier of a scan; says in words which DSCSA element is missing."""
    try:
        identifier = parse_scan(scan)
    except InvalidIdentifierError as error:
        raise InvalidIdentifierError(f"This scan could not be read: {error}") from None
    missing = [
        words
        for value, words in (
            (identifier.serial, "serial number (21)"),
            (identifier.lot, "lot number (10)"),
            (identifier.expiry, "expiry date (17)"),
        )
        if value is None
    ]
    if missing:
        raise InvalidIdentifierError(
            f"The scan has product code {identifier.gtin} but no {' and no '.join(missing)}: "
            "scan the 2D barcode (GS1 DataMatrix) on the package."
        )
    return identifier


def _request(identifier: ProductIdentifier, req_gln: str, context: str) -> VerificationRequest:
    # read_identifier has checked all three are there.
    assert identifier.serial is not None
    assert identifier.lot is not None
    assert identifier.expiry is not None
    return VerificationRequest(
        gtin=identifier.gtin,
        serial=identifier.serial,
        lot=identifier.lot,
        expiry=identifier.expiry,
        req_gln=req_gln,
        context=context,
    )


def _verdict(
    identifier: ProductIdentifier,
    response: VerificationResponse,
    decided_by: str,
    product: ProductRecord | None,
) -> Verdict:
    data = response.data
    reason = str(data.verification_failure_reason) if data.verification_failure_reason else None
    info = str(data.additional_info) if data.additional_info else None
    reasons = tuple(text for text in (failure_words(reason), info_words(info)) if text)
    if data.verified and not reasons:
        reasons = ("The serial number, lot and expiry match the manufacturer's record.",)
    return Verdict(identifier, data.verified, reasons, decided_by, product, reason, info)


def _no_answer(error: RequestorError) -> str:
    if isinstance(error, ResponderNotFoundError):
        return (
            "No verification service is known for this product's manufacturer, so it could "
            "not be verified. Ask the manufacturer, or add it to the lookup directory."
        )
    if isinstance(error, ResponderUnavailableError):
        return (
            "The manufacturer's verification service did not answer. Try again later; until "
            "then treat the package as not verified."
        )
    return f"The manufacturer's verification service gave no usable answer ({error})."


async def verify_identifier(
    app: web.Application, identifier: ProductIdentifier, principal: Principal, context: str
) -> Verdict:
    services = app.get(VERIFICATION)
    if services is None:
        raise RuntimeError("verification is not set up on this service")
    responder = LocalResponder(
        app[TRACEABILITY], app[SETTINGS].company_prefixes, services.responder_gln
    )
    products = await app[TRACEABILITY].get_products([identifier.gtin])
    product = products.get(identifier.gtin)
    request = _request(identifier, services.responder_gln, context)
    if responder.owns(identifier.gtin):
        started = time.perf_counter()
        response = await responder.verify(request)
        await services.log.append(local_log_entry(request, response, started, principal.partner_id))
        return _verdict(identifier, response, "our own records", product)
    try:
        response = await services.requestor.verify(request)
    except RequestorError as error:
        return Verdict(identifier, None, (_no_answer(error),), "nobody", product)
    return _verdict(identifier, response, f"the manufacturer ({response.responder_gln})", product)


@page(Role.OPERATOR, Role.PARTNER)
async def get_verify(request: web.Request, principal: Principal) -> web.StreamResponse:
    return render(
        request, "verify.html", principal=principal, contexts=_CONTEXTS, scan="", verdict=None
    )


@page(Role.OPERATOR, Role.PARTNER)
async def post_verify(request: web.Request, principal: Principal) -> web.StreamResponse:
    form = await request.post()
    scan = str(form.get("scan", ""))
    context = str(form.get("context", _CONTEXTS[0][0]))
    if context not in dict(_CONTEXTS):
        context = _CONTEXTS[0][0]
    values: dict[str, Any] = {"contexts": _CONTEXTS, "scan": scan, "context": context}
    try:
        identifier = read_identifier(scan)
    except InvalidIdentifierError as error:
        return render(
            request,
            "verify.html",
            principal=principal,
            status=400,
            verdict=None,
            error=str(error),
            **values,
        )
    if request.app.get(VERIFICATION) is None:
        return render(
            request,
            "verify.html",
            principal=principal,
            status=503,
            verdict=None,
            error="Verification is not set up on this service yet.",
            **values,
        )
    verdict = await verify_identifier(request.app, identifier, principal, context)
    return render(request, "verify.html", principal=principal, verdict=verdict, **values)
