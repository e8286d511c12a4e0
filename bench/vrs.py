"""Verification responder benchmark: the real ``/vrs`` app vs a bare aiohttp JSON handler.

A SQLite traceability store is filled with commissioned serials (1,000,000; 20,000 with
``--quick``) through its own schema and record codec, and cached in ``bench/out/``. Two
servers run in child processes on 127.0.0.1, one after the other: the real app
(``create_app`` with a GLN, which wires ``verification_routes`` and ``verification_context``;
a partner bearer token)
and a bare aiohttp app whose one handler answers a body of the same shape. This process
drives both with one lean keep-alive HTTP/1.1 client (prebuilt requests, asyncio protocol)
at 32 concurrent connections for a bounded number of requests and seconds, alternating
rounds so background load hits both alike. The requests
are random serials of the population: 80 % genuine, 10 % unknown serials, 5 % wrong lot and
5 % wrong expiry; a sequential warm-up checks the responder's answer to each kind.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import logging
import os
import random
import signal
import socket
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

import aiohttp
from aiohttp import web
from yarl import URL

__all__ = [
    "COMPANY_PREFIX",
    "TARGETS",
    "LoadResult",
    "Probe",
    "Server",
    "closed_loop",
    "drive",
    "populate",
    "probes",
    "run",
]

OUT = Path(__file__).resolve().parent / "out"
TARGETS = {
    "throughput_ratio_vs_bare": ">= 0.60",
    "responder_p99_ms": "< 10 (32 concurrent connections)",
    "errors": "== 0",
}
COMPANY_PREFIX = "030001"
RESPONDER_GLN = "0300011111116"
REQUESTOR_GLN = "0399999999991"
CONCURRENCY = 32
# The fixed rate of the latency run without queueing: well under the responder's capacity.
PACED_RATE = 50
_PRODUCTS = 10
_LOTS_PER_PRODUCT = 100
# Multiplying by a number coprime to 36**10 permutes 0..36**10-1: unique, random-looking serials.
_SERIAL_SPACE = 36**10
_SERIAL_STEP = 2_654_435_761
_DIGITS36 = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZ"
_FIRST_EXPIRY = date(2027, 1, 31)
_COMMISSIONED = datetime(2026, 1, 5, 8, 0, tzinfo=UTC)
# Bump when the generated rows change, so a cached store is rebuilt.
_POPULATION_VERSION = "1"


# --- the population -------------------------------------------------------------------


def _check_digit(body: str) -> str:
    total = sum(int(d) * (3 if i % 2 == 0 else 1) for i, d in enumerate(reversed(body)))
    return str((10 - total % 10) % 10)


def _gtins() -> list[str]:
    bodies = [f"0{COMPANY_PREFIX}{20_000 + k:06d}" for k in range(_PRODUCTS)]
    return [body + _check_digit(body) for body in bodies]


GTINS = _gtins()


def _serial(index: int) -> str:
    value = index * _SERIAL_STEP % _SERIAL_SPACE
    chars = []
    for _ in range(10):
        value, digit = divmod(value, 36)
        chars.append(_DIGITS36[digit])
    return "".join(chars)


@dataclass(frozen=True, slots=True)
class Row:
    gtin: str
    lot: str
    expiry: date
    serial: str

    @property
    def epc(self) -> str:
        # The SGTIN URN of a 6-digit company prefix: indicator digit first in the item reference.
        return f"urn:epc:id:sgtin:{COMPANY_PREFIX}.{self.gtin[0]}{self.gtin[7:13]}.{self.serial}"


def _row(index: int, count: int) -> Row:
    per_product = max(1, count // _PRODUCTS)
    per_lot = max(1, per_product // _LOTS_PER_PRODUCT)
    product = min(index // per_product, _PRODUCTS - 1)
    lot = min((index % per_product) // per_lot, _LOTS_PER_PRODUCT - 1)
    return Row(
        gtin=GTINS[product],
        lot=f"B{product}{lot:03d}",
        expiry=_FIRST_EXPIRY + timedelta(days=7 * lot),
        serial=_serial(index),
    )


def _template() -> dict[str, Any]:
    from service.serial_state import SerialState, Status
    from service.traceability_store import state_to_dict

    first = _row(0, 1)
    state = SerialState(
        epc=first.epc,
        kind="sgtin",
        gtin=first.gtin,
        lot=first.lot,
        expiry=first.expiry,
        commissioned_at=_COMMISSIONED,
        commissioner="urn:epc:id:sgln:030001.111111.0",
        commissioning_event="ni:///sha-256;" + "0" * 64 + "?ver=CBV2.0",
        owner="urn:epc:id:sgln:030001.111111.0",
        custodian="urn:epc:id:sgln:030001.111111.0",
        location="urn:epc:id:sgln:030001.111111.0",
        lifecycle=Status.COMMISSIONED,
        status=Status.COMMISSIONED,
        last_event="ni:///sha-256;" + "0" * 64 + "?ver=CBV2.0",
        last_event_time=_COMMISSIONED,
    )
    return state_to_dict(state)


def _rows(count: int, template: dict[str, Any]) -> Iterator[tuple[str, str, str, str]]:
    expiries: dict[date, str] = {}
    for index in range(count):
        row = _row(index, count)
        body = dict(template)
        body["epc"] = epc = row.epc
        body["gtin"] = row.gtin
        body["lot"] = row.lot
        body["expiry"] = expiries.get(row.expiry) or expiries.setdefault(
            row.expiry, row.expiry.isoformat()
        )
        yield epc, row.gtin, row.lot, json.dumps(body)


def _check_spelling(count: int) -> None:
    """Our URNs must be the keys the responder looks up, and the bodies must decode."""
    from service.traceability_store import state_from_dict
    from service.verification_responder import serial_epc

    for index in random.Random(1).sample(range(count), min(count, 50)):
        row = _row(index, count)
        if serial_epc(row.gtin, row.serial) != row.epc:
            raise RuntimeError(f"{row.epc} is not the responder's spelling")
    _, _, _, body = next(_rows(1, _template()))
    state_from_dict(json.loads(body))


def _stored_count(path: Path) -> int | None:
    marker = path.with_suffix(".version")
    if not path.exists() or not marker.exists() or marker.read_text() != _POPULATION_VERSION:
        return None
    with contextlib.closing(sqlite3.connect(path)) as db:
        (stored,) = db.execute("SELECT count(*) FROM serial_states").fetchone()
    return int(stored)


def populate(count: int) -> tuple[Path, float | None]:
    """The store file with ``count`` commissioned serials, and the seconds it took to fill
    (None when a cached file was reused)."""
    from service.sqlite_traceability_store import SQLiteTraceabilityStore, records_path

    path = OUT / f"vrs-{count}.traceability.sqlite"
    if _stored_count(path) == count:
        return path, None
    _check_spelling(count)
    OUT.mkdir(parents=True, exist_ok=True)
    records = records_path(path)
    for stale in (path, records):
        for name in (stale, Path(f"{stale}-wal"), Path(f"{stale}-shm")):
            name.unlink(missing_ok=True)
    start = time.perf_counter()

    async def schema() -> None:
        store = SQLiteTraceabilityStore(path)
        await store.open()
        await store.close()

    asyncio.run(schema())
    # A bulk load: nothing to recover if it dies half way, so no fsync and no rollback journal.
    with contextlib.closing(sqlite3.connect(path, isolation_level=None)) as db:
        db.execute("PRAGMA journal_mode=OFF")
        db.execute("PRAGMA synchronous=OFF")
        db.execute("BEGIN")
        db.executemany(
            "INSERT INTO serial_states (epc, gtin, lot, body) VALUES (?, ?, ?, ?)",
            _rows(count, _template()),
        )
        db.execute("COMMIT")
        db.execute("PRAGMA journal_mode=WAL")
    path.with_suffix(".version").write_text(_POPULATION_VERSION)
    return path, time.perf_counter() - start


# --- the requests ---------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Probe:
    """One request path with the answer the responder must give."""

    url: str
    verified: bool
    reason: str | None


def _yymmdd(day: date) -> str:
    return day.strftime("%y%m%d")


def _probe(base: str, row: Row, lot: str, expiry: date, reason: str | None) -> Probe:
    query = (
        f"exp={_yymmdd(expiry)}&linkType=verificationService&context=dscsaSaleableReturn"
        f"&reqGLN={REQUESTOR_GLN}&corrUUID={uuid.uuid4()}"
    )
    return Probe(
        f"{base}/vrs/gtin/{row.gtin}/lot/{lot}/ser/{row.serial}?{query}", reason is None, reason
    )


def probes(base: str, count: int, population: int, seed: int) -> list[Probe]:
    """``count`` requests: 80 % genuine, 10 % unknown serial, 5 % wrong lot, 5 % wrong expiry."""
    pick = random.Random(seed)
    made = []
    for _ in range(count):
        kind = pick.random()
        if kind < 0.10:
            # An index past the population: a serial that was never commissioned.
            row = _row(pick.randrange(population), population)
            row = Row(row.gtin, row.lot, row.expiry, _serial(population + pick.randrange(10**9)))
            made.append(_probe(base, row, row.lot, row.expiry, "No_match_GTIN_Serial"))
            continue
        row = _row(pick.randrange(population), population)
        if kind < 0.15:
            made.append(_probe(base, row, row.lot + "X", row.expiry, "No_match_GTIN_Serial_Lot"))
        elif kind < 0.20:
            wrong = row.expiry + timedelta(days=1)
            made.append(_probe(base, row, row.lot, wrong, "No_match_GTIN_Serial_Expiry"))
        else:
            made.append(_probe(base, row, row.lot, row.expiry, None))
    return made


# --- the servers ----------------------------------------------------------------------


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


def _cpu_seconds(pid: int, thread: int | None = None) -> float:
    stat = f"/proc/{pid}/task/{thread}/stat" if thread is not None else f"/proc/{pid}/stat"
    fields = Path(stat).read_text().rpartition(")")[2].split()
    # utime and stime are the 14th and 15th fields of the whole line (11th/12th after ")").
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


class Server:
    """One of this module's servers (``--serve responder|bare``) in a child process."""

    def __init__(self, kind: str, store: Path | None, data_dir: Path) -> None:
        self.kind = kind
        self.port = _free_port()
        self.base = f"http://127.0.0.1:{self.port}"
        command = [sys.executable, "-m", "bench.vrs", "--serve", kind, "--port", str(self.port)]
        if store is not None:
            command += ["--store", str(store), "--data-dir", str(data_dir)]
        # From the repository root: ``bench`` is a directory there, not an installed package.
        self.process = subprocess.Popen(
            command, stdout=subprocess.PIPE, text=True, cwd=OUT.parents[1]
        )
        assert self.process.stdout is not None
        line = self.process.stdout.readline().split()
        if not line or line[0] != "ready":
            self.stop()
            raise RuntimeError(f"the {kind} server did not start")
        self.headers = {"Authorization": f"Bearer {line[1]}"} if len(line) > 1 else {}

    def request(self, url: str) -> bytes:
        """The bytes of a keep-alive GET of ``url`` (one of this server's) with its token."""
        target = url.removeprefix(self.base)
        headers = "".join(f"{name}: {value}\r\n" for name, value in self.headers.items())
        return f"GET {target} HTTP/1.1\r\nHost: 127.0.0.1:{self.port}\r\n{headers}\r\n".encode()

    def cpu_seconds(self) -> float:
        return _cpu_seconds(self.process.pid)

    def main_thread_cpu_seconds(self) -> float:
        """The event loop's thread (its id is the process id); the rest is worker threads."""
        return _cpu_seconds(self.process.pid, self.process.pid)

    def stop(self) -> None:
        self.process.send_signal(signal.SIGTERM)
        self.process.wait(timeout=60)


