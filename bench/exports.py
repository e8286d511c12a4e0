"""Export bundle benchmark: a lot of 10,000 serials (about 35,000 events, several transactions).

Targets (issue 6): export under 15 s and 500 MB peak RSS; verify-export under 5 s. The
export and the verification each run in a child process so that their peak RSS is their own,
not the set-up's (generating, capturing, projecting and ledgering the lot).
"""

from __future__ import annotations

import asyncio
import json
import resource
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from epcis.model import (
    Action,
    AggregationEvent,
    BizTransaction,
    DocumentFormat,
    DocumentHead,
    DSCSATransactionStatement,
    EPCISHeader,
    Event,
    GS1USHealthcareHeader,
    ObjectEvent,
    SourceDestination,
    Vocabulary,
    VocabularyAttribute,
    VocabularyElement,
    XmlElement,
)

__all__ = ["main", "run", "run_ledger"]

GTIN = "00300010123455"
LOT = "LOT-BENCH-1"
MDA = "urn:epcglobal:cbv:mda"
MANUFACTURER = "urn:epc:id:sgln:030001.111111.0"
WHOLESALER = "urn:epc:id:sgln:039999.999999.0"
PHARMACIES = tuple(f"urn:epc:id:sgln:038888.88888{n}.0" for n in range(5))
T0 = datetime(2026, 3, 2, 8, 0, tzinfo=UTC)
_CASE_SIZE = 10


def _item(n: int) -> str:
    return f"urn:epc:id:sgtin:030001.0012345.{100000 + n}"


def _case(n: int) -> str:
    return f"urn:epc:id:sgtin:030001.1012345.{500000 + n}"


def _at(seconds: int) -> datetime:
    return T0 + timedelta(seconds=seconds)


def _trade(
    when: int, epcs: tuple[str, ...], step: str, seller: str, buyer: str, order: int
) -> ObjectEvent:
    return ObjectEvent(
        event_time=_at(when),
        event_time_zone_offset="+00:00",
        epc_list=epcs,
        action=Action.OBSERVE,
        biz_step=step,
        disposition="in_transit" if step == "shipping" else "in_progress",
        read_point=seller if step == "shipping" else buyer,
        biz_location=None if step == "shipping" else buyer,
        biz_transaction_list=(
            BizTransaction(type="po", value=f"urn:epcglobal:cbv:bt:0399999999991:PO-{order}"),
            BizTransaction(type="desadv", value=f"urn:epcglobal:cbv:bt:0300011111116:DA-{order}"),
        ),
        source_list=(
            SourceDestination(type="owning_party", value=seller),
            SourceDestination(type="location", value=seller),
        ),
        destination_list=(
            SourceDestination(type="owning_party", value=buyer),
            SourceDestination(type="location", value=buyer),
        ),
    )


def lot_events(serials: int) -> Iterator[Event]:
    """Items commissioned one by one, packed in cases, shipped to the wholesaler in five
    orders, unpacked there and shipped item by item to five pharmacies, which receive them."""
    ilmd = (
        XmlElement(namespace=MDA, name="lotNumber", text=LOT),
        XmlElement(namespace=MDA, name="itemExpirationDate", text="2028-06-30"),
    )
    cases = serials // _CASE_SIZE
    clock = 0

    def commissioning(clock: int, epc: str) -> ObjectEvent:
        return ObjectEvent(
            event_time=_at(clock),
            event_time_zone_offset="+00:00",
            epc_list=(epc,),
            action=Action.ADD,
            biz_step="commissioning",
            disposition="active",
            read_point=MANUFACTURER,
            biz_location=MANUFACTURER,
            ilmd=ilmd,
        )

    for n in range(serials):
        clock += 1
        yield commissioning(clock, _item(n))
    for case in range(cases):
        clock += 1
        children = tuple(_item(case * _CASE_SIZE + k) for k in range(_CASE_SIZE))
        yield commissioning(clock, _case(case))
        yield AggregationEvent(
            event_time=_at(clock + 1),
            event_time_zone_offset="+00:00",
            parent_id=_case(case),
            child_epcs=children,
            action=Action.ADD,
            biz_step="packing",
            disposition="in_progress",
            biz_location=MANUFACTURER,
        )
        clock += 1
    for case in range(cases):
        order = case * 5 // max(cases, 1)
        clock += 1
        yield _trade(clock, (_case(case),), "shipping", MANUFACTURER, WHOLESALER, order)
    clock += 3600
    for case in range(cases):
        order = case * 5 // max(cases, 1)
        clock += 1
        yield _trade(clock, (_case(case),), "receiving", MANUFACTURER, WHOLESALER, order)
        yield AggregationEvent(
            event_time=_at(clock + 1),
            event_time_zone_offset="+00:00",
            parent_id=_case(case),
            child_epcs=(),
            action=Action.DELETE,
            biz_step="unpacking",
            disposition="in_progress",
            biz_location=WHOLESALER,
        )
        clock += 1
    clock += 3600
    for n in range(serials):
        pharmacy = PHARMACIES[n % len(PHARMACIES)]
        clock += 1
        yield _trade(clock, (_item(n),), "shipping", WHOLESALER, pharmacy, 100 + n % 5)
    clock += 3600
    for n in range(serials):
        pharmacy = PHARMACIES[n % len(PHARMACIES)]
        clock += 1
        yield _trade(clock, (_item(n),), "receiving", WHOLESALER, pharmacy, 100 + n % 5)


