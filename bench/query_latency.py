"""``GET /events?MATCH_epc=`` latency over the cached query store, whole and stage by stage.

``python -m bench.query_latency [--events N] [--queries N] [--stages]`` measures what
``bench.service`` measures (random item SGTINs after 50 warm-up queries, sequential, over
HTTP with a bearer token, against ``dscsa serve`` in a child process) and adds the server's
CPU time per request. With ``--stages`` it also times, in this process and without HTTP,
each step the request path takes: token lookup, query parsing, the store call, rendering.

The cached store is only read, never rebuilt here: the server's own files (control, ledger,
traceability, exports) go to a temporary folder that holds a link to the events file.
"""

from __future__ import annotations

import argparse
import asyncio
import functools
import json
import os
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import aiohttp

from bench.query_store import _BLOCK_EVENTS, QueryStore
from bench.service import _query_latencies, _random_items, _Server

__all__ = ["main", "measure_http", "measure_stages"]

OUT = Path(__file__).resolve().parent / "out"
_WARM_UP = 50


def _cuts(samples: list[float]) -> dict[str, float]:
    cuts = statistics.quantiles(samples, n=100)
    return {"p50_ms": round(cuts[49], 3), "p99_ms": round(cuts[98], 3)}


def _thread_cpu(pid: int) -> dict[str, float]:
    """CPU seconds of each thread of ``pid`` by thread name (the main thread as ``main``)."""
    seconds: dict[str, float] = {}
    for task in Path(f"/proc/{pid}/task").iterdir():
        try:
            head, _, tail = (task / "stat").read_text().rpartition(")")
        except FileNotFoundError:
            continue
        fields = tail.split()
        name = "main" if task.name == str(pid) else head.partition("(")[2]
        cpu = (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
        seconds[name] = seconds.get(name, 0.0) + cpu
    return seconds


def _linked_store(store: QueryStore, folder: Path) -> Path:
    # The server makes its control and side files next to the events file: keep them here.
    link = folder / "events.sqlite3"
    link.symlink_to(store.path.resolve())
    return link


async def measure_http(
    store: QueryStore, queries: int, profile: Path | None = None
) -> dict[str, Any]:
    """Sequential HTTP round trips of ``MATCH_epc``; ``profile``: py-spy samples (raw)."""
    with tempfile.TemporaryDirectory(prefix="dscsa-query-") as name:
        folder = Path(name)
        server = _Server(folder, _linked_store(store, folder))
        try:
            timeout = aiohttp.ClientTimeout(total=None)
            async with aiohttp.ClientSession(timeout=timeout) as session:
                headers = await server.ready(session)
                await _query_latencies(
                    session, server.base, headers, _random_items(store, _WARM_UP, 1)
                )
                spy = _py_spy(server.process.pid, profile) if profile else None
                threads = _thread_cpu(server.process.pid)
                latencies = await _query_latencies(
                    session, server.base, headers, _random_items(store, queries, 7)
                )
                after = _thread_cpu(server.process.pid)
                if spy is not None:
                    spy.send_signal(signal.SIGINT)
                    spy.wait(timeout=60)
        finally:
            server.stop()
    by_thread = {
        name: round((after[name] - threads.get(name, 0.0)) * 1000 / queries, 3)
        for name in sorted(after)
        if after[name] - threads.get(name, 0.0) > 0
    }
    return {
        "queries": queries,
        **_cuts(latencies),
        "server_cpu_ms_per_request": round(sum(by_thread.values()), 3),
        "server_cpu_ms_per_request_by_thread": by_thread,
    }


def _py_spy(pid: int, output: Path) -> subprocess.Popen[bytes]:
    spy = subprocess.Popen(
        [
            *(str(Path(sys.executable).with_name("py-spy")), "record", "-p", str(pid)),
            *("-r", "500", "-f", "raw", "-o", str(output), "--threads"),
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    time.sleep(1.0)
    return spy


async def _render(bodies: list[bytes]) -> bytes:
    from service.handlers.events import _query_document_json

    return _query_document_json(bodies)


async def measure_stages(store: QueryStore, queries: int) -> dict[str, Any]:
    """Each step of the request path on its own, in this process, over the same store.

    ``store_query`` is the store call as the handler makes it (a hop to a reader thread);
    ``store_query_inline`` runs the same read on the event loop's thread, to price the hop.
    The two alternate query by query, so a change of machine load touches both alike.
    """
    from aiohttp import web

    from epcis.query import parse_query_params
    from service.auth import TOKEN_CACHE, TokenCache, principal_for_token_hash
    from service.partners import add_partner, hash_token
    from service.sqlite_store import SQLiteEventStore
    from service.state import STORE
    from service.store import PageRequest

    with tempfile.TemporaryDirectory(prefix="dscsa-query-") as name:
        folder = Path(name)
        events = SQLiteEventStore(_linked_store(store, folder), folder / "data")
        await events.open()
        app = web.Application()
        app[STORE] = events
        app[TOKEN_CACHE] = TokenCache()
        stages: dict[str, list[float]] = {}

        async def timed(stage: str, call: Callable[[], Awaitable[Any]]) -> Any:
            start = time.perf_counter()
            result = await call()
            stages.setdefault(stage, []).append((time.perf_counter() - start) * 1000)
            return result

        async def inline(call: Callable[..., Any]) -> Any:
            return call(*events._reader_pair())

        try:
            issued = await add_partner(events, "bench", "0000000000000", role="operator")
            token_hash = hash_token(issued.token)
            epcs = _random_items(store, _WARM_UP, 1) + _random_items(store, queries, 7)
            for index, epc in enumerate(epcs):
                if index == _WARM_UP:
                    stages.clear()
                await timed(
                    "token_lookup_store", lambda: events.get_partner_by_token_hash(token_hash)
                )
                principal = await timed(
                    "token_lookup_cached", lambda: principal_for_token_hash(app, token_hash)
                )

                async def parse(epc: str = epc) -> Any:
                    return parse_query_params({"MATCH_epc": epc})

                query = await timed("parse", parse)

                async def fingerprint(query: Any = query) -> str:
                    return str(query.fingerprint())

                await timed("query_fingerprint", fingerprint)
                request = functools.partial(
                    events.query_events, query, principal.visibility, PageRequest(30)
                )
                # Alternate which goes first: the second finds the pages the first read.
                for stage in ("store_query", "store_query_inline")[:: 1 if index % 2 else -1]:
                    if stage == "store_query_inline":
                        events._read = inline  # type: ignore[method-assign]
                    try:
                        page = await timed(stage, request)
                    finally:
                        vars(events).pop("_read", None)
                await timed(
                    "render",
                    functools.partial(_render, [record.body for record in page.records]),
                )
        finally:
            await events.close()
    return {stage: _cuts(samples) for stage, samples in stages.items()}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.query_latency", description=__doc__)
    parser.add_argument("--events", type=int, default=1_000_000, help="which cached store")
    parser.add_argument("--queries", type=int, default=1000)
    parser.add_argument("--stages", action="store_true", help="also time each stage in-process")
    parser.add_argument(
        "--server-src", type=Path, help="run the server from this checkout (A/B comparisons)"
    )
    parser.add_argument("--profile", type=Path, help="py-spy samples of the server (raw)")
    parser.add_argument("--no-http", action="store_true", help="only the in-process stages")
    args = parser.parse_args(argv)
    folder = OUT / f"query-store-{args.events}"
    if not (folder / "events.sqlite3").exists():
        parser.error(f"no cached store in {folder}: run `python -m bench service` once")
    blocks = -(-args.events // _BLOCK_EVENTS)
    store = QueryStore(folder, blocks)
    if args.server_src:
        # The child runs ``python -m service`` from our working directory, which Python puts
        # first on its path; _Server reads the environment when it starts the child.
        os.environ["PYTHONPATH"] = str(args.server_src.resolve())
        os.chdir(args.server_src)
    report: dict[str, Any] = {"store_events": store.events, "load_1m": os.getloadavg()[0]}
    if not args.no_http:
        report["http"] = asyncio.run(measure_http(store, args.queries, args.profile))
    if args.stages or args.no_http:
        report["stages"] = asyncio.run(measure_stages(store, args.queries))
    report["load_1m_after"] = os.getloadavg()[0]
    print(json.dumps(report, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
