"""The export store port: export requests (status objects) and the bundles built for them."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable, Sequence
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol

from aiohttp import web

from service.exports import ExportRequest

if TYPE_CHECKING:
    from service.settings import Settings

__all__ = [
    "EXPORTS",
    "ExportStore",
    "export_store_context",
    "open_export_store",
]


class ExportStore(Protocol):
    """Requests are replaced as their status changes; a bundle is written once per request."""

    async def open(self) -> None: ...

    async def close(self) -> None: ...

    async def put_request(self, request: ExportRequest) -> None:
        """Insert or replace the request with this export_id."""
        ...

    async def get_request(self, export_id: str) -> ExportRequest | None: ...

    async def list_requests(
        self, *, open_only: bool = False, limit: int = 200
    ) -> Sequence[ExportRequest]:
        """By due time, soonest first; ``open_only`` leaves out requests whose bundle is ready."""
        ...

    async def put_bundle(self, export_id: str, path: Path) -> None:
        """Keep the bundle file's bytes for this request (copied; ``path`` may then go)."""
        ...

    def open_bundle(self, export_id: str) -> AsyncIterator[bytes]:
        """The bundle's bytes in chunks; raises KeyError if there is none."""
        ...


EXPORTS = web.AppKey("exports", ExportStore)


def open_export_store(settings: Settings, database: Any = None) -> ExportStore:
    """The adapter for the configured store (not yet opened).

    SQLite: ``events.exports.sqlite`` beside the event store's file and bundles under
    ``data_dir/exports``. MongoDB: the given database object, else the URL's default one.
    """
    if settings.store_scheme == "sqlite":
        from service.sqlite_export_store import SQLiteExportStore

        path = settings.sqlite_path.with_suffix(".exports.sqlite")
        return SQLiteExportStore(path, settings.data_dir / "exports")
    from service.mongo_export_store import MongoExportStore

    if database is not None:
        return MongoExportStore(database)
    return MongoExportStore.from_url(settings.store.get_secret_value())


def export_store_context(
    store: ExportStore | None = None,
) -> Callable[[web.Application], AbstractAsyncContextManager[None]]:
    """cleanup_ctx entry (after the event store): opens the export store as ``app[EXPORTS]``."""

    @asynccontextmanager
    async def context(app: web.Application) -> AsyncIterator[None]:
        from service.state import SETTINGS

        opened = store if store is not None else open_export_store(app[SETTINGS])
        await opened.open()
        app[EXPORTS] = opened
        try:
            yield
        finally:
            await opened.close()

    return context