def _element(element_id: str, **attributes: str) -> VocabularyElement:
    return VocabularyElement(
        id=element_id,
        attributes=tuple(
            VocabularyAttribute(id=f"{MDA}#{name}", value=value)
            for name, value in attributes.items()
        ),
    )


def _head() -> DocumentHead:
    products = (
        _element(
            "urn:epc:idpat:sgtin:030001.0012345.*",
            regulatedProductName="Benchmarkol",
            strengthDescription="50mg",
            dosageFormType="TABLET",
            additionalTradeItemIdentification="0001-0123-45",
            netContentDescription="30 tablets",
        ),
    )
    names = {MANUFACTURER: "Bench Pharma", WHOLESALER: "Bench Distributor"}
    names.update({p: f"Pharmacy {i}" for i, p in enumerate(PHARMACIES)})
    parties = tuple(
        _element(party, name=name, city="Albany", state="NY", countryCode="US")
        for party, name in names.items()
    )
    header = EPCISHeader(
        master_data=(
            Vocabulary(type="urn:epcglobal:epcis:vtype:EPCClass", vocabulary_element_list=products),
            Vocabulary(type="urn:epcglobal:epcis:vtype:Location", vocabulary_element_list=parties),
        ),
        gs1ushc=GS1USHealthcareHeader(
            dscsa_transaction_statement=DSCSATransactionStatement(affirm_transaction_statement=True)
        ),
    )
    return DocumentHead(
        format=DocumentFormat.XML_1_2,
        schema_version="1.2",
        creation_date=T0,
        header=header,
        namespaces={"cbvmda": MDA},
    )


async def _prepare(folder: Path, serials: int) -> int:
    """Generate, capture, project and ledger the lot; answer the number of events."""
    from epcis.jsonld_reader import event_from_jsonld
    from epcis.query import EventQuery
    from epcis.reading import ReadLimits
    from epcis.writing import write_document
    from service.capture import file_document, new_job, run_capture
    from service.dscsa_checks import on_events_committed

    document_path = folder / "lot.xml"
    head = _head()
    with document_path.open("wb") as out:
        write_document(head, lot_events(serials), out, DocumentFormat.XML_1_2)
    stores = await _open(folder)
    events, trace, ledger, ledger_store = stores
    try:
        from service.ledger_records import event_digest
        from service.store import PageRequest, Visibility

        limits = ReadLimits(max_bytes=1 << 30, max_events=10_000_000)
        job = await run_capture(
            events,
            file_document(document_path, 1 << 30),
            new_job("bench", "rollback"),
            limits=limits,
            source="bench",
        )
        assert job.success, job.errors
        assert job.document_id is not None
        document = await events.get_document(job.document_id)
        assert document is not None
        await ledger.append([("document", job.document_id, document.sha256)])
        token: str | None = None
        first = True
        count = 0
        while True:
            page = await events.query_events(
                EventQuery(), Visibility.everything(), PageRequest(per_page=2000, token=token)
            )
            pairs = [(r.hash_id, event_from_jsonld(json.loads(r.body), {})) for r in page.records]
            await on_events_committed(
                trace, pairs, header=head.header if first else None, document_id=job.document_id
            )
            await ledger.append([("event", r.hash_id, event_digest(r.body)) for r in page.records])
            count += len(page.records)
            first = False
            token = page.next_token
            if token is None:
                return count
    finally:
        await ledger_store.close()
        await trace.close()
        await events.close()


