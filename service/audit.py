"""Wiring of the audit ledger into the service: its store, the signing keys, the checkpoint job."""

from __future__ import annotations

import logging
import os
import secrets
from collections.abc import AsyncIterator, Callable
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from pathlib import Path

from aiohttp import web

from service.keys import KeyRing, KeyRingError, passphrase_from_environment
from service.ledger import Ledger, LedgerStore
from service.settings import Settings
from service.store import EventStore

__all__ = [
    "KEYRING",
    "LEDGER",
    "ledger_context",
    "open_keyring",
    "open_ledger_store",
]

logger = logging.getLogger(__name__)

LEDGER = web.AppKey("ledger", Ledger)
KEYRING = web.AppKey("keyring", KeyRing)

CHECKPOINT_INTERVAL_VARIABLE = "DSCSA_CHECKPOINT_INTERVAL"
DEFAULT_CHECKPOINT_INTERVAL = 600.0


def _local_passphrase(folder: Path) -> bytes:
    """A generated passphrase in the key folder, for a service started with no secret set.

    It keeps ``make serve`` a one-command start; production sets DSCSA_KEY_PASSPHRASE or
    DSCSA_KEY_PASSPHRASE_FILE so the passphrase does not sit beside the keys.
    """
    path = folder / "passphrase"
    if not path.exists():
        folder.mkdir(parents=True, exist_ok=True, mode=0o700)
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "w") as file:
            file.write(secrets.token_urlsafe(32))
        logger.warning(
            "no DSCSA_KEY_PASSPHRASE set: generated a key passphrase in %s; set one for production",
            path,
        )
    return path.read_bytes().strip()


def open_keyring(data_dir: Path) -> KeyRing:
    """The service's key ring, with a first key generated if there is none."""
    folder = data_dir / "keys"
    try:
        passphrase = passphrase_from_environment()
    except KeyRingError:
        passphrase = _local_passphrase(folder)
    keyring = KeyRing(folder, passphrase)
    if not keyring.key_infos():
        info = keyring.generate()
        logger.info("generated signing key %s in %s", info.key_id, folder)
    return keyring


def open_ledger_store(settings: Settings, event_store: EventStore) -> LedgerStore:
    if settings.store_scheme == "sqlite":
        from service.sqlite_ledger_store import SQLiteLedgerStore

        return SQLiteLedgerStore(settings.sqlite_path)
    from service.mongo_ledger_store import MongoLedgerStore
    from service.mongo_store import MongoEventStore

    if not isinstance(event_store, MongoEventStore):
        raise TypeError("a MongoDB ledger needs the MongoDB event store")
    return MongoLedgerStore(event_store.database)


def checkpoint_interval() -> float:
    return float(os.environ.get(CHECKPOINT_INTERVAL_VARIABLE, DEFAULT_CHECKPOINT_INTERVAL))


def ledger_context(
    event_store: Callable[[web.Application], EventStore],
) -> Callable[[web.Application], AbstractAsyncContextManager[None]]:
    """cleanup_ctx entry: after the event store, before the scheduler that signs checkpoints."""

    @asynccontextmanager
    async def context(app: web.Application) -> AsyncIterator[None]:
        from service.state import SETTINGS

        settings = app[SETTINGS]
        store = open_ledger_store(settings, event_store(app))
        await store.open()
        ledger = Ledger(store)
        await ledger.load()
        app[LEDGER] = ledger
        app[KEYRING] = open_keyring(settings.data_dir)
        try:
            yield
        finally:
            await store.close()

    return context


async def make_checkpoint(app: web.Application) -> None:
    """The scheduled job: sign the tree head when it grew since the last checkpoint."""
    ledger = app[LEDGER]
    checkpoints = await ledger.store.checkpoints()
    if checkpoints and checkpoints[-1].size == ledger.size:
        return
    checkpoint = await ledger.checkpoint(app[KEYRING])
    logger.info("ledger checkpoint: %d leaves, root %s", checkpoint.size, checkpoint.root)
