"""``dscsa serve``: run the service with settings from the ``DSCSA_*`` environment."""

from __future__ import annotations

import argparse
import logging
import sys
from typing import Any

from aiohttp import web

from service.app import create_app
from service.settings import Settings, SettingsError

__all__ = ["register", "run"]


def register(subparsers: Any) -> None:
    parser = subparsers.add_parser(
        "serve",
        help="run the EPCIS capture and query service",
        description="Settings come from DSCSA_* environment variables (see README, Service).",
    )
    parser.add_argument("--host", help="default: DSCSA_HOST or 127.0.0.1")
    parser.add_argument("--port", type=int, help="default: DSCSA_PORT or 8080")
    parser.set_defaults(handler=run)


def run(args: argparse.Namespace) -> int:
    try:
        settings = Settings.from_environ()
    except SettingsError as error:
        print(f"dscsa serve: {error}", file=sys.stderr)
        return 2
    overrides = {k: v for k, v in {"host": args.host, "port": args.port}.items() if v}
    settings = settings.model_copy(update=overrides)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s %(message)s")
    # handler_cancellation stays off: a client hanging up must not cut a capture in half.
    web.run_app(
        create_app(settings),
        host=settings.host,
        port=settings.port,
        shutdown_timeout=settings.shutdown_timeout,
        handler_cancellation=False,
    )
    return 0
