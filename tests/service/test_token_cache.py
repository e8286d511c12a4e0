"""The bearer-token cache: hits skip the store, revocation and expiry still take effect."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from dataclasses import replace
from datetime import UTC, datetime

import pytest

from service.auth import TOKEN_CACHE, Principal, Role, TokenCache, principal_for_token_hash
from service.partners import add_partner, hash_token
from service.settings import Settings
from service.sqlite_store import SQLiteEventStore
from service.state import STORE
from service.store import EventStore, PartnerRecord
from tests.service.conftest import MANUFACTURER_GLN, Client, bearer


class FakeClock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def _principal(partner_id: str) -> Principal:
    return Principal(partner_id, partner_id, Role.PARTNER, frozenset({partner_id}))


def test_an_entry_lives_for_the_ttl_only() -> None:
    clock = FakeClock()
    cache = TokenCache(ttl=5.0, clock=clock)
    cache.put("h1", _principal("p1"), cache.generation)
    clock.now += 4.9
    assert cache.get("h1") == _principal("p1")
    clock.now += 0.1
    assert cache.get("h1") is None
    assert len(cache) == 0


def test_the_cache_is_bounded_and_drops_the_oldest() -> None:
    cache = TokenCache(size=3, clock=FakeClock())
    for index in range(5):
        cache.put(f"h{index}", _principal(f"p{index}"), cache.generation)
    assert len(cache) == 3
    assert [cache.get(f"h{index}") is not None for index in range(5)] == [0, 0, 1, 1, 1]


def test_forgetting_a_partner_drops_all_its_tokens_and_no_other() -> None:
    cache = TokenCache(clock=FakeClock())
    cache.put("a1", _principal("a"), cache.generation)
    cache.put("a2", _principal("a"), cache.generation)
    cache.put("b1", _principal("b"), cache.generation)
    cache.forget_partner("a")
    assert (cache.get("a1"), cache.get("a2")) == (None, None)
    assert cache.get("b1") == _principal("b")


def test_a_lookup_begun_before_an_invalidation_does_not_refill() -> None:
    cache = TokenCache(clock=FakeClock())
    generation = cache.generation
    cache.forget_partner("a")
    cache.put("a1", _principal("a"), generation)
    assert cache.get("a1") is None


class _CountingLookups:
    """Counts the store's token lookups of one app (and can hold one back)."""

    def __init__(self, client: Client) -> None:
        self.store: EventStore = client.app[STORE]
        self.calls = 0
        self.original = self.store.get_partner_by_token_hash
        self.gate: asyncio.Event | None = None
        self.read = asyncio.Event()

    async def lookup(self, token_hash: str) -> PartnerRecord | None:
        self.calls += 1
        record: PartnerRecord | None = await self.original(token_hash)
        self.read.set()
        if self.gate is not None:
            await self.gate.wait()
        return record


@pytest.fixture
def lookups(client: Client) -> Iterator[_CountingLookups]:
    counter = _CountingLookups(client)
    counter.store.get_partner_by_token_hash = counter.lookup  # type: ignore[method-assign]
    yield counter
    counter.store.get_partner_by_token_hash = counter.original  # type: ignore[method-assign]


async def test_repeated_requests_look_the_token_up_once(
    client: Client, manufacturer: dict[str, str], lookups: _CountingLookups
) -> None:
    for _ in range(3):
        assert (await client.get("/events", headers=manufacturer)).status == 200
    assert lookups.calls == 1
    token = manufacturer["Authorization"].removeprefix("Bearer ")
    cache = client.app[TOKEN_CACHE]
    assert cache.get(hash_token(token)) is not None
    # Only digests are kept: the token itself is nowhere in the cache.
    assert token not in repr(cache._entries)


async def test_a_cached_token_fails_the_moment_it_is_revoked(
    client: Client, manufacturer: dict[str, str], lookups: _CountingLookups
) -> None:
    assert (await client.get("/events", headers=manufacturer)).status == 200
    token_hash = hash_token(manufacturer["Authorization"].removeprefix("Bearer "))
    assert client.app[TOKEN_CACHE].get(token_hash) is not None
    store = client.app[STORE]
    record = next(p for p in await store.list_partners() if p.gln == MANUFACTURER_GLN)
    assert await store.revoke_partner(record.partner_id, datetime.now(UTC))
    response = await client.get("/events", headers=manufacturer)
    assert response.status == 401
    assert (await response.json())["type"] == "epcisException:SecurityException"
    assert lookups.calls == 2


async def test_a_revocation_by_another_process_holds_within_the_ttl(
    client: Client, manufacturer: dict[str, str], settings: Settings
) -> None:
    cache = client.app[TOKEN_CACHE]
    clock = FakeClock()
    cache.clock = clock
    assert (await client.get("/events", headers=manufacturer)).status == 200
    # Another process (``dscsa partners revoke``): its own store object on the same files.
    other = SQLiteEventStore(settings.sqlite_path, settings.data_dir)
    await other.open()
    try:
        record = next(p for p in await other.list_partners() if p.gln == MANUFACTURER_GLN)
        assert await other.revoke_partner(record.partner_id, datetime.now(UTC))
    finally:
        await other.close()
    clock.now += cache.ttl - 0.5
    assert (await client.get("/events", headers=manufacturer)).status == 200
    clock.now += 0.5
    assert (await client.get("/events", headers=manufacturer)).status == 401


async def test_a_lookup_racing_a_revocation_is_not_cached(
    client: Client, manufacturer: dict[str, str], lookups: _CountingLookups
) -> None:
    token_hash = hash_token(manufacturer["Authorization"].removeprefix("Bearer "))
    store = client.app[STORE]
    record = next(p for p in await store.list_partners() if p.gln == MANUFACTURER_GLN)
    lookups.gate = asyncio.Event()
    # The lookup reads the record while it is still valid, then the revocation commits.
    pending = asyncio.create_task(principal_for_token_hash(client.app, token_hash))
    await lookups.read.wait()
    assert await store.revoke_partner(record.partner_id, datetime.now(UTC))
    lookups.gate.set()
    assert await pending is not None  # it began before the revocation
    assert client.app[TOKEN_CACHE].get(token_hash) is None
    lookups.gate = None
    assert (await client.get("/events", headers=manufacturer)).status == 401


async def test_unknown_tokens_are_not_remembered(client: Client, lookups: _CountingLookups) -> None:
    assert (await client.get("/events", headers=bearer("not-yet"))).status == 401
    assert (await client.get("/events", headers=bearer("not-yet"))).status == 401
    assert lookups.calls == 2
    assert len(client.app[TOKEN_CACHE]) == 0


async def test_a_newly_issued_token_works_at_once(client: Client) -> None:
    issued = await add_partner(client.app[STORE], "late", "0300011999990")
    assert (await client.get("/events", headers=bearer(issued.token))).status == 200


async def test_a_record_with_another_hash_is_refused(
    client: Client, manufacturer: dict[str, str], lookups: _CountingLookups
) -> None:
    original = lookups.original

    async def lax(token_hash: str) -> PartnerRecord | None:
        # A store whose index matched loosely: the constant-time recheck must refuse it.
        record = await original(token_hash)
        return replace(record, token_hash="0" * 64) if record else None

    lookups.store.get_partner_by_token_hash = lax  # type: ignore[method-assign]
    assert (await client.get("/events", headers=manufacturer)).status == 401
    assert len(client.app[TOKEN_CACHE]) == 0