async def _open(folder: Path) -> tuple[Any, Any, Any, Any]:
    from service.ledger import Ledger
    from service.sqlite_ledger_store import SQLiteLedgerStore
    from service.sqlite_store import SQLiteEventStore
    from service.sqlite_traceability_store import SQLiteTraceabilityStore

    events = SQLiteEventStore(folder / "events.sqlite3", data_dir=folder / "data")
    await events.open()
    trace = SQLiteTraceabilityStore(folder / "trace.sqlite3")
    await trace.open()
    ledger_store = SQLiteLedgerStore(folder / "events.sqlite3")
    await ledger_store.open()
    ledger = Ledger(ledger_store)
    await ledger.load()
    return events, trace, ledger, ledger_store


async def _export(folder: Path) -> dict[str, Any]:
    from service.export_bundle import BundleSources, build_bundle
    from service.exports import ExportScope, ScopeKind, new_request
    from service.keys import KeyRing

    keyring = KeyRing(folder / "keys", b"bench passphrase")
    if not keyring.key_infos():
        keyring.generate()
    events, trace, ledger, ledger_store = await _open(folder)
    try:
        request = new_request(
            scope=ExportScope(ScopeKind.LOT, gtin=GTIN, lot=LOT),
            requester_kind="fda",
            requester="FDA",
            reason="bench",
            created_by="bench",
        )
        started = time.perf_counter()
        result = await build_bundle(
            request, BundleSources(events, trace, ledger, keyring), folder / "bundle.zip"
        )
        seconds = time.perf_counter() - started
    finally:
        await ledger_store.close()
        await trace.close()
        await events.close()
    return {
        "seconds": round(seconds, 2),
        "bundle_mb": round(result.size / 1e6, 1),
        **result.summary,
    }


def _verify(folder: Path) -> dict[str, Any]:
    from service.export_verification import verify_bundle

    started = time.perf_counter()
    report = verify_bundle(folder / "bundle.zip")
    return {"seconds": round(time.perf_counter() - started, 2), "ok": report.ok}


def _sign(folder: Path, megabytes: int) -> dict[str, Any]:
    """Peak RSS of signxml signing an EPCIS document of about ``megabytes`` MB."""
    from service.export_bundle import DS_NS
    from service.export_bundle import _sign_xml_file as sign
    from service.exports import ExportScope, ScopeKind, new_request

    path = folder / "sign.xml"
    with path.open("wb") as out:
        out.write(b'<?xml version="1.0" encoding="UTF-8"?><e:EPCISDocument xmlns:e="urn:x">')
        out.write(f'<EPCISHeader><ds:Signature xmlns:ds="{DS_NS}" Id="placeholder"/>'.encode())
        out.write(b"</EPCISHeader><EventList>")
        chunk = b"<ObjectEvent><eventTime>2026-03-02T08:00:00Z</eventTime>" + b"<epc>x</epc>" * 40
        chunk += b"</ObjectEvent>"
        for _ in range(megabytes * 1_000_000 // len(chunk)):
            out.write(chunk)
        out.write(b"</EventList></e:EPCISDocument>")
    request = new_request(
        scope=ExportScope(ScopeKind.LOT, gtin=GTIN, lot=LOT),
        requester_kind="fda",
        requester="FDA",
        reason="bench",
        created_by="bench",
    )
    started = time.perf_counter()
    signed = sign(path, request, datetime.now(UTC), 1 << 40)
    return {"seconds": round(time.perf_counter() - started, 2), "signed": signed["present"]}


def _child(command: str, folder: Path, argument: int = 0) -> dict[str, Any]:
    """Run one measured step in a fresh interpreter; add its peak RSS."""
    code = (
        "import json, sys, asyncio, resource; from pathlib import Path; import bench.exports as b;"
        f"c, f, a = {command!r}, Path({str(folder)!r}), {argument};"
        "r = asyncio.run(b._export(f)) if c == 'export' else "
        "(b._verify(f) if c == 'verify' else "
        "asyncio.run(b._ledger_verify(f, b._query_store_events(a))) if c == 'ledger-verify' "
        "else b._sign(f, a));"
        "r['peak_rss_mb'] = round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1);"
        "print(json.dumps(r))"
    )
    root = Path(__file__).resolve().parents[1]
    done = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True, cwd=root
    )
    result: dict[str, Any] = json.loads(done.stdout.strip().splitlines()[-1])
    return result


