"""The application factory: settings, stores, scheduler and captures wired into one aiohttp app.

Start-up order (``cleanup_ctx``, closed in reverse): event store → traceability store → audit
ledger → verification log (when a responder GLN is configured) → export store → scheduler
(checkpoints, grace periods, export deadlines, retention) → schema check worker → capture
tracker with its hooks.
Captures are drained first on shutdown, while every store they write to is still open.
"""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from typing import Any

from aiohttp import web
from apscheduler.schedulers.asyncio import AsyncIOScheduler  # type: ignore[import-untyped]

from service.audit import KEYRING, LEDGER, ledger_context, make_checkpoint
from service.audit_records import LedgeredTraceabilityStore
from service.auth import TOKEN_CACHE, TokenCache, auth_middleware, invalidate_on_revoke
from service.capture import CaptureTracker
from service.capture_hooks import CapturePolicy, LedgerHook, TraceabilityHook
from service.capture_leases import lease_directory, recover_interrupted_captures
from service.dscsa_checks import CheckMode
from service.export_jobs import export_deadline_job
from service.export_store import export_store_context
from service.grace_period import GracePolicy, OurParties, run_grace_period_checks
from service.handlers.capture import schema_check_context
from service.handlers.exports import export_routes
from service.handlers.ledger import ledger_routes
from service.handlers.shipments import shipment_routes
from service.handlers.traceability import TRACEABILITY, traceability_routes
from service.handlers.verification import VERIFICATION, verification_context, verification_routes
from service.partners import ensure_operator_token
from service.problems import problems_middleware
from service.projection_recovery import recover_projections
from service.projection_worker import ProjectionWorker
from service.retention import retention_job
from service.routes import setup_routes
from service.settings import Settings, SettingsError, package_version
from service.state import CAPTURE_POLICY, CAPTURES, SCHEDULER, SETTINGS, STORE
from service.store import EventStore
from service.traceability_store import open_traceability_store, sqlite_traceability_path
from service.verification_responder import VerificationSettings
from service.web import is_page_path, web_routes

__all__ = [
    "CAPTURES",
    "CAPTURE_POLICY",
    "KEYRING",
    "LEDGER",
    "SCHEDULER",
    "SETTINGS",
    "STORE",
    "TRACEABILITY",
    "capture_policy",
    "create_app",
    "open_store",
]

logger = logging.getLogger(__name__)

# Seconds between runs of the scheduled jobs other than the checkpoint (a setting).
GRACE_PERIOD_EVERY = 3600.0
EXPORT_DEADLINES_EVERY = 900.0
RETENTION_EVERY = 86400.0

Context = Callable[[web.Application], AbstractAsyncContextManager[None]]


def open_store(settings: Settings) -> EventStore:
    """The store adapter the ``DSCSA_STORE`` URL names (not yet opened)."""
    if settings.store_scheme == "sqlite":
        from service.sqlite_store import SQLiteEventStore

        return SQLiteEventStore(settings.sqlite_path, data_dir=settings.data_dir)
    from service.mongo_store import MongoEventStore

    return MongoEventStore.from_url(settings.store.get_secret_value())


def _store_context(store: EventStore | None) -> Context:
    @asynccontextmanager
    async def context(app: web.Application) -> AsyncIterator[None]:
        settings = app[SETTINGS]
        opened = store if store is not None else open_store(settings)
        await opened.open()
        app[STORE] = opened
        # Revocations through this store reach the token cache at once.
        restore = invalidate_on_revoke(opened, app[TOKEN_CACHE])
        if await ensure_operator_token(opened, settings.operator_token_path, settings.gln):
            logger.warning("use it as: Authorization: Bearer <contents of that file>")
        try:
            yield
        finally:
            restore()
            await opened.close()

    return context


@asynccontextmanager
async def _ledgered_records_context(app: web.Application) -> AsyncIterator[None]:
    # Once the ledger is open: every resolution and recall stored from here on gets its leaf.
    app[TRACEABILITY] = LedgeredTraceabilityStore(app[TRACEABILITY], app[LEDGER])
    yield


