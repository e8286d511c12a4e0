"""The requestor against a real local aiohttp responder we control."""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable
from datetime import date

import aiohttp
import pytest
from aiohttp import web
from aiohttp.test_utils import TestServer

from epcis.identifiers import parse_yymmdd
from verification.messages import AdditionalInfo, VerificationRequest
from verification.ports import Direction, ResponderEndpoint, VerificationLogEntry
from verification.requestor import (
    BreakerState,
    CorrelationMismatchError,
    Requestor,
    RequestorConfig,
    ResponderNotFoundError,
    ResponderRejectedError,
    ResponderUnavailableError,
)

ServerFactory = Callable[[web.Application], Awaitable[TestServer]]
GTIN = "00300010123455"
OUR_GLN = "0399999999991"


class _Directory:
    def __init__(self, base_url: str) -> None:
        self.base_url = base_url

    async def resolve(self, gtin: str) -> ResponderEndpoint | None:
        if gtin != GTIN:
            return None
        return ResponderEndpoint("acme", self.base_url, {"Authorization": "Bearer s3cret"})


class _Log:
    def __init__(self) -> None:
        self.entries: list[VerificationLogEntry] = []

    async def append(self, entry: VerificationLogEntry) -> None:
        self.entries.append(entry)


class _Responder:
    """Answers from a script of statuses; 200 echoes (or, if told, garbles) the corrUUID."""

    def __init__(self) -> None:
        self.script: list[int] = []
        self.calls: list[web.Request] = []
        self.garble = False

    async def handle(self, request: web.Request) -> web.Response:
        self.calls.append(request)
        status = self.script.pop(0) if self.script else 200
        if status != 200:
            return web.Response(status=status)
        corr = "00000000-0000-4000-8000-000000000000" if self.garble else request.query["corrUUID"]
        return web.json_response(
            {
                "verificationTimestamp": "2026-03-01T10:00:00.000Z",
                "responderGLN": "0300011111116",
                "data": {"verified": True, "additionalInfo": "recalled"},
                "corrUUID": corr,
            }
        )


@pytest.fixture
async def responder(aiohttp_server: ServerFactory) -> tuple[_Responder, str]:
    fake = _Responder()
    app = web.Application()
    app.router.add_get("/vrs/{tail:.+}", fake.handle)
    server = await aiohttp_server(app)
    return fake, str(server.make_url("/vrs"))


class _Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


async def _no_sleep(_: float) -> None:
    return None


def _request(gtin: str = GTIN) -> VerificationRequest:
    return VerificationRequest(
        gtin=gtin, lot="L/1", serial="11", expiry=parse_yymmdd("270600", today=date(2026, 1, 1))
    )


@pytest.fixture
async def session() -> AsyncIterator[aiohttp.ClientSession]:
    async with aiohttp.ClientSession() as opened:
        yield opened


def _requestor(
    session: aiohttp.ClientSession, base_url: str, log: _Log, clock: _Clock | None = None
) -> Requestor:
    config = RequestorConfig(req_gln=OUR_GLN, retries=2, breaker_threshold=3, breaker_reset=30)
    return Requestor(
        session, _Directory(base_url), log, config, clock=clock or _Clock(), sleep=_no_sleep
    )


async def test_success_sends_the_request_and_logs_it(
    responder: tuple[_Responder, str], session: aiohttp.ClientSession
) -> None:
    fake, url = responder
    log = _Log()
    response = await _requestor(session, url, log).verify(_request())
    assert response.data.verified is True
    assert response.data.additional_info is AdditionalInfo.RECALLED
    sent = fake.calls[0]
    assert sent.raw_path.startswith(f"/vrs/gtin/{GTIN}/lot/L%2F1/ser/11?")
    assert sent.query["exp"] == "270600"
    assert sent.query["reqGLN"] == OUR_GLN
    assert sent.headers["GS1US-Version"] == "1.3.0"
    assert sent.headers["Authorization"] == "Bearer s3cret"
    (entry,) = log.entries
    assert entry.direction is Direction.OUTBOUND
    assert (entry.status, entry.verified, entry.responder) == (200, True, "acme")
    assert entry.corr_uuid == sent.query["corrUUID"]
    assert "s3cret" not in repr(entry)


async def test_retries_on_503_then_succeeds(
    responder: tuple[_Responder, str], session: aiohttp.ClientSession
) -> None:
    fake, url = responder
    fake.script = [503, 502]
    log = _Log()
    response = await _requestor(session, url, log).verify(_request())
    assert response.data.verified is True
    assert len(fake.calls) == 3
    assert len(log.entries) == 1


async def test_gives_up_after_retries(
    responder: tuple[_Responder, str], session: aiohttp.ClientSession
) -> None:
    fake, url = responder
    fake.script = [504, 504, 504]
    log = _Log()
    with pytest.raises(ResponderUnavailableError):
        await _requestor(session, url, log).verify(_request())
    assert len(fake.calls) == 3
    assert log.entries[0].status == 504
    assert log.entries[0].verified is None


async def test_breaker_opens_after_n_failures_then_half_opens(
    responder: tuple[_Responder, str], session: aiohttp.ClientSession
) -> None:
    fake, url = responder
    fake.script = [503, 503, 503]
    clock = _Clock()
    requestor = _requestor(session, url, _Log(), clock)
    with pytest.raises(ResponderUnavailableError):
        await requestor.verify(_request())
    assert requestor.breaker("acme").state is BreakerState.OPEN
    with pytest.raises(ResponderUnavailableError, match="circuit breaker"):
        await requestor.verify(_request())
    assert len(fake.calls) == 3  # the open breaker sent nothing
    clock.now += 31
    assert requestor.breaker("acme").state is BreakerState.HALF_OPEN
    response = await requestor.verify(_request())
    assert response.data.verified is True
    assert requestor.breaker("acme").state is BreakerState.CLOSED


async def test_corr_uuid_mismatch_is_rejected(
    responder: tuple[_Responder, str], session: aiohttp.ClientSession
) -> None:
    fake, url = responder
    fake.garble = True
    log = _Log()
    with pytest.raises(CorrelationMismatchError):
        await _requestor(session, url, log).verify(_request())
    assert log.entries[0].error is not None
    assert "corrUUID" in log.entries[0].error


async def test_client_errors_are_not_retried(
    responder: tuple[_Responder, str], session: aiohttp.ClientSession
) -> None:
    fake, url = responder
    fake.script = [403]
    with pytest.raises(ResponderRejectedError) as raised:
        await _requestor(session, url, _Log()).verify(_request())
    assert raised.value.upstream_status == 403
    assert len(fake.calls) == 1


async def test_unknown_gtin_has_no_responder(
    responder: tuple[_Responder, str], session: aiohttp.ClientSession
) -> None:
    _, url = responder
    log = _Log()
    with pytest.raises(ResponderNotFoundError):
        await _requestor(session, url, log).verify(_request("00614141000036"))
    assert log.entries[0].status == 0


async def test_refused_connection_counts_as_failure(session: aiohttp.ClientSession) -> None:
    requestor = _requestor(session, "http://127.0.0.1:9/vrs", _Log())
    with pytest.raises(ResponderUnavailableError):
        await requestor.verify(_request())
    assert requestor.breaker("acme").failures == 3