async def _serve_until_terminated(
    app: web.Application, port: int, token: Callable[[web.Application], Awaitable[str]] | None
) -> None:
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    secret = await token(app) if token is not None else None
    site = web.TCPSite(runner, "127.0.0.1", port)
    await site.start()
    print("ready", secret or "", flush=True)
    stop = asyncio.Event()
    asyncio.get_running_loop().add_signal_handler(signal.SIGTERM, stop.set)
    await stop.wait()
    await runner.cleanup()


def _bare_app() -> web.Application:
    async def answer(request: web.Request) -> web.Response:
        body = {
            "verificationTimestamp": datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%S.%f")[:-3] + "Z",
            "responderGLN": RESPONDER_GLN,
            "data": {"verified": True},
            "corrUUID": request.query.get("corrUUID"),
        }
        return web.json_response(body, headers={"Cache-Control": "no-cache"})

    app = web.Application()
    app.add_routes([web.get("/vrs/{tail:.+}", answer)])
    return app


def _responder_app(store_path: Path, data_dir: Path) -> web.Application:
    from pydantic import SecretStr

    from service.app import create_app
    from service.handlers.traceability import TRACEABILITY
    from service.settings import Settings
    from service.sqlite_traceability_store import SQLiteTraceabilityStore

    # With a GLN configured, create_app itself wires the /vrs routes and the verification
    # context (log, lookup directory, requestor); only the traceability store is swapped.
    settings = Settings(
        store=SecretStr(f"sqlite:///{data_dir}/events.sqlite3"),
        data_dir=data_dir,
        gln=RESPONDER_GLN,
        company_prefixes=(COMPANY_PREFIX,),
        shutdown_timeout=5,
    )

    @asynccontextmanager
    async def traceability(app: web.Application) -> AsyncIterator[None]:
        store = SQLiteTraceabilityStore(store_path)
        await store.open()
        app[TRACEABILITY] = store
        try:
            yield
        finally:
            await store.close()

    app = create_app(settings)
    app.cleanup_ctx.append(traceability)
    return app


