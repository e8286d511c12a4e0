"""``dscsa export ... -o FILE.zip`` and ``dscsa verify-export FILE.zip [--public-key PEM]``."""

from __future__ import annotations

import argparse
import asyncio
import shutil
import sys
import tempfile
from pathlib import Path
from typing import Any

from epcis.errors import EPCISError
from service.exports import (
    ExportRequest,
    ExportRequestError,
    ExportScope,
    ExportStatus,
    RequesterKind,
    ScopeKind,
    new_request,
    parse_moment,
)
from service.settings import Settings, SettingsError

__all__ = ["register", "run_export_command", "run_verify_export", "scope_from_args"]

CLI_USER = "local-cli"


def register(subparsers: Any) -> None:
    export = subparsers.add_parser(
        "export",
        help="build a signed export bundle for a regulator or trading partner",
        description="Writes a zip with epcis.xml (EPCIS 1.2, GS1 US header, XML-signed when "
        "small enough), events.jsonld, transactions.csv, report.html, manifest.json and "
        "manifest.sig. Give exactly one scope. Dates are ISO 8601; --to is exclusive (a date "
        "alone means up to the end of that day).",
    )
    scope = export.add_mutually_exclusive_group(required=True)
    scope.add_argument("--serial", nargs="+", metavar="ID", help="serials (SGTIN/SSCC)")
    scope.add_argument("--lot", nargs=2, metavar=("GTIN", "LOT"), help="a lot of a GTIN")
    scope.add_argument("--gtin", metavar="GTIN", help="a GTIN, with --from and --to")
    scope.add_argument("--partner", metavar="GLN", help="a trading partner, with --from/--to")
    export.add_argument("--from", dest="date_from", metavar="DATE")
    export.add_argument("--to", dest="date_to", metavar="DATE")
    export.add_argument("--requester", default="local request", metavar="TEXT")
    export.add_argument(
        "--requester-kind",
        choices=[k.value for k in RequesterKind],
        default=RequesterKind.FDA.value,
    )
    export.add_argument("--reason", default="DSCSA tracing request", metavar="TEXT")
    export.add_argument("--incident", metavar="NUMBER", help="Form FDA 3911 incident number")
    export.add_argument("--due", metavar="TIME", help="due time (default: one business day)")
    export.add_argument("-o", "--output", required=True, type=Path, metavar="FILE.zip")
    export.set_defaults(handler=run_export_command)
    verify = subparsers.add_parser(
        "verify-export",
        help="check an export bundle offline",
        description="Checks the manifest signature, every file hash, the ledger checkpoint "
        "and every inclusion proof, and the XML signature. Needs no service or store. "
        "Exit status 1 when anything is wrong.",
    )
    verify.add_argument("bundle", type=Path, metavar="FILE.zip")
    verify.add_argument(
        "--public-key", type=Path, metavar="PEM", help="trust this key, not the bundled one"
    )
    verify.set_defaults(handler=run_verify_export)


def scope_from_args(args: argparse.Namespace) -> ExportScope:
    date_from = parse_moment(args.date_from) if args.date_from else None
    date_to = parse_moment(args.date_to, end_of_day=True) if args.date_to else None
    if args.serial:
        return ExportScope(ScopeKind.SERIALS, serials=tuple(args.serial))
    if args.lot:
        return ExportScope(ScopeKind.LOT, gtin=args.lot[0], lot=args.lot[1])
    if args.gtin:
        return ExportScope(ScopeKind.GTIN, gtin=args.gtin, date_from=date_from, date_to=date_to)
    return ExportScope(
        ScopeKind.PARTNER, partner_gln=args.partner, date_from=date_from, date_to=date_to
    )


def run_export_command(args: argparse.Namespace) -> int:
    try:
        settings = Settings.from_environ()
        request = new_request(
            scope=scope_from_args(args),
            requester_kind=args.requester_kind,
            requester=args.requester,
            reason=args.reason,
            incident_number=args.incident,
            due_at=parse_moment(args.due) if args.due else None,
            created_by=CLI_USER,
        )
    except (SettingsError, ExportRequestError) as error:
        print(f"dscsa export: {error}", file=sys.stderr)
        return 2
    try:
        finished = asyncio.run(_export(settings, request, args.output))
    except EPCISError as error:
        print(f"dscsa export: {error}", file=sys.stderr)
        return 1
    if finished.status is not ExportStatus.READY:
        print(f"dscsa export: failed: {finished.error}", file=sys.stderr)
        return 1
    summary = finished.summary
    print(
        f"{args.output}: {summary.get('identifiers')} identifiers, {summary.get('events')} "
        f"events, {summary.get('transactions')} transaction rows; "
        f"{'XML-signed' if summary.get('xml_signed') else 'not XML-signed (too large)'}; "
        f"SHA-256 {finished.bundle_sha256}; due {finished.due_at.isoformat()}"
    )
    for name, label in (("ledger_missing", "without"), ("ledger_mismatched", "altered since")):
        if summary.get(name):
            print(f"warning: {summary[name]} record(s) {label} a ledger leaf", file=sys.stderr)
    return 0


async def _export(settings: Settings, request: ExportRequest, output: Path) -> ExportRequest:
    from service.export_jobs import open_bundle_sources, run_export
    from service.export_store import open_export_store

    store = open_export_store(settings)
    await store.open()
    try:
        async with open_bundle_sources(settings) as sources:
            work = Path(tempfile.mkdtemp(prefix="dscsa-export-"))
            try:
                finished = await run_export(request, sources, store, work)
            finally:
                shutil.rmtree(work, ignore_errors=True)
        if finished.status is ExportStatus.READY:
            output.parent.mkdir(parents=True, exist_ok=True)
            with output.open("wb") as out:
                async for chunk in store.open_bundle(request.export_id):
                    out.write(chunk)
        return finished
    finally:
        await store.close()


def run_verify_export(args: argparse.Namespace) -> int:
    from service.export_verification import verify_bundle

    if not args.bundle.is_file():
        print(f"dscsa verify-export: no file {args.bundle}", file=sys.stderr)
        return 2
    pinned = None
    if args.public_key is not None:
        try:
            pinned = args.public_key.read_bytes()
        except OSError as error:
            print(f"dscsa verify-export: {error}", file=sys.stderr)
            return 2
    report = verify_bundle(args.bundle, pinned)
    print(f"key: {report.key_source or 'none usable'}")
    for check in report.checks:
        print(f"{'OK  ' if check.ok else 'FAIL'} {check.name}: {check.detail}")
    if report.ok:
        print(f"{args.bundle}: the bundle is intact")
        return 0
    print(f"{args.bundle}: {len(report.failures())} check(s) failed", file=sys.stderr)
    return 1
