"""``dscsa shipment-document EVENT_ID -o FILE``: the DSCSA EPCIS 1.2 document for one shipment."""

from __future__ import annotations

import argparse
import asyncio
import sys
from pathlib import Path
from typing import Any

from epcis.errors import EPCISError
from service.settings import Settings, SettingsError
from service.shipment_documents import build_shipment_document, shipment_document_bytes
from service.traceability_store import open_traceability_store

__all__ = ["register", "run_shipment_document"]


def register(subparsers: Any) -> None:
    parser = subparsers.add_parser(
        "shipment-document",
        help="write the DSCSA EPCIS 1.2 document a buyer must receive for one shipping event",
        description="EVENT_ID is the eventID or event hash of one of our shipping events. "
        "The document carries the SBDH, master data, transaction statement, the commissioning "
        "and packing events of exactly the shipped serials, and the shipping event. Exit "
        "status 1 when the event is unknown, not a shipment, or data the buyer needs is missing.",
    )
    parser.add_argument("event_id", metavar="EVENT_ID")
    parser.add_argument(
        "-o", "--output", type=Path, required=True, metavar="FILE", help="'-' for stdout"
    )
    parser.set_defaults(handler=run_shipment_document)


def run_shipment_document(args: argparse.Namespace) -> int:
    try:
        settings = Settings.from_environ()
    except SettingsError as error:
        print(f"dscsa shipment-document: {error}", file=sys.stderr)
        return 2
    try:
        data = asyncio.run(_document(settings, args.event_id))
    except EPCISError as error:
        print(f"dscsa shipment-document: {error}", file=sys.stderr)
        for problem in error.problems[:20]:
            if str(problem) != str(error):
                print(f"  {problem}", file=sys.stderr)
        return 1
    if str(args.output) == "-":
        sys.stdout.buffer.write(data)
    else:
        args.output.write_bytes(data)
    return 0


async def _document(settings: Settings, event_id: str) -> bytes:
    from service.app import open_store

    events = open_store(settings)
    traceability = open_traceability_store(settings)
    await events.open()
    await traceability.open()
    try:
        shipment = await build_shipment_document(events, traceability, event_id)
        return shipment_document_bytes(shipment)
    finally:
        await traceability.close()
        await events.close()
