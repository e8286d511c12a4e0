"""Traceability benchmarks (issue 4): trace latency in a large SQLite store, and what keeping
serial state current costs next to capture.

* ``trace``: a SQLite traceability store is loaded with pallets of 2 cases of 3 items, ten
  events per pallet (commission items, cases and pallet; pack both cases and the pallet; ship,
  receive, two storing observations), 1,000,000 events in all. Containment and serial state
  are computed with the projection's own functions (``intervals_for_child``, ``timeline``,
  ``compute_state``) pallet by pallet in memory and written in bulk, because going through
  ``SerialStateProjection.apply`` for a million events only measures the loader. The loaded
  store is kept in ``bench/out/trace-<events>.traceability.sqlite`` and reused. Then
  ``service.trace.trace`` runs for random items (item in case in pallet: three levels); the
  CPU time per trace is reported beside the wall-clock percentiles.
* ``projection``: a generated DSCSA document (``bench.generate``) is captured atomically
  through the capture pipeline into fresh SQLite stores, interleaved: without hooks, and with
  the traceability hook as ``dscsa serve`` runs it (the projection worker process projecting
  each stored batch while the next is read, committed after the events), best of each; then
  once with the projection in this process after the commit (the path without the worker).
  The projection's cost is what it takes off capture throughput: the time with it over the
  time without, minus one. Once more as ``dscsa serve`` captures, with the ledger hook in
  both runs.
"""

from __future__ import annotations

import asyncio
import os
import random
import statistics
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from bench.generate import generate
from epcis.reading import ReadLimits
from service.capture import file_document, new_job, run_capture
from service.capture_hooks import LedgerHook, TraceabilityHook
from service.containment import EventFacts, Interval, intervals_for_child, timeline
from service.ledger import Ledger
from service.master_data import PartyRecord, ProductRecord
from service.projection_worker import ProjectionWorker
from service.serial_state import SerialState, compute_state
from service.sqlite_ledger_store import SQLiteLedgerStore
from service.sqlite_store import SQLiteEventStore
from service.sqlite_traceability_store import SQLiteTraceabilityStore, records_path
from service.trace import trace

__all__ = ["TARGETS", "main", "run"]

TARGETS = {
    "trace_p99_ms": "< 10 (item in case in pallet, 1,000,000 events, SQLite)",
    "projection_cost_vs_capture": "<= 0.25",
}
_EVENTS_PER_PALLET = 10
_SELLER = "urn:epc:id:sgln:0300011.11111.0"
_SELLER_DC = "urn:epc:id:sgln:0300011.11112.0"
_BUYER = "urn:epc:id:sgln:0399999.99999.0"
_BUYER_DC = "urn:epc:id:sgln:0399999.34567.0"
_START = datetime(2025, 3, 3, 8, 0, tzinfo=UTC)
_WRITE_CHUNK = 20_000


def _item(n: int) -> str:
    return f"urn:epc:id:sgtin:0300011.012345.{n}"


def _case(n: int) -> str:
    return f"urn:epc:id:sgtin:0300011.112345.{n}"


def _pallet(n: int) -> str:
    return f"urn:epc:id:sscc:0300011.{n:010d}"


class _Facts:
    """Builds facts with a running hash counter."""

    def __init__(self) -> None:
        self.count = 0

    def make(self, at: datetime, **values: Any) -> EventFacts:
        self.count += 1
        defaults: dict[str, Any] = {
            "event_type": "ObjectEvent",
            "action": "OBSERVE",
            "biz_step": None,
            "disposition": None,
            "read_point": _SELLER,
            "biz_location": _SELLER,
            "epcs": (),
            "parent_id": None,
            "child_epcs": (),
            "sources": (),
            "destinations": (),
            "biz_transactions": (),
            "lot": None,
            "expiry": None,
        }
        defaults.update(values)
        hash_id = f"ni:///sha-256;{self.count:064x}?ver=CBV2.0"
        return EventFacts(hash_id=hash_id, event_id=hash_id, event_time=at, **defaults)


