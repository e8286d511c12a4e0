"""The verification requestor: finds a GTIN's responder, asks it, and checks the answer.

Retries: a 502, 503 or 504, a timeout or a refused connection is retried with exponential
backoff. Each failed attempt counts against the responder's circuit breaker; after
``breaker_threshold`` consecutive failures requests to it fail at once (503) until
``breaker_reset`` seconds have passed, then one trial request decides whether it closes again.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from enum import StrEnum
from typing import Any

import aiohttp
from pydantic import ValidationError
from yarl import URL

from epcis.errors import EPCISError
from verification.messages import (
    LMVS_VERSION,
    VerificationRequest,
    VerificationResponse,
    request_path,
)
from verification.ports import (
    Direction,
    ExchangeLog,
    LookupDirectory,
    ResponderEndpoint,
    VerificationLogEntry,
    new_entry_id,
)

__all__ = [
    "BreakerState",
    "CircuitBreaker",
    "CorrelationMismatchError",
    "CredentialHeaders",
    "InvalidResponseError",
    "Requestor",
    "RequestorConfig",
    "RequestorError",
    "ResponderNotFoundError",
    "ResponderRejectedError",
    "ResponderUnavailableError",
]

_RETRYABLE = frozenset({502, 503, 504})


class RequestorError(EPCISError):
    """The remote verification did not give a usable answer."""

    problem_type = "epcisException:ImplementationException"
    status = 502

    def __init__(self, message: str, upstream_status: int = 0) -> None:
        super().__init__(message)
        # The responder's last HTTP status, 0 when none came.
        self.upstream_status = upstream_status


class ResponderNotFoundError(RequestorError):
    """The lookup directory knows no responder for the GTIN."""

    problem_type = "epcisException:NoSuchResourceException"
    status = 404


class ResponderUnavailableError(RequestorError):
    """Retries exhausted, or the responder's circuit breaker is open."""

    status = 503


class ResponderRejectedError(RequestorError):
    """The responder answered with a status that retrying cannot change (400, 401, 403...)."""


class InvalidResponseError(RequestorError):
    """A 200 whose body is not a verification response."""


class CorrelationMismatchError(RequestorError):
    """The response echoes another corrUUID than the one we sent."""


# Extra headers per request, e.g. an ATP verifiable presentation bound to the corrUUID.
CredentialHeaders = Callable[[VerificationRequest], Awaitable[dict[str, str]]]


@dataclass(frozen=True, slots=True)
class RequestorConfig:
    req_gln: str
    timeout: float = 5.0
    retries: int = 2
    backoff: float = 0.2
    backoff_max: float = 2.0
    breaker_threshold: int = 5
    breaker_reset: float = 30.0


class BreakerState(StrEnum):
    CLOSED = "closed"
    OPEN = "open"
    HALF_OPEN = "half_open"


@dataclass(slots=True)
class CircuitBreaker:
    threshold: int
    reset_after: float
    clock: Callable[[], float] = time.monotonic
    failures: int = 0
    opened_at: float | None = None
    _trial: bool = field(default=False, repr=False)

    @property
    def state(self) -> BreakerState:
        if self.opened_at is None:
            return BreakerState.CLOSED
        if self.clock() - self.opened_at >= self.reset_after:
            return BreakerState.HALF_OPEN
        return BreakerState.OPEN

    def allow(self) -> bool:
        state = self.state
        if state is BreakerState.CLOSED:
            return True
        if state is BreakerState.HALF_OPEN and not self._trial:
            self._trial = True  # one trial at a time; others keep failing fast
            return True
        return False

    def success(self) -> None:
        self.failures, self.opened_at, self._trial = 0, None, False

    def failure(self) -> None:
        self.failures += 1
        self._trial = False
        if self.failures >= self.threshold or self.opened_at is not None:
            self.opened_at = self.clock()


@dataclass(slots=True)
class _Attempt:
    status: int = 0
    body: dict[str, Any] | None = None
    error: str | None = None