async def _partner_token(app: web.Application) -> str:
    from service.partners import add_partner
    from service.state import STORE

    issued = await add_partner(app[STORE], "Bench wholesaler", REQUESTOR_GLN)
    return issued.token


def _serve(kind: str, port: int, store: Path | None, data_dir: Path | None) -> None:
    # The first-start notice about the operator token would only clutter the bench output.
    logging.getLogger("service").setLevel(logging.ERROR)
    if kind == "bare":
        asyncio.run(_serve_until_terminated(_bare_app(), port, None))
        return
    assert store is not None
    assert data_dir is not None
    asyncio.run(_serve_until_terminated(_responder_app(store, data_dir), port, _partner_token))


# --- the load -------------------------------------------------------------------------


@dataclass(slots=True)
class LoadResult:
    """Round trips of one run: latencies in ms of every answered request, and failures."""

    seconds: float = 0.0
    latencies_ms: list[float] = field(default_factory=list)
    errors: int = 0
    client_cpu_s: float = 0.0
    server_cpu_s: float = 0.0
    server_loop_cpu_s: float = 0.0

    @property
    def count(self) -> int:
        return len(self.latencies_ms) + self.errors

    @property
    def rate(self) -> float:
        return self.count / self.seconds if self.seconds else 0.0


class _Connection(asyncio.Protocol):
    """One keep-alive HTTP/1.1 connection of the load generator: it writes a prebuilt request
    and reads the status and the ``Content-Length`` body of the answer, nothing else.

    The load generator shares the 2 cores with the server it measures: an aiohttp client
    spends 0.23-0.38 ms of CPU per request, about as much as a bare aiohttp server, so it
    capped the bare figure and took CPU from the responder's threads. This one spends a
    fraction of that. Both servers get it, in the same alternating rounds.
    """

    def __init__(self) -> None:
        self._transport: asyncio.Transport | None = None
        self._buffer = bytearray()
        self._answer: asyncio.Future[int] | None = None
        self._status = 0
        self._body: int | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        assert isinstance(transport, asyncio.Transport)
        self._transport = transport

    def connection_lost(self, exc: Exception | None) -> None:
        self._transport = None
        if self._answer is not None and not self._answer.done():
            self._answer.set_exception(ConnectionError("the server closed the connection"))

    def data_received(self, data: bytes) -> None:
        buffer = self._buffer
        buffer += data
        if self._body is None:
            end = buffer.find(b"\r\n\r\n")
            if end < 0:
                return
            head = bytes(buffer[:end]).lower()
            del buffer[: end + 4]
            self._status = int(head[9:12])
            start = head.find(b"\r\ncontent-length:")
            if start < 0:
                self._fail("an answer without Content-Length")
                return
            line_end = head.find(b"\r\n", start + 2)
            self._body = int(head[start + 17 : line_end if line_end >= 0 else None])
        if len(buffer) >= self._body:
            del buffer[: self._body]
            self._body = None
            if self._answer is not None and not self._answer.done():
                self._answer.set_result(self._status)

    def _fail(self, reason: str) -> None:
        if self._answer is not None and not self._answer.done():
            self._answer.set_exception(ConnectionError(reason))
        if self._transport is not None:
            self._transport.close()

    async def exchange(self, request: bytes) -> int:
        """Send ``request`` and wait for the whole answer; its status."""
        if self._transport is None:
            raise ConnectionError("not connected")
        self._answer = asyncio.get_running_loop().create_future()
        self._transport.write(request)
        return await self._answer

    def close(self) -> None:
        if self._transport is not None:
            self._transport.close()


