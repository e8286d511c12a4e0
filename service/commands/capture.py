"""``dscsa capture FILE...``: the capture pipeline straight into the configured store.

A large XML file is checked against our schema by a worker process while it is read (see
``service.capture``); nothing of a file that fails the check is stored.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import sys
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any, TextIO

from epcis.errors import EPCISError
from epcis.reading import ReadLimits
from service.app import capture_policy, open_store
from service.audit import open_ledger_store
from service.capture import (
    capture_problem,
    dscsa_precheck,
    file_document,
    new_job,
    read_head_or_defer,
    run_capture,
)
from service.capture_hooks import CapturePolicy
from service.capture_leases import lease_directory, leased, recover_interrupted_captures
from service.commands.opened_stores import opened
from service.ledger import Ledger
from service.schema_check import SchemaChecker
from service.settings import Settings, SettingsError
from service.store import CaptureJob, EventStore

__all__ = ["register", "run"]

# Documents captured from the command line are attributed to this sender, not to a partner.
CLI_SENDER = "local-cli"


def register(subparsers: Any) -> None:
    parser = subparsers.add_parser(
        "capture",
        help="capture EPCIS files into the configured store",
        description="Reads EPCIS 1.2/2.0 XML and 2.0 JSON-LD; an event already stored is "
        "counted as a duplicate. The serial-state projection, DSCSA checks (DSCSA_CHECKS) "
        "and audit ledger are updated as by the service; do not run it beside a running "
        "'dscsa serve' on the same store. Exit status 1 when any file had rejected events.",
    )
    parser.add_argument("files", nargs="+", type=Path, metavar="FILE")
    parser.add_argument("--json", action="store_true", help="print the summary as JSON")
    parser.add_argument(
        "--proceed",
        action="store_true",
        help="store the good events of a file with bad ones (default: reject the whole file)",
    )
    parser.set_defaults(handler=run)


def run(args: argparse.Namespace) -> int:
    try:
        settings = Settings.from_environ()
    except SettingsError as error:
        print(f"dscsa capture: {error}", file=sys.stderr)
        return 2
    jobs = asyncio.run(_capture_all(settings, args.files, proceed=args.proceed))
    _print_summary(jobs, as_json=args.json)
    return 0 if all(job.success for _, job in jobs) else 1


@contextlib.asynccontextmanager
async def open_capture_stores(
    settings: Settings,
) -> AsyncIterator[tuple[EventStore, CapturePolicy]]:
    """The event store and the policy (hooks into the traceability store and ledger) of the
    service, opened in the service's order and closed in reverse."""
    from service.traceability_store import open_traceability_store

    async with contextlib.AsyncExitStack() as stack:
        store = await opened(stack, open_store(settings))
        traceability = await opened(stack, open_traceability_store(settings))
        ledger_store = await opened(stack, open_ledger_store(settings, store))
        ledger = Ledger(ledger_store)
        await ledger.load()
        policy = capture_policy(settings, traceability, ledger)
        stack.push_async_callback(policy.close)
        yield store, policy


async def _capture_all(
    settings: Settings, files: list[Path], *, proceed: bool
) -> list[tuple[Path, CaptureJob]]:
    limits = settings.read_limits
    results = []
    # The worker starts with the first large file (while that file is being read).
    async with open_capture_stores(settings) as (store, policy), SchemaChecker() as checker:
        for interrupted in await recover_interrupted_captures(
            store, lease_directory(settings.data_dir)
        ):
            print(f"capture {interrupted.capture_id} had been interrupted", file=sys.stderr)
        for path in files:
            job = await _capture_one(store, policy, path, limits, settings, proceed, checker)
            results.append((path, job))
    return results


async def _capture_one(
    store: EventStore,
    policy: CapturePolicy,
    path: Path,
    limits: ReadLimits,
    settings: Settings,
    proceed: bool,
    checker: SchemaChecker,
) -> CaptureJob:
    job = new_job(CLI_SENDER, "proceed" if proceed else "rollback")
    try:
        document = await asyncio.to_thread(file_document, path, settings.capture_file_size_limit)
        _, deferred = await read_head_or_defer(document, limits, str(path), policy, checker)
        await dscsa_precheck(policy, document, limits, str(path))
    except (OSError, EPCISError) as error:
        failure = error if isinstance(error, EPCISError) else EPCISError(str(error))
        return CaptureJob(
            capture_id=job.capture_id,
            partner_id=CLI_SENDER,
            created_at=job.created_at,
            running=False,
            success=False,
            errors=(capture_problem(failure),),
        )
    progress = _Progress(path, sys.stderr)
    try:
        with leased(lease_directory(settings.data_dir), job):
            return await run_capture(
                store,
                document,
                job,
                limits=limits,
                source=str(path),
                on_batch=progress.update,
                hooks=policy.hooks,
                spool_dir=policy.spool_dir,
                schema_check=deferred,
            )
    finally:
        progress.close()


class _Progress:
    """A one-line event counter on stderr, only when stderr is a terminal."""

    def __init__(self, path: Path, stream: TextIO) -> None:
        self._path = path
        self._stream = stream
        self._active = stream.isatty()

    def update(self, job: CaptureJob) -> None:
        if self._active:
            done = job.captured + job.duplicates + job.rejected
            self._stream.write(f"\r{self._path.name}: {done:,} events")
            self._stream.flush()

    def close(self) -> None:
        if self._active:
            self._stream.write("\n")


def _print_summary(jobs: list[tuple[Path, CaptureJob]], *, as_json: bool) -> None:
    rows: list[dict[str, Any]] = [
        {
            "file": str(path),
            "captureID": job.capture_id,
            "success": job.success,
            "captured": job.captured,
            "duplicates": job.duplicates,
            "rejected": job.rejected,
            "errors": [problem.detail or problem.title for problem in job.errors],
        }
        for path, job in jobs
    ]
    if as_json:
        print(json.dumps(rows, indent=2))
        return
    for row in rows:
        print(
            f"{row['file']}: captured {row['captured']}, duplicates {row['duplicates']}, "
            f"rejected {row['rejected']}"
        )
        for error in row["errors"]:
            print(f"  {error}")
