"""``dscsa verify SCAN [--json]`` and ``dscsa return SCAN --from GLN [--json]``.

Our own GTINs (DSCSA_COMPANY_PREFIXES) are decided from the local traceability store; others
go to their responder through the lookup directory. Exit status: 0 verified (or restocked),
1 not verified (or quarantined, or rejected), 2 the command could not run.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
import time
from collections.abc import AsyncIterator, Sequence
from contextlib import AsyncExitStack, asynccontextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import aiohttp

from epcis.errors import EPCISError
from service.app import open_store
from service.audit import open_ledger_store
from service.audit_records import LeafQueue, LedgeredVerificationLog
from service.commands.opened_stores import opened
from service.lookup_directory import FileLookupDirectory
from service.returns import ReturnOutcome, ReturnProcessor, local_log_entry, request_from_scan
from service.settings import Settings, SettingsError
from service.store import EventStore
from service.traceability_store import TraceabilityStore, open_traceability_store
from service.verification_log import VerificationLog, open_verification_log
from service.verification_responder import LocalResponder, VerificationSettings
from verification.messages import VerificationResponse
from verification.requestor import Requestor, RequestorConfig

__all__ = ["register", "run_return", "run_verify"]

CLI_USER = "cli"


def register(subparsers: Any) -> None:
    verify = subparsers.add_parser(
        "verify",
        help="verify a product identifier (GS1 LMVS)",
        description="SCAN is GS1 barcode data (FNC1/GS separated or parenthesised) or a "
        "GS1 Digital Link with GTIN, serial, lot and expiry.",
    )
    verify.add_argument("scan", metavar="SCAN")
    verify.add_argument("--json", action="store_true", help="print the response as JSON")
    verify.set_defaults(handler=run_verify)
    back = subparsers.add_parser(
        "return",
        help="take back a saleable return: check our shipment, verify, restock or quarantine",
    )
    back.add_argument("scan", metavar="SCAN")
    back.add_argument("--from", dest="returned_by", required=True, metavar="GLN")
    back.add_argument("--json", action="store_true", help="print the outcome as JSON")
    back.set_defaults(handler=run_return)


@dataclass(slots=True)
class _Context:
    settings: Settings
    gln: str
    events: EventStore
    traceability: TraceabilityStore
    log: VerificationLog
    local: LocalResponder
    requestor: Requestor


@asynccontextmanager
async def _opened(settings: Settings, vrs: VerificationSettings) -> AsyncIterator[_Context]:
    gln = vrs.gln(settings)
    async with AsyncExitStack() as stack:
        traceability = await opened(stack, open_traceability_store(settings))
        events = await opened(stack, open_store(settings))
        ledger_store = await opened(stack, open_ledger_store(settings, events))

        async def ledger_append(leaves: Sequence[tuple[str, str, str]]) -> object:
            # Straight to the ledger store: a one-shot command needs no tree in memory, and a
            # running server's ledger takes these leaves in when it next appends or proves.
            return await ledger_store.append(leaves, datetime.now(UTC))

        log: VerificationLog = await opened(
            stack,
            LedgeredVerificationLog(open_verification_log(settings), LeafQueue(ledger_append)),
        )
        directory = FileLookupDirectory(vrs.directory_path(settings))
        directory.load()
        session = await stack.enter_async_context(aiohttp.ClientSession())
        config = RequestorConfig(
            req_gln=gln,
            timeout=vrs.timeout,
            retries=vrs.retries,
            breaker_threshold=vrs.breaker_threshold,
            breaker_reset=vrs.breaker_reset,
        )
        yield _Context(
            settings,
            gln,
            events,
            traceability,
            log,
            LocalResponder(traceability, settings.company_prefixes, gln),
            Requestor(session, directory, log, config),
        )


def _configuration(command: str) -> tuple[Settings, VerificationSettings] | None:
    try:
        return Settings.from_environ(), VerificationSettings.from_environ()
    except SettingsError as error:
        print(f"dscsa {command}: {error}", file=sys.stderr)
        return None


async def _verify(settings: Settings, vrs: VerificationSettings, scan: str) -> VerificationResponse:
    async with _opened(settings, vrs) as context:
        request = request_from_scan(scan, context.gln)
        if not context.local.owns(request.gtin):
            return await context.requestor.verify(request)
        started = time.perf_counter()
        response = await context.local.verify(request)
        await context.log.append(local_log_entry(request, response, started, CLI_USER))
        return response


def run_verify(args: argparse.Namespace) -> int:
    configuration = _configuration("verify")
    if configuration is None:
        return 2
    try:
        response = asyncio.run(_verify(*configuration, args.scan))
    except (EPCISError, SettingsError) as error:
        print(f"dscsa verify: {error}", file=sys.stderr)
        return 2
    if args.json:
        print(json.dumps(response.to_json(), indent=2))
    else:
        data = response.data
        words = ["verified" if data.verified else "NOT verified"]
        words += [str(v) for v in (data.verification_failure_reason, data.additional_info) if v]
        print(f"{' '.join(words)}  (responder {response.responder_gln}, {response.corr_uuid})")
    return 0 if response.data.verified else 1


async def _return(
    settings: Settings, vrs: VerificationSettings, scan: str, returned_by: str
) -> ReturnOutcome:
    async with _opened(settings, vrs) as context:
        processor = ReturnProcessor(
            context.events,
            context.traceability,
            context.local,
            context.log,
            our_gln=context.gln,
            spool_dir=settings.spool_dir,
            remote=context.requestor,
        )
        return await processor.process(scan, returned_by, CLI_USER)


def run_return(args: argparse.Namespace) -> int:
    configuration = _configuration("return")
    if configuration is None:
        return 2
    try:
        outcome = asyncio.run(_return(*configuration, args.scan, args.returned_by))
    except (EPCISError, SettingsError) as error:
        print(f"dscsa return: {error}", file=sys.stderr)
        return 2
    if args.json:
        print(json.dumps(outcome.to_json(), indent=2))
    else:
        print(f"{outcome.disposition}: {outcome.detail}")
    return 0 if outcome.disposition == "restocked" else 1
