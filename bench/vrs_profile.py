"""The OCI VRS performance-test load profile replayed against our responder.

OCI's k6 test (Open-Credentialing-Initiative/vrs-performance-testing) runs 5, 10, 20 and 40
virtual users for 30 s each; every user sends a verification request, waits for the answer
and sends the next. This replays that profile (5 s per stage with ``--quick``) against the
real app of :mod:`bench.vrs` on the same SQLite population, on loopback, and prints count,
rate, average, p90, p95 and max per stage and overall, beside OCI's published 2024 figures.
Their figures came over the internet from a hosted responder with ATP credentials, so they are
a reference point, not a like-for-like comparison.
"""

from __future__ import annotations

import asyncio
import itertools
import json
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from bench.vrs import LoadResult, Server, closed_loop, populate, probes

__all__ = ["OCI_2024", "STAGES", "TARGETS", "run"]

STAGES = (5, 10, 20, 40)
OCI_2024 = {"rate_per_s": 9.13, "avg_ms": 953, "p90_ms": 1515}
TARGETS = {"errors": "== 0", "reference": f"OCI 2024 overall: {OCI_2024}"}
# Distinct requests prepared per stage second; the list is cycled if a stage sends more.
_PER_SECOND = 1500


async def stage(server: Server, users: int, seconds: float, urls: list[str]) -> LoadResult:
    """``users`` closed-loop users, each with its own connection, for ``seconds``."""
    result = LoadResult()
    pending = itertools.cycle([server.request(u) for u in urls])
    start = time.perf_counter()
    await closed_loop(server, pending, start + seconds, users, result)
    result.seconds = time.perf_counter() - start
    return result


def _figures(result: LoadResult) -> dict[str, Any]:
    latencies = result.latencies_ms
    cuts = statistics.quantiles(latencies, n=100, method="inclusive")
    return {
        "count": result.count,
        "rate_per_s": round(result.rate, 2),
        "avg_ms": round(statistics.fmean(latencies), 2),
        "p90_ms": round(cuts[89], 2),
        "p95_ms": round(cuts[94], 2),
        "max_ms": round(max(latencies), 2),
        "errors": result.errors,
    }


def _table(rows: dict[str, dict[str, Any]]) -> str:
    lines = [
        f"{'stage':<14}{'count':>8}{'rate/s':>10}{'avg ms':>10}{'p90 ms':>10}"
        f"{'p95 ms':>10}{'max ms':>10}{'errors':>8}"
    ]
    for name, row in rows.items():
        lines.append(
            f"{name:<14}{row['count']:>8}{row['rate_per_s']:>10}{row['avg_ms']:>10}"
            f"{row['p90_ms']:>10}{row['p95_ms']:>10}{row['max_ms']:>10}{row['errors']:>8}"
        )
    oci = OCI_2024
    lines.append(
        f"{'OCI 2024':<14}{'':>8}{oci['rate_per_s']:>10}{oci['avg_ms']:>10}{oci['p90_ms']:>10}"
        f"{'-':>10}{'-':>10}{'':>8}"
    )
    return "\n".join(lines)


async def _replay(store: Path, population: int, seconds: float) -> dict[str, dict[str, Any]]:
    rows: dict[str, dict[str, Any]] = {}
    overall = LoadResult()
    with tempfile.TemporaryDirectory(prefix="dscsa-vrs-profile-") as folder:
        server = Server("responder", store, Path(folder))
        try:
            for number, users in enumerate(STAGES):
                count = int(seconds * _PER_SECOND)
                made = probes(server.base, count, population, seed=1000 + number)
                result = await stage(server, users, seconds, [p.url for p in made])
                rows[f"{users} users"] = _figures(result)
                overall.seconds += result.seconds
                overall.latencies_ms += result.latencies_ms
                overall.errors += result.errors
        finally:
            server.stop()
    rows["all stages"] = _figures(overall)
    return rows


def run(quick: bool = False) -> dict[str, Any]:
    """The four stages of 30 s (5 s with ``quick``) on 1,000,000 serials (20,000)."""
    population = 20_000 if quick else 1_000_000
    store, _ = populate(population)
    seconds = 5.0 if quick else 30.0
    load_before = os.getloadavg()[0]
    rows = asyncio.run(_replay(store, population, seconds))
    print(_table(rows), file=sys.stderr)
    return {
        "serials": population,
        "stage_seconds": seconds,
        "stages": rows,
        "oci_2024": OCI_2024,
        "load_average_before_after": [round(load_before, 2), round(os.getloadavg()[0], 2)],
        "targets": TARGETS,
    }


if __name__ == "__main__":
    print(json.dumps(run("--quick" in sys.argv), indent=2))