class Requestor:
    """Sends verification requests over one aiohttp session (owned by the caller)."""

    def __init__(
        self,
        session: aiohttp.ClientSession,
        directory: LookupDirectory,
        log: ExchangeLog,
        config: RequestorConfig,
        *,
        credentials: CredentialHeaders | None = None,
        clock: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
    ) -> None:
        self._session = session
        self._directory = directory
        self._log = log
        self._config = config
        self._credentials = credentials
        self._clock = clock
        self._sleep = sleep
        self._breakers: dict[str, CircuitBreaker] = {}

    def breaker(self, responder_id: str) -> CircuitBreaker:
        found = self._breakers.get(responder_id)
        if found is None:
            found = CircuitBreaker(
                self._config.breaker_threshold, self._config.breaker_reset, self._clock
            )
            self._breakers[responder_id] = found
        return found

    async def verify(self, request: VerificationRequest) -> VerificationResponse:
        """Ask the GTIN's responder; every outcome, answer or error, is logged once."""
        if request.req_gln is None:
            request = request.model_copy(update={"req_gln": self._config.req_gln})
        started = time.perf_counter()
        endpoint = await self._directory.resolve(request.gtin)
        attempt = _Attempt()
        try:
            if endpoint is None:
                raise ResponderNotFoundError(f"no responder for GTIN {request.gtin}")
            attempt = await self._exchange(endpoint, request)
            response = _response(request, attempt)
        except RequestorError as error:
            attempt.status = attempt.status or error.upstream_status
            attempt.error = attempt.error or str(error)
            await self._record(request, endpoint, attempt, started, None)
            raise
        await self._record(request, endpoint, attempt, started, response)
        return response

    async def _exchange(
        self, endpoint: ResponderEndpoint, request: VerificationRequest
    ) -> _Attempt:
        breaker = self.breaker(endpoint.responder_id)
        url = _url(endpoint, request)
        headers = {"Accept": "application/json", "GS1US-Version": LMVS_VERSION}
        if self._credentials is not None:
            headers.update(await self._credentials(request))
        headers.update(endpoint.headers)
        attempt = _Attempt()
        for number in range(self._config.retries + 1):
            if number:
                await self._sleep(
                    min(self._config.backoff * 2 ** (number - 1), self._config.backoff_max)
                )
            if not breaker.allow():
                raise ResponderUnavailableError(
                    f"responder {endpoint.responder_id} is failing; its circuit breaker is open"
                )
            attempt = await self._send(url, headers)
            if attempt.status == 200 or (attempt.status and attempt.status not in _RETRYABLE):
                breaker.success()
                return attempt
            breaker.failure()
        raise ResponderUnavailableError(
            f"responder {endpoint.responder_id} failed {self._config.retries + 1} times: "
            f"{attempt.error or attempt.status}",
            attempt.status,
        )

    async def _send(self, url: URL, headers: dict[str, str]) -> _Attempt:
        timeout = aiohttp.ClientTimeout(total=self._config.timeout)
        try:
            async with self._session.get(url, headers=headers, timeout=timeout) as reply:
                if reply.status != 200:
                    return _Attempt(reply.status, error=f"HTTP {reply.status}")
                try:
                    body = await reply.json(content_type=None)
                except ValueError:
                    return _Attempt(200, error="the response body is not JSON")
                return _Attempt(200, body if isinstance(body, dict) else None)
        except TimeoutError:
            return _Attempt(0, error=f"no answer within {self._config.timeout} s")
        except aiohttp.ClientError as error:
            return _Attempt(0, error=f"{type(error).__name__}: {error}")

    async def _record(
        self,
        request: VerificationRequest,
        endpoint: ResponderEndpoint | None,
        attempt: _Attempt,
        started: float,
        response: VerificationResponse | None,
    ) -> None:
        data = response.data if response is not None else None
        extras = {"version": LMVS_VERSION}
        if request.ctrl_possess_att is not None:
            extras["ctrlPossessAtt"] = str(request.ctrl_possess_att).lower()
        await self._log.append(
            VerificationLogEntry(
                entry_id=new_entry_id(),
                direction=Direction.OUTBOUND,
                time=datetime.now(UTC),
                requestor="self",
                responder=endpoint.responder_id if endpoint else "",
                req_gln=request.req_gln,
                corr_uuid=request.corr_uuid,
                gtin=request.gtin,
                serial=request.serial,
                lot=request.lot,
                expiry=request.expiry.raw,
                context=request.context,
                status=attempt.status,
                verified=data.verified if data else None,
                failure_reason=data.verification_failure_reason if data else None,
                additional_info=data.additional_info if data else None,
                latency_ms=(time.perf_counter() - started) * 1000,
                answer=attempt.body,
                error=attempt.error,
                extras=extras,
            )
        )


def _url(endpoint: ResponderEndpoint, request: VerificationRequest) -> URL:
    # The path is already percent-encoded segment by segment; yarl must not encode it again.
    base = endpoint.base_url.rstrip("/")
    return URL(f"{base}/{request_path(request)}", encoded=True).with_query(request.query())


def _response(request: VerificationRequest, attempt: _Attempt) -> VerificationResponse:
    if attempt.status != 200:
        raise ResponderRejectedError(
            f"the responder answered HTTP {attempt.status}", attempt.status
        )
    if attempt.body is None:
        raise InvalidResponseError(attempt.error or "the response is not a JSON object")
    try:
        response = VerificationResponse.model_validate(attempt.body)
    except ValidationError as error:
        raise InvalidResponseError(f"not a verification response: {error}") from None
    echoed = response.corr_uuid
    if echoed is None or echoed.lower() != request.corr_uuid.lower():
        raise CorrelationMismatchError(
            f"sent corrUUID {request.corr_uuid}, the response carries {echoed}"
        )
    return response
