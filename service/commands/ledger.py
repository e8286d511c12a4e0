"""``dscsa ledger verify|checkpoint``: check the audit ledger against the stored records."""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
from collections.abc import AsyncIterator, Mapping, Sequence
from contextlib import AsyncExitStack, asynccontextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

from service.app import open_store
from service.audit import open_keyring, open_ledger_store
from service.audit_records import TraceabilityRecordDigests, VerificationRecordDigests
from service.commands.opened_stores import opened
from service.keys import key_id_of, load_public_key
from service.ledger import Ledger, LedgerStore
from service.ledger_records import StoreRecordDigests, event_digest
from service.ledger_verification import LedgerReport, RecordDigests, verify_ledger
from service.settings import Settings, SettingsError
from service.store import EventStore
from service.traceability_store import TraceabilityStore, open_traceability_store
from service.verification_log import VerificationLog, open_verification_log

__all__ = [
    "AuditRecordDigests",
    "public_keys",
    "register",
    "run_checkpoint",
    "run_verify",
    "verify",
]


def register(subparsers: Any) -> None:
    parser = subparsers.add_parser(
        "ledger",
        help="verify the audit ledger or sign a checkpoint",
        description="The audit ledger holds a leaf for every captured document and event.",
    )
    commands = parser.add_subparsers(dest="ledger_command", required=True, metavar="COMMAND")
    verify = commands.add_parser(
        "verify",
        help="recompute every leaf from the stored records and check every checkpoint",
        description="Exit status 1 when a record was changed or deleted, a leaf is missing, "
        "or a signed checkpoint no longer matches (signatures are checked with every key "
        "of the key ring, retired ones included).",
    )
    verify.add_argument("--json", action="store_true", help="print the report as JSON")
    verify.set_defaults(handler=run_verify)
    checkpoint = commands.add_parser(
        "checkpoint",
        help="sign the current tree head now",
        description="The service signs one every DSCSA_CHECKPOINT_INTERVAL seconds anyway.",
    )
    checkpoint.set_defaults(handler=run_checkpoint)


def _settings(command: str) -> Settings | None:
    try:
        return Settings.from_environ()
    except SettingsError as error:
        print(f"dscsa ledger {command}: {error}", file=sys.stderr)
        return None


class AuditRecordDigests(StoreRecordDigests):
    """Record digests with events read in bulk, and retention purges accounted for.

    A record the retention job purged is gone on purpose; its purge log line names it with
    the digest its leaf holds, and such a record is not reported as deleted.
    """

    def __init__(
        self,
        store: EventStore,
        purge_log: Path | None = None,
        traceability: TraceabilityStore | None = None,
        verifications: VerificationLog | None = None,
    ) -> None:
        extra: dict[str, RecordDigests] = {}
        if traceability is not None:
            records = TraceabilityRecordDigests(traceability)
            extra |= {"exception_resolution": records, "recall": records}
        if verifications is not None:
            extra["verification"] = VerificationRecordDigests(verifications)
        super().__init__(store, extra)
        self._events_store = store
        self._purged = _purged(purge_log) if purge_log is not None else {}

    async def digests(self, kind: str, record_ids: Sequence[str]) -> Mapping[str, str]:
        if kind == "event":
            bodies = await self._events_store.event_bodies(record_ids)
            found = {hash_id: event_digest(body) for hash_id, body in bodies.items()}
        else:
            found = dict(await super().digests(kind, record_ids))
        for record_id in record_ids:
            if record_id not in found and (kind, record_id) in self._purged:
                found[record_id] = self._purged[(kind, record_id)]
        return found


def _purged(path: Path) -> dict[tuple[str, str], str]:
    if not path.exists():
        return {}
    purged = {}
    with path.open(encoding="utf-8") as lines:
        for line in lines:
            if line.strip():
                entry = json.loads(line)
                purged[(entry["kind"], entry["record_id"])] = entry["digest"]
    return purged


def public_keys(folder: Path) -> dict[str, Ed25519PublicKey]:
    """Every public key in the key folder by key ID, retired ones included; no passphrase."""
    keys = {}
    for path in sorted(folder.glob("*.pub.pem")):
        key = load_public_key(path.read_bytes())
        # A key file renamed to another ID proves nothing: the ID is the key's fingerprint.
        if key_id_of(key) == path.name.removesuffix(".pub.pem"):
            keys[key_id_of(key)] = key
    return keys


@dataclass(frozen=True, slots=True)
class _Stores:
    events: EventStore
    ledger: LedgerStore
    traceability: TraceabilityStore
    verifications: VerificationLog


@asynccontextmanager
async def _stores(settings: Settings) -> AsyncIterator[_Stores]:
    async with AsyncExitStack() as stack:
        events = await opened(stack, open_store(settings))
        ledger_store = await opened(stack, open_ledger_store(settings, events))
        traceability = await opened(stack, open_traceability_store(settings))
        verifications = await opened(stack, open_verification_log(settings))
        yield _Stores(events, ledger_store, traceability, verifications)


async def verify(settings: Settings) -> LedgerReport:
    keys = public_keys(settings.data_dir / "keys")
    async with _stores(settings) as stores:
        purge_log = settings.data_dir / "retention" / "purged.jsonl"
        records = AuditRecordDigests(
            stores.events, purge_log, stores.traceability, stores.verifications
        )
        return await verify_ledger(stores.ledger, records, keys.get)


def run_verify(args: argparse.Namespace) -> int:
    settings = _settings("verify")
    if settings is None:
        return 2
    report = asyncio.run(verify(settings))
    if args.json:
        body = {
            "ok": report.ok,
            "leaves": report.leaves,
            "checkpoints": report.checkpoints,
            "findings": [
                {"problem": f.problem, "detail": f.detail, "leafIndex": f.leaf_index}
                for f in report.findings
            ],
        }
        print(json.dumps(body, indent=2))
    else:
        verdict = "OK" if report.ok else f"{len(report.findings)} problem(s)"
        print(f"ledger: {report.leaves} leaves, {report.checkpoints} checkpoints: {verdict}")
        for finding in report.findings:
            where = f" (leaf {finding.leaf_index})" if finding.leaf_index is not None else ""
            print(f"  {finding.problem}: {finding.detail}{where}")
    return 0 if report.ok else 1


async def _checkpoint(settings: Settings) -> tuple[int, str, str]:
    async with _stores(settings) as stores:
        ledger_store = stores.ledger
        ledger = Ledger(ledger_store)
        await ledger.load()
        checkpoint = await ledger.checkpoint(open_keyring(settings.data_dir))
        return checkpoint.size, checkpoint.root, checkpoint.key_id


def run_checkpoint(args: argparse.Namespace) -> int:
    settings = _settings("checkpoint")
    if settings is None:
        return 2
    size, root, key_id = asyncio.run(_checkpoint(settings))
    print(f"checkpoint: {size} leaves, root {root}, signed with key {key_id}")
    return 0