def _pallet_facts(maker: _Facts, p: int) -> tuple[list[EventFacts], list[str], list[str]]:
    """The ten events of pallet ``p``; also its items and every identifier."""
    at = _START + timedelta(minutes=10 * p)
    items = [_item(6 * p + i) for i in range(6)]
    cases = [_case(2 * p), _case(2 * p + 1)]
    pallet = _pallet(p)
    lot = {"lot": f"L{p // 1000}", "expiry": datetime(2028, 1, 31).date()}
    commission = {"action": "ADD", "biz_step": "commissioning", "disposition": "active"}
    trade = {
        "sources": (("owning_party", _SELLER), ("location", _SELLER_DC)),
        "destinations": (("owning_party", _BUYER), ("location", _BUYER_DC)),
        "biz_transactions": (("po", f"urn:epcglobal:cbv:bt:0399999999991:PO{p}"),),
    }
    pack = {"event_type": "AggregationEvent", "action": "ADD", "biz_step": "packing"}
    at_buyer = {"read_point": _BUYER_DC, "biz_location": _BUYER_DC}

    def minute(n: int) -> datetime:
        return at + timedelta(minutes=n)

    facts = [
        maker.make(minute(0), epcs=tuple(items), **commission, **lot),
        maker.make(minute(1), epcs=tuple(cases), **commission, **lot),
        maker.make(minute(2), epcs=(pallet,), **commission),
        maker.make(minute(3), parent_id=cases[0], child_epcs=tuple(items[:3]), **pack),
        maker.make(minute(4), parent_id=cases[1], child_epcs=tuple(items[3:]), **pack),
        maker.make(minute(5), parent_id=pallet, child_epcs=tuple(cases), **pack),
        maker.make(minute(6), epcs=(pallet,), biz_step="shipping", biz_location=None, **trade),
        maker.make(minute(500), epcs=(pallet,), biz_step="receiving", **trade, **at_buyer),
        maker.make(minute(600), epcs=(pallet,), biz_step="storing", **at_buyer),
        maker.make(minute(900), epcs=(pallet,), biz_step="storing", **at_buyer),
    ]
    return facts, items, [*items, *cases, pallet]


def _project(facts: list[EventFacts], epcs: list[str]) -> tuple[list[Interval], list[SerialState]]:
    """Containment and state of one pallet's identifiers, with the projection's functions."""
    by_epc: dict[str, list[EventFacts]] = {epc: [] for epc in epcs}
    for f in facts:
        for epc in f.names():
            by_epc[epc].append(f)
    intervals: dict[str, list[Interval]] = {}
    for epc in epcs:
        relevant = list(by_epc[epc])
        for container in {f.parent_id for f in by_epc[epc] if f.parent_id and f.parent_id != epc}:
            relevant.extend(by_epc[container])
        intervals[epc], _ = intervals_for_child(epc, relevant)
    states = []
    for epc in epcs:
        entries = timeline(epc, lambda e: by_epc.get(e, ()), lambda e: intervals.get(e, ()))
        parent = next((i.parent for i in intervals[epc] if i.end is None), None)
        top: str | None = parent
        while top is not None:
            above = next((i.parent for i in intervals.get(top, ()) if i.end is None), None)
            if above is None:
                break
            top = above
        state, _ = compute_state(epc, entries, parent, top)
        states.append(state)
    return [i for found in intervals.values() for i in found], states


async def _load(store: SQLiteTraceabilityStore, pallets: int) -> list[str]:
    maker = _Facts()
    items: list[str] = []
    facts: list[EventFacts] = []
    intervals: list[Interval] = []
    children: list[str] = []
    states: list[SerialState] = []
    for p in range(pallets):
        pallet_facts, pallet_items, epcs = _pallet_facts(maker, p)
        found, pallet_states = _project(pallet_facts, epcs)
        facts += pallet_facts
        intervals += found
        children += epcs
        states += pallet_states
        items += pallet_items
        if len(facts) >= _WRITE_CHUNK or p == pallets - 1:
            await store.add_facts(facts)
            await store.replace_intervals(children, intervals)
            await store.put_states(states)
            facts, intervals, children, states = [], [], [], []
    await store.put_products(
        [ProductRecord("00300011123456", "urn:epc:idpat:sgtin:0300011.012345.*", "Epcistra")]
    )
    await store.put_parties([PartyRecord(party, f"party {party}") for party in (_SELLER, _BUYER)])
    return items


def _percentile(samples: list[float], fraction: float) -> float:
    ordered = sorted(samples)
    return ordered[min(len(ordered) - 1, int(fraction * len(ordered)))]


_OUT = Path(__file__).resolve().parent / "out"
# Bump when the store's schema or the loader changes: a cached store of another version is
# rebuilt rather than measured.
_STORE_VERSION = "1"


