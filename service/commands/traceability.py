"""``dscsa trace IDENTIFIER [--json]`` and ``dscsa rebuild``: traceability from the command line."""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
from collections.abc import AsyncIterator
from typing import Any

from epcis.errors import EPCISError
from service.containment import EventFacts
from service.serial_state import SerialStateProjection
from service.settings import Settings, SettingsError
from service.trace import Trace, trace
from service.traceability_store import open_traceability_store

__all__ = ["register", "run_rebuild", "run_trace"]


def register(subparsers: Any) -> None:
    tracer = subparsers.add_parser(
        "trace",
        help="chain of custody of one package",
        description="IDENTIFIER is an SGTIN or SSCC URN, a GS1 Digital Link or scanned "
        "barcode data. Exit status 1 when no event names it.",
    )
    tracer.add_argument("identifier", metavar="IDENTIFIER")
    tracer.add_argument("--json", action="store_true", help="print the trace as JSON")
    tracer.set_defaults(handler=run_trace)
    rebuild = subparsers.add_parser(
        "rebuild",
        help="recompute serial state from every stored event",
        description="Reads every event of the event store and recomputes containment and "
        "serial state; exceptions, recalls and master data are kept.",
    )
    rebuild.set_defaults(handler=run_rebuild)


def _settings(command: str) -> Settings | None:
    try:
        return Settings.from_environ()
    except SettingsError as error:
        print(f"dscsa {command}: {error}", file=sys.stderr)
        return None


def run_trace(args: argparse.Namespace) -> int:
    settings = _settings("trace")
    if settings is None:
        return 2
    try:
        result = asyncio.run(_trace(settings, args.identifier))
    except EPCISError as error:
        print(f"dscsa trace: {error}", file=sys.stderr)
        return 1
    if args.json:
        print(json.dumps(result.to_json(), indent=2))
    else:
        print(format_trace(result))
    return 0


async def _trace(settings: Settings, identifier: str) -> Trace:
    store = open_traceability_store(settings)
    await store.open()
    try:
        return await trace(store, identifier)
    finally:
        await store.close()


def format_trace(result: Trace) -> str:
    """A plain-text chain of custody, one event per line, transfers indented below."""
    state = result.state
    lines = [
        f"{result.identifier}  status {result.status}",
        f"  GTIN {state.gtin}  lot {state.lot}  expiry {state.expiry}",
        f"  owner {state.owner}  custodian {state.custodian}  location {state.location}",
        f"  in {state.parent or '-'}  top {state.top_container or '-'}",
        "",
    ]
    for event in result.events:
        how = f"via {' > '.join(event.via)}" if event.inferred else "direct"
        lines.append(
            f"{event.event_time.isoformat()}  {event.biz_step or event.event_type:<16} {how}"
        )
    for change in result.ownership_changes:
        seller = change.seller.name or change.seller.id if change.seller else "?"
        buyer = change.buyer.name or change.buyer.id if change.buyer else "?"
        lines.append(
            f"  transfer {change.shipment_date.date()}: {seller} -> {buyer}  "
            f"PO {', '.join(change.purchase_orders) or '-'}"
        )
    if result.holds:
        lines.append(f"held: {', '.join(result.holds)}")
    for recall in result.recalls:
        scope = f"lot {recall.gtin} {recall.lot}" if recall.scope == "lot" else "listed serials"
        lines.append(
            f"recalled {recall.created_at.isoformat()} by {recall.created_by or '-'} "
            f"({scope}): {recall.reason or 'no reason given'}"
        )
    return "\n".join(lines)


def run_rebuild(args: argparse.Namespace) -> int:
    settings = _settings("rebuild")
    if settings is None:
        return 2
    count = asyncio.run(_rebuild(settings))
    print(f"serial state recomputed for {count} identifiers")
    return 0


async def _rebuild(settings: Settings) -> int:
    from service.app import open_store

    events = open_store(settings)
    store = open_traceability_store(settings)
    await events.open()
    await store.open()
    try:
        named = await store.pending_projections()
        facts = [f async for f in stored_facts(events)]
        count = await SerialStateProjection(store).rebuild(facts)
        # Every stored event is projected now: what the journal named before is covered.
        await store.clear_pending_projections([document_id for document_id, _ in named])
        return count
    finally:
        await store.close()
        await events.close()


async def stored_facts(events: Any, per_page: int = 1000) -> AsyncIterator[EventFacts]:
    """Every event of the event store as facts, page by page in capture order."""
    from epcis.jsonld_reader import event_from_jsonld
    from epcis.query import EventQuery
    from service.store import PageRequest, Visibility

    token: str | None = None
    while True:
        page = await events.query_events(
            EventQuery(), Visibility.everything(), PageRequest(per_page=per_page, token=token)
        )
        for record in page.records:
            event = event_from_jsonld(json.loads(record.body), {})
            yield EventFacts.from_event(event, record.hash_id, record.document_id)
        token = page.next_token
        if token is None:
            return