async def _connect(server: Server) -> _Connection:
    _, connection = await asyncio.get_running_loop().create_connection(
        _Connection, "127.0.0.1", server.port
    )
    return connection


async def closed_loop(
    server: Server,
    pending: Iterator[bytes],
    deadline: float,
    workers: int,
    result: LoadResult,
) -> None:
    """``workers`` keep-alive connections sharing ``pending`` (prebuilt requests, see
    :meth:`Server.request`), each sending its next request only once its answer is in,
    until ``pending`` ends or ``deadline`` passes; into ``result``."""

    async def worker() -> None:
        connection = await _connect(server)
        try:
            for request in pending:
                sent = time.perf_counter()
                if sent >= deadline:
                    return
                try:
                    ok = await connection.exchange(request) == 200
                except ConnectionError:
                    ok = False
                    connection.close()
                    connection = await _connect(server)
                if ok:
                    result.latencies_ms.append((time.perf_counter() - sent) * 1000)
                else:
                    result.errors += 1
        finally:
            connection.close()

    await asyncio.gather(*(worker() for _ in range(workers)))


async def drive(
    server: Server, urls: Sequence[str], connections: int, max_seconds: float
) -> LoadResult:
    """Send ``urls`` over ``connections`` keep-alive connections, each waiting for its
    answer before the next request, until all are sent or ``max_seconds`` have passed."""
    result = LoadResult()
    pending = iter([server.request(u) for u in urls])
    start = time.perf_counter()
    deadline = start + max_seconds
    cpu_client, cpu_server = time.process_time(), server.cpu_seconds()
    cpu_loop = server.main_thread_cpu_seconds()

    await closed_loop(server, pending, deadline, connections, result)
    result.seconds = time.perf_counter() - start
    result.client_cpu_s = time.process_time() - cpu_client
    result.server_cpu_s = server.cpu_seconds() - cpu_server
    result.server_loop_cpu_s = server.main_thread_cpu_seconds() - cpu_loop
    return result