def _pallet_items(pallets: int) -> list[str]:
    return [_item(6 * p + i) for p in range(pallets) for i in range(6)]


async def _cached_store(pallets: int) -> tuple[Path, float | None]:
    """The loaded store for ``pallets`` pallets in bench/out, built once; and its load time
    when built by this run (None when it was cached)."""
    path = _OUT / f"trace-{pallets * _EVENTS_PER_PALLET}.traceability.sqlite"
    marker = path.with_suffix(".version")
    if path.exists() and marker.exists() and marker.read_text() == _STORE_VERSION:
        return path, None
    _OUT.mkdir(parents=True, exist_ok=True)
    partial = path.with_suffix(".partial")
    for stale in (partial, path, marker, records_path(partial), records_path(path)):
        stale.unlink(missing_ok=True)
    store = SQLiteTraceabilityStore(partial)
    await store.open()
    started = time.perf_counter()
    try:
        await _load(store, pallets)
    finally:
        await store.close()
    _keep(partial, path, marker)
    return path, time.perf_counter() - started


def _keep(partial: Path, path: Path, marker: Path) -> None:
    """Move a completely loaded store (closed, so its WAL is checkpointed) into place: both
    its files, the projection and the records."""
    for source, target in ((records_path(partial), records_path(path)), (partial, path)):
        for suffix in ("-wal", "-shm"):
            Path(f"{source}{suffix}").unlink(missing_ok=True)
        source.rename(target)
    marker.write_text(_STORE_VERSION)


async def _trace_bench(events: int, traces: int) -> dict[str, Any]:
    pallets = events // _EVENTS_PER_PALLET
    path, load_s = await _cached_store(pallets)
    store = SQLiteTraceabilityStore(path)
    await store.open()
    try:
        items = _pallet_items(pallets)
        rng = random.Random(4)
        sample = [rng.choice(items) for _ in range(traces)]
        for epc in sample[:20]:  # warm the page cache a little, as a running service has
            await trace(store, epc)
        timings: list[float] = []
        cpu = time.process_time()
        for epc in sample:
            begin = time.perf_counter()
            result = await trace(store, epc)
            timings.append((time.perf_counter() - begin) * 1000)
            # Stored in a pallet, through its case: three levels.
            assert len(result.events[-1].via) == 2, epc
        cpu_ms = (time.process_time() - cpu) * 1000 / len(sample)
    finally:
        await store.close()
    return {
        "events": pallets * _EVENTS_PER_PALLET,
        "identifiers": pallets * 9,
        "load_s": round(load_s, 1) if load_s is not None else "cached",
        "traces": traces,
        "trace_p50_ms": round(statistics.median(timings), 3),
        "trace_p99_ms": round(_percentile(timings, 0.99), 3),
        "trace_cpu_ms": round(cpu_ms, 3),
    }


async def _capture_run(
    root: Path, path: Path, events: int, tag: str, hook: str | None, *, ledger: bool = False
) -> dict[str, float]:
    """One capture of ``path`` into fresh stores under ``root``: without the traceability
    hook, with it projecting in this process after the commit (``"here"``), or with the
    projection worker (``"worker"``, warmed first, as a running service has it); ``ledger``
    adds the ledger hook that ``dscsa serve`` runs on every capture too."""
    folder = root / tag
    folder.mkdir()
    store = SQLiteEventStore(folder / "events.sqlite3", data_dir=folder)
    traceability = SQLiteTraceabilityStore(folder / "events.traceability.sqlite")
    ledger_store = SQLiteLedgerStore(folder / "events.sqlite3") if ledger else None
    worker = ProjectionWorker(folder / "events.traceability.sqlite") if hook == "worker" else None
    hooks: list[Any] = [TraceabilityHook(traceability, worker)] if hook else []
    await store.open()
    await traceability.open()
    if ledger_store is not None:
        await ledger_store.open()
        journal = Ledger(ledger_store)
        await journal.load()
        hooks.append(LedgerHook(journal))
    try:
        worker_cpu_s = await worker.cpu_seconds() if worker is not None else 0.0
        # Earlier runs' writes still on their way to the disk would slow this one down.
        await asyncio.to_thread(os.sync)
        started, cpu = time.perf_counter(), time.process_time()
        job = await run_capture(
            store,
            file_document(path, 1 << 34),
            new_job("bench", "rollback"),
            limits=ReadLimits(max_events=events + 1),
            source=str(path),
            hooks=hooks,
            spool_dir=folder / "spool",
        )
        elapsed, cpu_s = time.perf_counter() - started, time.process_time() - cpu
        worker_cpu_s = await worker.cpu_seconds() - worker_cpu_s if worker is not None else 0.0
        assert job.success, job
        assert job.captured == events, job
        if hook:
            assert len(await traceability.all_fact_epcs()) > events, "nothing was projected"
    finally:
        for hooked in hooks:
            if isinstance(hooked, TraceabilityHook):
                await hooked.close()
        if ledger_store is not None:
            await ledger_store.close()
        await traceability.close()
        await store.close()
    return {"s": elapsed, "cpu_s": cpu_s, "worker_cpu_s": worker_cpu_s}