@asynccontextmanager
async def _traceability_context(app: web.Application) -> AsyncIterator[None]:
    store = open_traceability_store(app[SETTINGS])
    await store.open()
    app[TRACEABILITY] = store
    try:
        yield
    finally:
        await store.close()


def _every(
    scheduler: AsyncIOScheduler,
    job: Callable[[web.Application], Awaitable[Any]],
    app: web.Application,
    seconds: float,
) -> None:
    async def run() -> None:
        try:
            await job(app)
        except Exception:
            # A failing run is logged and retried at the next interval; the service goes on.
            logger.exception("scheduled job %s failed", getattr(job, "__name__", job))

    scheduler.add_job(
        run,
        "interval",
        seconds=seconds,
        id=getattr(job, "__name__", repr(job)),
        coalesce=True,
        max_instances=1,
    )


async def grace_period_job(app: web.Application) -> None:
    """Record (and resolve) product-without-data and data-without-product exceptions."""
    settings = app[SETTINGS]
    report = await run_grace_period_checks(
        app[STORE],
        app[TRACEABILITY],
        OurParties.from_settings(settings),
        policy=GracePolicy(business_days=settings.grace_period_days),
    )
    if report.recorded or report.resolved:
        logger.info(
            "grace period: %d exceptions recorded, %d resolved",
            len(report.recorded),
            len(report.resolved),
        )


@asynccontextmanager
async def _scheduler_context(app: web.Application) -> AsyncIterator[None]:
    # Started after the stores and shut down before them: every job uses them.
    scheduler = AsyncIOScheduler(timezone="UTC")
    _every(scheduler, make_checkpoint, app, app[SETTINGS].checkpoint_interval)
    _every(scheduler, grace_period_job, app, GRACE_PERIOD_EVERY)
    _every(scheduler, export_deadline_job, app, EXPORT_DEADLINES_EVERY)
    _every(scheduler, retention_job, app, RETENTION_EVERY)
    scheduler.start()
    app[SCHEDULER] = scheduler
    try:
        yield
    finally:
        scheduler.shutdown(wait=False)


def capture_policy(
    settings: Settings, traceability: Any, ledger: Any, *, hooks: bool = True
) -> CapturePolicy:
    """Hooks and check mode of every capture: projection and checks, then ledger leaves.

    Close it (``CapturePolicy.close``) to stop the projection worker it may start."""
    worker = None
    if settings.projection_worker and settings.store_scheme == "sqlite":
        worker = ProjectionWorker(sqlite_traceability_path(settings))
    return CapturePolicy(
        hooks=(TraceabilityHook(traceability, worker), LedgerHook(ledger)) if hooks else (),
        checks=CheckMode(settings.dscsa_checks),
        traceability=traceability,
        spool_dir=settings.spool_dir,
    )


@asynccontextmanager
async def _captures_context(app: web.Application) -> AsyncIterator[None]:
    tracker = CaptureTracker()
    app[CAPTURES] = tracker
    # Jobs a dead process left "running" (crash, kill -9): marked interrupted, their
    # uncommitted events discarded, before this process takes new captures.
    await recover_interrupted_captures(app[STORE], lease_directory(app[SETTINGS].data_dir))
    await _recover_projections(app)
    app[CAPTURE_POLICY] = policy = capture_policy(app[SETTINGS], app[TRACEABILITY], app[LEDGER])
    try:
        yield
    finally:
        # Before the stores close: running captures finish, or are cancelled and roll back;
        # then the projection worker stops.
        await tracker.drain(app[SETTINGS].shutdown_timeout)
        await policy.close()


async def _recover_projections(app: web.Application) -> None:
    """Captures committed but perhaps not projected (a crash in between): projected again."""
    settings = app[SETTINGS]
    try:
        await recover_projections(
            app[STORE],
            app[TRACEABILITY],
            limits=settings.read_limits,
            spool_dir=settings.spool_dir,
            leases=lease_directory(settings.data_dir),
            ledger=app[LEDGER],
        )
    except Exception:
        # The names stay in the journal for the next start; the service runs meanwhile.
        logger.exception("could not project again what a crash left; run 'dscsa rebuild'")


