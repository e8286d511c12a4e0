"""The ``dscsa`` command line: one entry point, one module per group of subcommands."""

from __future__ import annotations

import argparse
import importlib
import sys
from collections.abc import Sequence

__all__ = ["main"]

# Each module defines ``register(subparsers)``, adding its subcommands; a subcommand sets
# ``handler`` (a callable taking the parsed namespace and returning the exit status).
COMMAND_MODULES = (
    "service.commands.documents",
    "service.commands.keys",
    "service.commands.serve",
    "service.commands.capture",
    "service.commands.partners",
    "service.commands.traceability",
    "service.commands.shipments",
    "service.commands.verification",
    "service.commands.exports",
    "service.commands.ledger",
)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="dscsa",
        description="DSCSA compliance and EPCIS exchange service.",
    )
    subparsers = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for module_name in COMMAND_MODULES:
        importlib.import_module(module_name).register(subparsers)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    status: int = args.handler(args)
    return status


if __name__ == "__main__":
    sys.exit(main())
