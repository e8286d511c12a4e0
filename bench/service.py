"""Service benchmarks: POST /capture into SQLite vs a bare lxml parse, and GET /events latency.

The server runs as ``dscsa serve`` in a child process on a fresh data directory, so its peak
RSS (``VmHWM``) is the server's alone. Capture speed is measured from the first byte sent to
the capture job reporting ``running: false``; the baseline is a bare lxml iterparse of the
same file in this process. Query latency is HTTP round trips of ``MATCH_epc`` for random
item SGTINs, against a second server on a store of about 1,000,000 events
(``bench.query_store``: built once through the store's capture sessions, cached).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import random
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import aiohttp
from lxml import etree

from bench.generate import ITEMS_PER_CASE, generate
from bench.query_store import QueryStore, build_query_store

__all__ = ["TARGETS", "run"]

OUT = Path(__file__).resolve().parent / "out"
TARGETS = {
    "capture_events_per_s": ">= 20000",
    "server_peak_rss_mb": "< 300",
    "query_match_epc_p99_ms": "< 5 (over 1,000,000 stored events)",
}
_EVENT_TAGS = ("ObjectEvent", "AggregationEvent", "TransactionEvent", "TransformationEvent")
_QUERIES = 1000


def _iterparse_rate(path: Path) -> float:
    """Events per second of a bare lxml iterparse that frees what it has seen."""
    start = time.perf_counter()
    count = 0
    for _, element in etree.iterparse(str(path), events=("end",), tag=_EVENT_TAGS):
        count += 1
        element.clear(keep_tail=True)
        parent = element.getparent()
        while element.getprevious() is not None and parent is not None:
            del parent[0]
    return count / (time.perf_counter() - start)


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


def _cpu_seconds(pid: int) -> float:
    """User plus system CPU time of a process so far, every thread included."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def _descendants(pid: int) -> list[int]:
    """Every process below ``pid``: the schema check worker, the projection worker (a child of
    the fork server, itself a child of the server) and their helpers."""
    parents: dict[int, int] = {}
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            with contextlib.suppress(OSError):
                fields = (entry / "stat").read_text().rsplit(")", 1)[1].split()
                parents[int(entry.name)] = int(fields[1])  # the parent's process id
    found: list[int] = []
    frontier = [pid]
    while frontier:
        below = [child for child, parent in parents.items() if parent in frontier]
        found.extend(below)
        frontier = below
    return found


def _children_cpu_seconds(pid: int) -> dict[int, float]:
    """CPU seconds so far of each process below the server (see ``_descendants``)."""
    seconds = {}
    for child in _descendants(pid):
        with contextlib.suppress(OSError):
            seconds[child] = _cpu_seconds(child)
    return seconds


def _peak_rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    return float("nan")


def _workers_peak_rss_mb(pid: int) -> float:
    peaks = [0.0]
    for child in _descendants(pid):
        with contextlib.suppress(OSError):
            peaks.append(_peak_rss_mb(child))
    return round(max(peaks), 1)


