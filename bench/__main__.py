"""``python -m bench [NAME...] [--quick]``: run benchmarks, print JSON, keep out/latest.json."""

from __future__ import annotations

import argparse
import importlib
import importlib.util
import json
import platform
import sys
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

__all__ = ["BENCHMARKS", "main"]

# Benchmark groups: name -> module with ``run(quick: bool) -> dict``. Groups whose module
# is not in this checkout (added by work still in progress) are left out.
_GROUPS = {
    "core": "bench.core",
    "service": "bench.service",
    "traceability": "bench.traceability",
    "exports": "bench.exports",
    "vrs": "bench.vrs",
    "vrs_profile": "bench.vrs_profile",
}
BENCHMARKS = {
    name: module for name, module in _GROUPS.items() if importlib.util.find_spec(module) is not None
}
LATEST = Path(__file__).resolve().parent / "out" / "latest.json"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench", description=__doc__)
    parser.add_argument(
        "names", nargs="*", metavar="NAME", help=f"groups to run: {', '.join(BENCHMARKS)} (all)"
    )
    parser.add_argument("--quick", action="store_true", help="small inputs, for a smoke run")
    args = parser.parse_args(argv)
    names = args.names or list(BENCHMARKS)
    unknown = sorted(set(names) - set(BENCHMARKS))
    if unknown:
        parser.error(f"unknown benchmark group(s): {', '.join(unknown)}")
    report: dict[str, Any] = {
        "date": datetime.now(UTC).isoformat(timespec="seconds"),
        "machine": {"python": platform.python_version(), "cpus": _cpus()},
        "quick": args.quick,
    }
    for name in names:
        report[name] = importlib.import_module(BENCHMARKS[name]).run(quick=args.quick)
    text = json.dumps(report, indent=2)
    LATEST.parent.mkdir(parents=True, exist_ok=True)
    LATEST.write_text(text + "\n")
    print(text)
    return 0


def _cpus() -> int:
    import os

    return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 0


if __name__ == "__main__":
    sys.exit(main())
