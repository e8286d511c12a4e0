"""The service with the web pages and everything they read, on SQLite in a temporary folder.

Until the integrated app factory wires traceability, the ledger, verification and exports
itself (and lets ``/ui`` pass its bearer-token check), this builds the same thing around
``create_app``; captures go through the real pipeline, then into the projection and ledger.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from pathlib import Path
from typing import Any

from aiohttp import web
from pydantic import SecretStr

from service.app import create_app
from service.audit import LEDGER, ledger_context
from service.auth import auth_middleware
from service.export_store import EXPORTS, export_store_context
from service.handlers.traceability import TRACEABILITY
from service.handlers.verification import VERIFICATION, verification_context
from service.partners import add_partner
from service.settings import Settings
from service.state import SETTINGS, STORE
from service.traceability_store import open_traceability_store
from service.verification_responder import VerificationSettings
from service.web import PAGE_PREFIX, is_page_path, web_routes
from tests.service.export_fixtures import index_captured

__all__ = [
    "CASE",
    "GLN",
    "PACK",
    "PACK_GTIN",
    "SCENARIO",
    "build_app",
    "capture_scenario",
    "issue_token",
    "site_settings",
]

ROOT = Path(__file__).resolve().parents[2]
SCENARIO = ROOT / "fixtures" / "scenarios" / "dscsa"
GLN = "0300011111116"  # GS1 Pharma, the manufacturer of the scenario
PACK = "urn:epc:id:sgtin:030001.0012345"
CASE = "urn:epc:id:sgtin:030001.1012345"
PACK_GTIN = "00300010123455"
# One instance holding the whole chain, then a receipt of a case never shipped there and a
# shipment without its transaction statement (two exceptions for the queue).
CHAIN = (
    "1-manufacturer-to-wholesaler.xml",
    "2-wholesaler-operations.xml",
    "4-pharmacy-operations.xml",
    "faulty/received-not-shipped-to-us.xml",
    "faulty/missing-transaction-statement.xml",
)

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]
Context = Callable[[web.Application], AbstractAsyncContextManager[None]]


@web.middleware
async def bearer_except_pages(request: web.Request, handler: Handler) -> web.StreamResponse:
    # What the integrated auth middleware is asked to do: pages sign in with a session.
    if is_page_path(request.path):
        return await handler(request)
    return await auth_middleware(request, handler)


@asynccontextmanager
async def _traceability(app: web.Application) -> AsyncIterator[None]:
    store = open_traceability_store(app[SETTINGS])
    await store.open()
    app[TRACEABILITY] = store
    try:
        yield
    finally:
        await store.close()


def site_settings(folder: Path) -> Settings:
    return Settings(
        store=SecretStr(f"sqlite:///{folder}/events.sqlite3"),
        data_dir=folder / "data",
        gln=GLN,
        company_prefixes=("030001",),
        shutdown_timeout=10,
    )


def _unless_wired(key: web.AppKey[Any], context: Context) -> Context:
    """``context``, unless the app factory has already put ``key`` in the app."""

    @asynccontextmanager
    async def guarded(app: web.Application) -> AsyncIterator[None]:
        if key in app:
            yield
            return
        async with context(app):
            yield

    return guarded


def build_app(settings: Settings) -> web.Application:
    app = create_app(settings)
    if auth_middleware in app.middlewares:
        position = app.middlewares.index(auth_middleware)
        app.middlewares[position] = bearer_except_pages
    for key, context in (
        (TRACEABILITY, _traceability),
        (LEDGER, ledger_context(lambda a: a[STORE])),
        (EXPORTS, export_store_context()),
        (VERIFICATION, verification_context(VerificationSettings(responder_gln=GLN))),
    ):
        app.cleanup_ctx.append(_unless_wired(key, context))  # type: ignore[arg-type]
    if not any(r.canonical == f"{PAGE_PREFIX}/sign-in" for r in app.router.resources()):
        app.add_routes(web_routes())
    return app


async def capture_scenario(app: web.Application, names: tuple[str, ...] = CHAIN) -> None:
    for name in names:
        await index_captured(app[STORE], app[TRACEABILITY], app[LEDGER], SCENARIO / name)


async def issue_token(app: web.Application, name: str, gln: str, role: str) -> str:
    issued = await add_partner(app[STORE], name, gln, role)  # type: ignore[arg-type]
    return issued.token