class _Server:
    """``dscsa serve`` in a child process on its own data directory and port."""

    def __init__(self, data_dir: Path, store: Path | None = None) -> None:
        self.port = _free_port()
        self.data_dir = data_dir
        store = store or data_dir / "events.sqlite3"
        environment = os.environ | {
            "DSCSA_STORE": f"sqlite:///{store}",
            "DSCSA_DATA_DIR": str(data_dir),
            "DSCSA_PORT": str(self.port),
            "DSCSA_CAPTURE_EVENT_LIMIT": "10000000",
            "DSCSA_CAPTURE_FILE_SIZE_LIMIT": str(4 << 30),
        }
        self.process = subprocess.Popen(
            [sys.executable, "-m", "service", "serve"],
            env=environment,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        self.base = f"http://127.0.0.1:{self.port}"

    async def ready(self, session: aiohttp.ClientSession) -> dict[str, str]:
        for _ in range(200):
            try:
                async with session.get(f"{self.base}/health") as response:
                    if response.status == 200:
                        token = (self.data_dir / "operator.token").read_text().strip()
                        return {"Authorization": f"Bearer {token}"}
            except aiohttp.ClientConnectionError:
                pass
            await asyncio.sleep(0.1)
        raise RuntimeError("the service did not start")

    def stop(self) -> None:
        self.process.terminate()
        self.process.wait(timeout=120)


async def _capture(
    session: aiohttp.ClientSession, server: _Server, headers: dict[str, str], path: Path
) -> tuple[float, dict[str, Any]]:
    start = time.perf_counter()
    with path.open("rb") as body:
        async with session.post(
            f"{server.base}/capture",
            data=body,
            headers={**headers, "Content-Type": "application/xml"},
        ) as response:
            if response.status != 202:
                raise RuntimeError(f"capture refused: {response.status} {await response.text()}")
            location = response.headers["Location"]
    while True:
        async with session.get(f"{server.base}{location}", headers=headers) as response:
            job: dict[str, Any] = await response.json()
        if not job["running"]:
            return time.perf_counter() - start, job
        await asyncio.sleep(0.05)


def _random_items(store: QueryStore, count: int, seed: int) -> list[str]:
    pick = random.Random(seed)
    return [
        store.item(pick.randrange(1, store.cases + 1), pick.randrange(ITEMS_PER_CASE))
        for _ in range(count)
    ]


async def _query_latencies(
    session: aiohttp.ClientSession, base: str, headers: dict[str, str], epcs: list[str]
) -> list[float]:
    """Milliseconds per sequential ``GET /events?MATCH_epc=`` round trip, answers checked."""
    latencies = []
    for epc in epcs:
        start = time.perf_counter()
        async with session.get(
            f"{base}/events", params={"MATCH_epc": epc}, headers=headers
        ) as response:
            body = await response.read()
        latencies.append((time.perf_counter() - start) * 1000)
        if response.status != 200 or b"ObjectEvent" not in body:
            raise RuntimeError(f"query for {epc} failed: {response.status}")
    return latencies


async def _run_capture(capture_file: Path, capture_events: int) -> dict[str, Any]:
    results: dict[str, Any] = {}
    with tempfile.TemporaryDirectory(prefix="dscsa-bench-") as folder:
        server = _Server(Path(folder))
        try:
            async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=None)) as session:
                headers = await server.ready(session)
                cpu_before = _cpu_seconds(server.process.pid)
                children_before = _children_cpu_seconds(server.process.pid)
                seconds, job = await _capture(session, server, headers, capture_file)
                cpu = _cpu_seconds(server.process.pid) - cpu_before
                children = _children_cpu_seconds(server.process.pid)
                children_cpu = sum(children.values()) - sum(
                    children_before.get(child, 0.0) for child in children
                )
                if not job["success"] or job["captured"] != capture_events:
                    raise RuntimeError(f"capture did not store every event: {json.dumps(job)}")
                results["capture_events"] = capture_events
                results["capture_seconds"] = round(seconds, 2)
                results["capture_events_per_s"] = round(capture_events / seconds)
                # CPU per event, all server threads: steadier than the rate on a busy machine.
                results["capture_server_cpu_us_per_event"] = round(cpu / capture_events * 1e6)
                # The schema check and projection workers work on the other core.
                results["capture_worker_cpu_us_per_event"] = round(
                    children_cpu / capture_events * 1e6
                )
                results["server_peak_rss_mb"] = round(_peak_rss_mb(server.process.pid), 1)
                # The workers' own peaks (schema check, projection): separate processes.
                results["worker_peak_rss_mb"] = _workers_peak_rss_mb(server.process.pid)
        finally:
            server.stop()
    return results


async def _run_queries(store: QueryStore) -> dict[str, Any]:
    # A fresh control file: the server then issues a new operator token in the data folder.
    for leftover in store.folder.glob("events-control.sqlite3*"):
        leftover.unlink()
    with tempfile.TemporaryDirectory(prefix="dscsa-bench-") as folder:
        server = _Server(Path(folder), store.path)
        try:
            async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=None)) as session:
                headers = await server.ready(session)
                await _query_latencies(session, server.base, headers, _random_items(store, 50, 1))
                latencies = await _query_latencies(
                    session, server.base, headers, _random_items(store, _QUERIES, 7)
                )
        finally:
            server.stop()
    cuts = statistics.quantiles(latencies, n=100)
    return {
        "query_store_events": store.events,
        "query_count": len(latencies),
        "query_match_epc_p50_ms": round(cuts[49], 2),
        "query_match_epc_p99_ms": round(cuts[98], 2),
    }


def run(quick: bool = False) -> dict[str, Any]:
    """Capture a 100,000-event file (10,000 with ``quick``); query a 1,000,000-event store."""
    capture_events = 10_000 if quick else 100_000
    query_events = 30_000 if quick else 1_000_000
    capture_file = generate(OUT / f"dscsa-{capture_events}.xml", capture_events)
    started = time.perf_counter()
    store = build_query_store(OUT, query_events)
    results: dict[str, Any] = {"query_store_build_seconds": round(time.perf_counter() - started)}
    results["lxml_iterparse_events_per_s"] = round(_iterparse_rate(capture_file))
    results |= asyncio.run(_run_capture(capture_file, capture_events))
    results["capture_ratio_vs_iterparse"] = round(
        results["capture_events_per_s"] / results["lxml_iterparse_events_per_s"], 3
    )
    results |= asyncio.run(_run_queries(store))
    results["load_average_1m"] = round(os.getloadavg()[0], 2)
    results["targets"] = TARGETS
    return results


if __name__ == "__main__":
    print(json.dumps(run("--quick" in sys.argv), indent=2))