async def drive_paced(server: Server, urls: Sequence[str], per_second: float) -> LoadResult:
    """Send ``urls`` at a fixed rate over up to 32 connections: latency without queueing."""
    result = LoadResult()
    idle: asyncio.Queue[_Connection] = asyncio.Queue()
    for _ in range(CONCURRENCY):
        idle.put_nowait(await _connect(server))
    start = time.perf_counter()

    async def one(index: int, request: bytes) -> None:
        await asyncio.sleep(max(0.0, start + index / per_second - time.perf_counter()))
        connection = await idle.get()
        sent = time.perf_counter()
        try:
            ok = await connection.exchange(request) == 200
        except ConnectionError:
            ok = False
            connection.close()
            connection = await _connect(server)
        idle.put_nowait(connection)
        if ok:
            result.latencies_ms.append((time.perf_counter() - sent) * 1000)
        else:
            result.errors += 1

    await asyncio.gather(*(one(i, server.request(u)) for i, u in enumerate(urls)))
    result.seconds = time.perf_counter() - start
    while not idle.empty():
        idle.get_nowait().close()
    return result


async def check_answers(server: Server, checks: Sequence[Probe]) -> None:
    """One request after another; every answer must be the decision the population implies."""
    async with aiohttp.ClientSession() as session:
        for probe in checks:
            async with session.get(URL(probe.url, encoded=True), headers=server.headers) as reply:
                body = await reply.json() if reply.status == 200 else await reply.text()
            data = body.get("data", {}) if isinstance(body, dict) else {}
            expected: dict[str, Any] = {"verified": probe.verified}
            if probe.reason:
                expected["verificationFailureReason"] = probe.reason
            if reply.status != 200 or data != expected:
                raise RuntimeError(f"{probe.url}: {reply.status} {body}, expected {expected}")


def percentiles(latencies: Sequence[float]) -> dict[str, float]:
    cuts = statistics.quantiles(latencies, n=100, method="inclusive")
    return {
        "p50_ms": round(cuts[49], 2),
        "p90_ms": round(cuts[89], 2),
        "p95_ms": round(cuts[94], 2),
        "p99_ms": round(cuts[98], 2),
        "max_ms": round(max(latencies), 2),
    }


def _urls(server: Server, made: Sequence[Probe]) -> list[str]:
    return [p.url.replace("{base}", server.base) for p in made]