def _gs1_headers(
    settings: Settings,
) -> Callable[[web.Request, web.StreamResponse], Awaitable[None]]:
    # Every response carries these: their values are fixed for the app's life, so made once.
    versions = {
        "GS1-EPCIS-Version": "2.0.0",
        "GS1-CBV-Version": "2.0.0",
        "GS1-Vendor-Version": f"dscsa-exchange-{package_version()}",
    }
    limits = {
        "GS1-EPCIS-Capture-Limit": str(settings.capture_event_limit),
        "GS1-EPCIS-Capture-File-Size-Limit": str(settings.capture_file_size_limit),
    }

    async def add(request: web.Request, response: web.StreamResponse) -> None:
        headers = response.headers
        for name, value in versions.items():
            headers.setdefault(name, value)
        if request.path.startswith("/capture") or request.path == "/events":
            headers.update(limits)

    return add


def _needs_verification(route: web.RouteDef) -> web.RouteDef:
    handler = route.handler

    async def guarded(request: web.Request) -> web.StreamResponse:
        if VERIFICATION not in request.app:
            raise web.HTTPServiceUnavailable(
                text="verification is not configured: set DSCSA_GLN or DSCSA_VRS_RESPONDER_GLN"
            )
        response: web.StreamResponse = await handler(request)
        return response

    return web.RouteDef(route.method, route.path, guarded, route.kwargs)


def _no_head(routes: list[web.RouteDef]) -> list[web.RouteDef]:
    """GET routes without the implicit HEAD twin: the OpenAPI document lists no HEADs."""
    return [
        web.RouteDef(r.method, r.path, r.handler, {**r.kwargs, "allow_head": False})
        if r.method == "GET"
        else r
        for r in routes
    ]


def _verification_configured(settings: Settings) -> VerificationSettings | None:
    try:
        vrs = VerificationSettings.from_environ()
        vrs.gln(settings)
    except SettingsError as error:
        logger.warning("verification routes answer 503: %s", error)
        return None
    return vrs


@web.middleware
async def _bearer_except_pages(
    request: web.Request, handler: Callable[[web.Request], Awaitable[web.StreamResponse]]
) -> web.StreamResponse:
    # The /ui pages sign people in with a session cookie of their own, not a bearer token.
    if is_page_path(request.path):
        return await handler(request)
    return await auth_middleware(request, handler)


def create_app(
    settings: Settings | None = None, *, store: EventStore | None = None
) -> web.Application:
    """The service; ``store`` injects an already-built adapter (tests), else DSCSA_STORE decides."""
    app = web.Application(
        middlewares=[problems_middleware, _bearer_except_pages],
        client_max_size=1024**2,
    )
    app[SETTINGS] = settings = settings or Settings.from_environ()
    app[TOKEN_CACHE] = TokenCache()
    app.cleanup_ctx.append(_store_context(store))
    app.cleanup_ctx.append(_traceability_context)
    app.cleanup_ctx.append(ledger_context(lambda a: a[STORE]))
    app.cleanup_ctx.append(_ledgered_records_context)
    vrs = _verification_configured(settings)
    if vrs is not None:
        app.cleanup_ctx.append(verification_context(vrs))
    app.cleanup_ctx.append(export_store_context())
    app.cleanup_ctx.append(_scheduler_context)
    app.cleanup_ctx.append(schema_check_context)  # stopped once the captures have drained
    app.cleanup_ctx.append(_captures_context)
    app.on_response_prepare.append(_gs1_headers(settings))
    setup_routes(app)
    app.add_routes(_no_head(traceability_routes()))
    app.add_routes(_no_head(ledger_routes()))
    app.add_routes(_no_head([_needs_verification(route) for route in verification_routes()]))
    app.add_routes(_no_head(export_routes()))
    app.add_routes(_no_head(shipment_routes()))
    app.add_routes(web_routes())
    return app