# --- ledger ---------------------------------------------------------------------------------

OUT = Path(__file__).resolve().parent / "out"
_APPEND_BATCH = 1000


def _query_store_events(count: int) -> Path | None:
    """The events file of bench.query_store's cached store of ``count`` events, if built."""
    path = OUT / f"query-store-{count}" / "events.sqlite3"
    return path if (OUT / f"query-store-{count}" / "stamp").exists() and path.exists() else None


def _stored_digests(events: Path) -> Iterator[tuple[str, str, str]]:
    """(kind, hash ID, digest) of every stored event, read-only, in insertion order."""
    import hashlib
    import sqlite3

    db = sqlite3.connect(f"file:{events}?mode=ro", uri=True)
    try:
        for hash_id, body in db.execute("SELECT hash_id, body FROM events ORDER BY rowid"):
            yield "event", hash_id, hashlib.sha256(body).hexdigest()
    finally:
        db.close()


async def _append(
    path: Path, records: Iterator[tuple[str, str, str]], batch_size: int = _APPEND_BATCH
) -> tuple[int, float, float]:
    """Append through ``Ledger.append`` in batches; answer (leaves, wall s, CPU s) of the calls.

    CPU time is the whole process's (the store's thread included) while the calls run.
    """
    from service.ledger import Ledger
    from service.sqlite_ledger_store import SQLiteLedgerStore

    store = SQLiteLedgerStore(path)
    await store.open()
    try:
        ledger = Ledger(store)
        await ledger.load()
        count, spent, cpu = 0, 0.0, 0.0
        batch: list[tuple[str, str, str]] = []
        for record in records:
            batch.append(record)
            if len(batch) == batch_size:
                spent, cpu = await _timed_append(ledger, batch, spent, cpu)
                count, batch = count + len(batch), []
        if batch:
            spent, cpu = await _timed_append(ledger, batch, spent, cpu)
            count += len(batch)
        return count, spent, cpu
    finally:
        await store.close()


async def _timed_append(
    ledger: Any, batch: list[tuple[str, str, str]], spent: float, cpu: float
) -> tuple[float, float]:
    started, used = time.perf_counter(), time.process_time()
    await ledger.append(batch)
    return spent + time.perf_counter() - started, cpu + time.process_time() - used


def _ledger_build(folder: Path, events: Path) -> dict[str, Any]:
    """The cached ledger over every event of the query store, with one signed checkpoint."""
    done = folder / "done"
    stamp = f"{events.resolve()} {events.stat().st_size}"
    if done.exists() and done.read_text() == stamp:
        return {"cached": True}
    shutil.rmtree(folder, ignore_errors=True)
    folder.mkdir(parents=True)
    built = asyncio.run(_ledger_fill(folder, events))
    done.write_text(stamp)
    return built


async def _ledger_fill(folder: Path, events: Path) -> dict[str, Any]:
    from service.keys import KeyRing
    from service.ledger import Ledger
    from service.sqlite_ledger_store import SQLiteLedgerStore

    count, spent, _ = await _append(folder / "ledger.sqlite3", _stored_digests(events))
    keyring = KeyRing(folder / "keys", b"bench passphrase")
    keyring.generate()
    store = SQLiteLedgerStore(folder / "ledger.sqlite3")
    await store.open()
    try:
        ledger = Ledger(store)
        await ledger.load()
        await ledger.checkpoint(keyring)
    finally:
        await store.close()
    return {"cached": False, "leaves": count, "append_seconds": round(spent, 1)}