async def _compare(store: Path, population: int, requests: int, rounds: int) -> dict[str, Any]:
    results: dict[str, list[LoadResult]] = {"bare": [], "responder": []}
    with tempfile.TemporaryDirectory(prefix="dscsa-vrs-bench-") as folder:
        servers = {
            "bare": Server("bare", None, Path(folder)),
            "responder": Server("responder", store, Path(folder)),
        }
        try:
            checks = probes("{base}", 400, population, seed=99)
            await check_answers(servers["responder"], _with_base(checks, servers["responder"]))
            await drive(servers["bare"], _urls(servers["bare"], checks), CONCURRENCY, 30)
            for number in range(rounds):
                made = probes("{base}", requests, population, seed=number)
                for kind, server in servers.items():
                    urls = _urls(server, made)
                    results[kind].append(await drive(server, urls, CONCURRENCY, 120))
            made = probes("{base}", PACED_RATE * (5 if requests < 10_000 else 20), population, 7)
            paced = await drive_paced(
                servers["responder"], _urls(servers["responder"], made), PACED_RATE
            )
        finally:
            for server in servers.values():
                server.stop()
    summary = _summary(results)
    summary["responder_paced"] = {
        "requests_per_s": PACED_RATE,
        "requests": paced.count,
        "errors": paced.errors,
        **percentiles(paced.latencies_ms),
    }
    return summary


def _with_base(made: Sequence[Probe], server: Server) -> list[Probe]:
    return [Probe(p.url.replace("{base}", server.base), p.verified, p.reason) for p in made]


def _summary(results: dict[str, list[LoadResult]]) -> dict[str, Any]:
    summary: dict[str, Any] = {}
    for kind, runs in results.items():
        count = sum(r.count for r in runs)
        latencies = [ms for r in runs for ms in r.latencies_ms]
        summary[kind] = {
            "requests": count,
            "requests_per_s": round(count / sum(r.seconds for r in runs)),
            "rounds_requests_per_s": [round(r.rate) for r in runs],
            "errors": sum(r.errors for r in runs),
            **percentiles(latencies),
            "server_cpu_ms_per_request": round(1000 * sum(r.server_cpu_s for r in runs) / count, 3),
            "server_loop_thread_cpu_ms_per_request": round(
                1000 * sum(r.server_loop_cpu_s for r in runs) / count, 3
            ),
            "client_cpu_ms_per_request": round(1000 * sum(r.client_cpu_s for r in runs) / count, 3),
        }
    bare, responder = summary["bare"], summary["responder"]
    summary["ratio_vs_bare"] = round(responder["requests_per_s"] / bare["requests_per_s"], 3)
    summary["met"] = {
        "throughput_ratio_vs_bare": summary["ratio_vs_bare"] >= 0.60,
        "responder_p99_ms": responder["p99_ms"] < 10,
        "errors": responder["errors"] == 0 and bare["errors"] == 0,
    }
    return summary


def run(quick: bool = False) -> dict[str, Any]:
    """1,000,000 commissioned serials (20,000 with ``quick``); 2 rounds of 20,000 requests
    per server (1 of 3,000 with ``quick``), each round at most 120 s."""
    population = 20_000 if quick else 1_000_000
    store, fill_seconds = populate(population)
    load_before = os.getloadavg()
    results: dict[str, Any] = {
        "serials": population,
        "populate_seconds": round(fill_seconds, 1) if fill_seconds is not None else "cached",
        "concurrency": CONCURRENCY,
    }
    requests, rounds = (3_000, 1) if quick else (20_000, 2)
    results |= asyncio.run(_compare(store, population, requests, rounds))
    results["load_average_before_after"] = [
        round(load_before[0], 2),
        round(os.getloadavg()[0], 2),
    ]
    results["targets"] = TARGETS
    return results


def _main() -> None:
    parser = argparse.ArgumentParser(prog="python -m bench.vrs", description=__doc__)
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--serve", choices=("responder", "bare"), help=argparse.SUPPRESS)
    parser.add_argument("--port", type=int, help=argparse.SUPPRESS)
    parser.add_argument("--store", type=Path, help=argparse.SUPPRESS)
    parser.add_argument("--data-dir", type=Path, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.serve:
        _serve(args.serve, args.port, args.store, args.data_dir)
        return
    print(json.dumps(run(args.quick), indent=2))


if __name__ == "__main__":
    _main()
