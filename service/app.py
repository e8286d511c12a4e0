"""The application factory: settings, store, scheduler and captures wired into one aiohttp app."""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from aiohttp import web
from apscheduler.schedulers.asyncio import AsyncIOScheduler  # type: ignore[import-untyped]

from service.auth import auth_middleware
from service.capture import CaptureTracker
from service.partners import ensure_operator_token
from service.problems import problems_middleware
from service.routes import setup_routes
from service.settings import Settings, package_version
from service.state import CAPTURES, SCHEDULER, SETTINGS, STORE
from service.store import EventStore

__all__ = ["CAPTURES", "SCHEDULER", "SETTINGS", "STORE", "create_app", "open_store"]

logger = logging.getLogger(__name__)


def open_store(settings: Settings) -> EventStore:
    """The store adapter the ``DSCSA_STORE`` URL names (not yet opened)."""
    if settings.store_scheme == "sqlite":
        from service.sqlite_store import SQLiteEventStore

        return SQLiteEventStore(settings.sqlite_path, data_dir=settings.data_dir)
    from service.mongo_store import MongoEventStore

    return MongoEventStore.from_url(settings.store.get_secret_value())


def _store_context(store: EventStore | None) -> object:
    @asynccontextmanager
    async def context(app: web.Application) -> AsyncIterator[None]:
        settings = app[SETTINGS]
        opened = store if store is not None else open_store(settings)
        await opened.open()
        app[STORE] = opened
        if await ensure_operator_token(opened, settings.operator_token_path, settings.gln):
            logger.warning("use it as: Authorization: Bearer <contents of that file>")
        try:
            yield
        finally:
            await opened.close()

    return context


@asynccontextmanager
async def _scheduler_context(app: web.Application) -> AsyncIterator[None]:
    # Started after the store and shut down before it: jobs may use the store (later issues).
    scheduler = AsyncIOScheduler(timezone="UTC")
    scheduler.start()
    app[SCHEDULER] = scheduler
    try:
        yield
    finally:
        scheduler.shutdown(wait=False)


@asynccontextmanager
async def _captures_context(app: web.Application) -> AsyncIterator[None]:
    tracker = CaptureTracker()
    app[CAPTURES] = tracker
    try:
        yield
    finally:
        # Before the store closes: running captures finish, or are cancelled and roll back.
        await tracker.drain(app[SETTINGS].shutdown_timeout)


async def _gs1_headers(request: web.Request, response: web.StreamResponse) -> None:
    response.headers.setdefault("GS1-EPCIS-Version", "2.0.0")
    response.headers.setdefault("GS1-CBV-Version", "2.0.0")
    response.headers.setdefault("GS1-Vendor-Version", f"dscsa-exchange-{package_version()}")
    if request.path.startswith("/capture") or request.path == "/events":
        settings = request.app[SETTINGS]
        response.headers["GS1-EPCIS-Capture-Limit"] = str(settings.capture_event_limit)
        response.headers["GS1-EPCIS-Capture-File-Size-Limit"] = str(
            settings.capture_file_size_limit
        )


def create_app(
    settings: Settings | None = None, *, store: EventStore | None = None
) -> web.Application:
    """The service; ``store`` injects an already-built adapter (tests), else DSCSA_STORE decides."""
    app = web.Application(
        middlewares=[problems_middleware, auth_middleware],
        client_max_size=1024**2,
    )
    app[SETTINGS] = settings or Settings.from_environ()
    app.cleanup_ctx.append(_store_context(store))  # type: ignore[arg-type]
    app.cleanup_ctx.append(_scheduler_context)
    app.cleanup_ctx.append(_captures_context)
    app.on_response_prepare.append(_gs1_headers)
    setup_routes(app)
    return app
