"""Bearer-token authentication, roles, and what each principal may capture and read."""

from __future__ import annotations

import hmac
from collections.abc import Awaitable, Callable, Iterable
from dataclasses import dataclass
from enum import StrEnum

from aiohttp import web

from service.partners import hash_token, party_keys
from service.state import STORE
from service.store import PartnerRecord, Visibility

__all__ = [
    "PRINCIPAL",
    "Principal",
    "Role",
    "auth_middleware",
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
    token_hash = hash_token(_bearer_token(request))
    record = await request.app[STORE].get_partner_by_token_hash(token_hash)
    # The lookup is by hash; compare again in constant time so a lax store index cannot match.
    if (
        record is None
        or record.revoked_at is not None
        or not hmac.compare_digest(record.token_hash, token_hash)
    ):
        raise web.HTTPUnauthorized(
            text="unknown or revoked token",
            headers={"WWW-Authenticate": 'Bearer realm="dscsa", error="invalid_token"'},
        )
    return Principal.from_record(record)


Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


@web.middleware
async def auth_middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
    if request.path not in _PUBLIC_PATHS:
        request[PRINCIPAL] = await _authenticate(request)
    return await handler(request)