async def _projection_bench(events: int, pairs: int) -> dict[str, Any]:
    """Capture with and without the projection in the same run, interleaved: ``pairs`` times
    without hooks and with the projection worker, then as many times with the ledger hook
    alone and with the ledger and the projection (as ``dscsa serve`` captures), best of
    each; then once with the projection in this process after the commit (the path without
    the worker)."""
    with tempfile.TemporaryDirectory(prefix="bench-projection-") as directory:
        root = Path(directory)
        path = generate(root / "doc.xml", events)
        alone: list[dict[str, float]] = []
        piped: list[dict[str, float]] = []
        for n in range(pairs):
            alone.append(await _capture_run(root, path, events, f"alone-{n}", None))
            piped.append(await _capture_run(root, path, events, f"worker-{n}", "worker"))
        served: list[dict[str, float]] = []
        served_piped: list[dict[str, float]] = []
        for n in range(pairs):
            served.append(await _capture_run(root, path, events, f"ledger-{n}", None, ledger=True))
            served_piped.append(
                await _capture_run(root, path, events, f"ledger-worker-{n}", "worker", ledger=True)
            )
        here = await _capture_run(root, path, events, "here", "here")
    best_alone = min(alone, key=lambda run: run["s"])
    best_piped = min(piped, key=lambda run: run["s"])
    best_served = min(served, key=lambda run: run["s"])
    best_served_piped = min(served_piped, key=lambda run: run["s"])
    return {
        "events": events,
        "pairs": pairs,
        "capture_s": [round(run["s"], 2) for run in alone],
        "capture_with_projection_worker_s": [round(run["s"], 2) for run in piped],
        "capture_with_projection_here_s": round(here["s"], 2),
        "capture_events_per_s": round(events / best_alone["s"]),
        "capture_with_projection_events_per_s": round(events / best_piped["s"]),
        # The target: what keeping state current takes off capture throughput, best runs.
        "projection_cost_vs_capture": round(best_piped["s"] / best_alone["s"] - 1, 3),
        "projection_here_cost_vs_capture": round(here["s"] / best_alone["s"] - 1, 3),
        # As dscsa serve captures: the ledger hook in both runs, the projection in one.
        "served_capture_s": [round(run["s"], 2) for run in served],
        "served_capture_with_projection_s": [round(run["s"], 2) for run in served_piped],
        "served_projection_cost_vs_capture": round(
            best_served_piped["s"] / best_served["s"] - 1, 3
        ),
        # CPU of this (the server's) process per event; the worker's is on the other core.
        "capture_cpu_us_per_event": round(best_alone["cpu_s"] / events * 1e6),
        "capture_with_worker_server_cpu_us_per_event": round(best_piped["cpu_s"] / events * 1e6),
        "projection_worker_cpu_us_per_event": round(best_piped["worker_cpu_s"] / events * 1e6),
        "capture_with_projection_here_cpu_us_per_event": round(here["cpu_s"] / events * 1e6),
    }


def run(quick: bool = False) -> dict[str, Any]:
    """Both benchmarks; ``quick`` uses small stores (a smoke run, not the target sizes)."""
    trace_events, traces = (20_000, 200) if quick else (1_000_000, 2_000)
    projection_events, pairs = (2_000, 1) if quick else (50_000, 3)
    return {
        "targets": TARGETS,
        "trace": asyncio.run(_trace_bench(trace_events, traces)),
        "projection": asyncio.run(_projection_bench(projection_events, pairs)),
    }


main = run
