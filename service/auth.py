"""Bearer-token authentication, roles, and what each principal may capture and read."""

from __future__ import annotations

import hmac
import time
from collections import OrderedDict
from collections.abc import Awaitable, Callable, Iterable
from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum

from aiohttp import web

from service.partners import hash_token, party_keys
from service.state import STORE
from service.store import EventStore, PartnerRecord, Visibility

__all__ = [
    "PRINCIPAL",
    "TOKEN_CACHE",
    "Principal",
    "Role",
    "TokenCache",
    "auth_middleware",
    "invalidate_on_revoke",
    "principal_for_token_hash",
    "principal_of",
    "require_role",
    "require_sender",
]

# Endpoints anyone may call: load balancers probe /health without credentials.
_PUBLIC_PATHS = frozenset({"/health"})


class Role(StrEnum):
    PARTNER = "partner"
    OPERATOR = "operator"
    AUDITOR = "auditor"


@dataclass(frozen=True, slots=True)
class Principal:
    """Who is calling: a partner record resolved from a bearer token."""

    partner_id: str
    name: str
    role: Role
    identifiers: frozenset[str]

    @classmethod
    def from_record(cls, record: PartnerRecord) -> Principal:
        return cls(
            partner_id=record.partner_id,
            name=record.name,
            role=Role(record.role),
            identifiers=frozenset(record.identifiers),
        )

    @property
    def visibility(self) -> Visibility:
        if self.role is Role.PARTNER:
            return Visibility.for_partner(self.partner_id, self.identifiers)
        return Visibility.everything()


PRINCIPAL = web.RequestKey("principal", Principal)


class TokenCache:
    """Principals of recently presented tokens, by token hash, each kept for ``ttl`` seconds.

    Every authenticated request resolves its token; without this each one costs a store call
    (a thread hop on SQLite, a round trip on MongoDB). Only token hashes are kept, never
    tokens, and only valid tokens (an unknown token must start working the moment it is
    issued). A revocation through this process drops the partner's entries at once (see
    :func:`invalidate_on_revoke`); one made by another process (``dscsa partners revoke``)
    takes effect within ``ttl``.
    """

    def __init__(
        self, ttl: float = 5.0, size: int = 1024, clock: Callable[[], float] = time.monotonic
    ) -> None:
        self.ttl = ttl
        self.size = size
        self.clock = clock
        self._entries: OrderedDict[str, tuple[float, Principal]] = OrderedDict()
        # Bumped by every invalidation: a lookup that began before it must not refill.
        self.generation = 0

    def get(self, token_hash: str) -> Principal | None:
        entry = self._entries.get(token_hash)
        if entry is None:
            return None
        if self.clock() >= entry[0]:
            del self._entries[token_hash]
            return None
        return entry[1]

    def put(self, token_hash: str, principal: Principal, generation: int) -> None:
        """Keep ``principal`` unless an invalidation happened since ``generation`` was read."""
        if generation != self.generation:
            return
        self._entries[token_hash] = (self.clock() + self.ttl, principal)
        self._entries.move_to_end(token_hash)
        while len(self._entries) > self.size:
            self._entries.popitem(last=False)

    def forget_partner(self, partner_id: str) -> None:
        self.generation += 1
        for token_hash, (_, principal) in list(self._entries.items()):
            if principal.partner_id == partner_id:
                del self._entries[token_hash]

    def __len__(self) -> int:
        return len(self._entries)


TOKEN_CACHE = web.AppKey("token_cache", TokenCache)


def invalidate_on_revoke(store: EventStore, cache: TokenCache) -> Callable[[], None]:
    """Make ``store.revoke_partner`` drop the partner from ``cache`` before and after it runs.

    The store adapters know nothing of the cache, so this instance's method is wrapped;
    the returned function undoes it (when the app closes). Forgetting before the write stops
    requests racing the revocation from being served from the cache; forgetting after it
    (with the generation bump) stops a lookup that read the old record from refilling it.
    """
    revoke = store.revoke_partner

    async def revoke_partner(partner_id: str, at: datetime) -> bool:
        cache.forget_partner(partner_id)
        try:
            return await revoke(partner_id, at)
        finally:
            cache.forget_partner(partner_id)

    store.revoke_partner = revoke_partner  # type: ignore[method-assign]

    def undo() -> None:
        store.revoke_partner = revoke  # type: ignore[method-assign]

    return undo


async def principal_for_token_hash(app: web.Application, token_hash: str) -> Principal | None:
    """The valid (known, not revoked) principal holding this token hash, else None.

    The one lookup every bearer-token and session request goes through: from the app's
    :class:`TokenCache` when it has one, else from the store.
    """
    cache = app.get(TOKEN_CACHE)
    if cache is not None and (principal := cache.get(token_hash)) is not None:
        return principal
    generation = cache.generation if cache is not None else 0
    record = await app[STORE].get_partner_by_token_hash(token_hash)
    # The lookup is by hash; compare again in constant time so a lax store index cannot match.
    if (
        record is None
        or record.revoked_at is not None
        or not hmac.compare_digest(record.token_hash, token_hash)
    ):
        return None
    principal = Principal.from_record(record)
    if cache is not None:
        cache.put(token_hash, principal, generation)
    return principal


def principal_of(request: web.Request) -> Principal:
    return request[PRINCIPAL]


def require_role(request: web.Request, *roles: Role) -> Principal:
    principal = principal_of(request)
    if principal.role not in roles:
        raise web.HTTPForbidden(text=f"this needs the role {' or '.join(roles)}")
    return principal


def require_sender(principal: Principal, senders: Iterable[str]) -> None:
    """A partner may capture only documents it is the sender of; operators capture anything.

    ``senders`` are the SBDH sender identifiers, or without an SBDH the source owning
    parties of the events; any form of GLN, SGLN or PGLN is compared by its match key.
    """
    if principal.role is Role.OPERATOR:
        return
    claimed = {key for sender in senders for key in party_keys(sender)}
    if principal.role is Role.AUDITOR or not claimed or claimed.isdisjoint(principal.identifiers):
        raise web.HTTPForbidden(text="the document's sender is not one of your identifiers")


def _bearer_token(request: web.Request) -> str:
    scheme, _, token = request.headers.get("Authorization", "").partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        raise web.HTTPUnauthorized(
            text="an Authorization: Bearer token is required",
            headers={"WWW-Authenticate": 'Bearer realm="dscsa"'},
        )
    return token.strip()


async def _authenticate(request: web.Request) -> Principal:
    principal = await principal_for_token_hash(request.app, hash_token(_bearer_token(request)))
    if principal is None:
        raise web.HTTPUnauthorized(
            text="unknown or revoked token",
            headers={"WWW-Authenticate": 'Bearer realm="dscsa", error="invalid_token"'},
        )
    return principal


Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


@web.middleware
async def auth_middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
    if request.path not in _PUBLIC_PATHS:
        request[PRINCIPAL] = await _authenticate(request)
    return await handler(request)