def _ledger_appends(leaves: int, batch_size: int) -> dict[str, Any]:
    """Appends of ``leaves`` synthetic records to a fresh ledger, ``batch_size`` per call.

    Each call is one SQLite transaction (synchronous=FULL: one fsync), so the wall rate on a
    shared disk says more about the disk than the code; CPU per leaf is the code's cost.
    """
    import hashlib

    records = (
        ("event", f"ni:///sha-256;{n:064x}?ver=CBV2.0", hashlib.sha256(b"%d" % n).hexdigest())
        for n in range(leaves)
    )
    with tempfile.TemporaryDirectory(prefix="bench-ledger-") as name:
        count, spent, cpu = asyncio.run(_append(Path(name) / "ledger.sqlite3", records, batch_size))
    return {
        "leaves": count,
        "batch": batch_size,
        "seconds": round(spent, 2),
        "leaves_per_second": round(count / spent),
        "cpu_us_per_leaf": round(cpu / count * 1e6, 1),
        "leaves_per_cpu_second": round(count / cpu),
    }


def _link(folder: Path, events: Path) -> Path:
    link = folder / "events.sqlite3"
    link.symlink_to(events.resolve())
    return link


async def _ledger_verify(folder: Path, events: Path) -> dict[str, Any]:
    """``dscsa ledger verify``'s work (service.commands.ledger.verify) on the cached ledger."""
    from service.commands.ledger import AuditRecordDigests, public_keys
    from service.ledger_verification import verify_ledger
    from service.sqlite_ledger_store import SQLiteLedgerStore
    from service.sqlite_store import SQLiteEventStore

    with tempfile.TemporaryDirectory(prefix="bench-ledger-") as name:
        # The events file is only read; the store's side files go to the temporary folder.
        link = await asyncio.to_thread(_link, Path(name), events)
        store = SQLiteEventStore(link, Path(name) / "data")
        await store.open()
        ledger_store = SQLiteLedgerStore(folder / "ledger.sqlite3")
        await ledger_store.open()
        try:
            keys = public_keys(folder / "keys")
            cpu, started = time.process_time(), time.perf_counter()
            report = await verify_ledger(ledger_store, AuditRecordDigests(store), keys.get)
            seconds = time.perf_counter() - started
            cpu = time.process_time() - cpu
        finally:
            await ledger_store.close()
            await store.close()
    return {
        "leaves": report.leaves,
        "checkpoints": report.checkpoints,
        "ok": report.ok,
        "findings": len(report.findings),
        "seconds": round(seconds, 2),
        "cpu_seconds": round(cpu, 2),
    }


def run_ledger(quick: bool = False) -> dict[str, Any]:
    """Ledger appends and ``dscsa ledger verify`` over the cached query store's events."""
    size = 30_000 if quick else 1_000_000
    leaves = 20_000 if quick else 1_000_000
    appends = [_ledger_appends(leaves, 1_000), _ledger_appends(leaves, 10_000)]
    events = _query_store_events(size)
    if events is None:
        return {
            "appends": appends,
            "verify": f"skipped: no bench/out/query-store-{size} (python -m bench.query_store)",
        }
    folder = OUT / f"ledger-{size}"
    built = _ledger_build(folder, events)
    verify = _child("ledger-verify", folder, size)
    return {
        "appends": appends,
        "ledger_cache": built,
        "verify": verify,
        "targets": {"append_leaves_per_second": 50_000, "verify_seconds_1m": 60},
    }


def run(quick: bool = False) -> dict[str, Any]:
    serials = 500 if quick else 10_000
    with tempfile.TemporaryDirectory(prefix="bench-exports-") as name:
        folder = Path(name)
        started = time.perf_counter()
        events = asyncio.run(_prepare(folder, serials))
        prepared = time.perf_counter() - started
        export = _child("export", folder)
        verify = _child("verify", folder)
        sign = _child("sign", folder, 2 if quick else 4)
    return {
        "serials": serials,
        "events": events,
        "setup_seconds": round(prepared, 1),
        "export": export,
        "verify": verify,
        "xml_sign_rss_probe_mb": 2 if quick else 4,
        "xml_sign": sign,
        "targets": {"export_seconds": 15, "export_peak_rss_mb": 500, "verify_seconds": 5},
        "ledger": run_ledger(quick),
        "parent_peak_rss_mb": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1),
    }


main = run

if __name__ == "__main__":
    if "--ledger" in sys.argv:
        print(json.dumps(run_ledger(quick="--quick" in sys.argv), indent=2))
    else:
        print(json.dumps(run(quick="--quick" in sys.argv), indent=2))
