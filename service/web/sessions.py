"""Web sessions: an HMAC-signed cookie naming the signed-in partner, with its CSRF token.

The cookie holds the SHA-256 digest of the bearer token (the store's lookup key, which cannot
be turned back into the token), a random CSRF token and an expiry, signed with a per-instance
secret kept in the data directory. Every request looks the partner up again (through the
bearer-token cache, :func:`service.auth.principal_for_token_hash`), so a revoked token ends its
sessions at once, or within the cache's few seconds when another process revoked it. Signing
out clears the cookie; a copied cookie stays usable until it expires (at most
:data:`SESSION_LIFETIME`), the price of keeping no session table.
"""

from __future__ import annotations

import base64
import functools
import hashlib
import hmac
import json
import os
import secrets
import time
from dataclasses import dataclass
from pathlib import Path

from aiohttp import web

from service.auth import Principal, principal_for_token_hash
from service.state import SETTINGS
from service.web.errors import PageError

__all__ = [
    "COOKIE_NAME",
    "SESSION_LIFETIME",
    "CsrfError",
    "Session",
    "SessionKeeper",
    "check_csrf",
    "clear_session",
    "current_principal",
    "read_session",
    "write_session",
]

COOKIE_NAME = "dscsa_session"
SESSION_LIFETIME = 8 * 3600
_SECRET_FILE = "web-session.key"  # noqa: S105 (a file name, not a secret)


class CsrfError(PageError):
    """A form came without the CSRF token of its session (403)."""

    def __init__(self) -> None:
        super().__init__(
            "This form is out of date or did not come from this site. Reload the page and "
            "try again.",
            status=403,
        )


@dataclass(frozen=True, slots=True)
class Session:
    """``token_hash`` is None before sign-in: the anonymous session only carries a CSRF token."""

    csrf: str
    expires: int
    token_hash: str | None = None

    @classmethod
    def anonymous(cls) -> Session:
        return cls(secrets.token_urlsafe(32), int(time.time()) + SESSION_LIFETIME)

    @classmethod
    def signed_in(cls, token_hash: str) -> Session:
        # A fresh CSRF token at sign-in: one planted before sign-in is worth nothing after.
        return cls(secrets.token_urlsafe(32), int(time.time()) + SESSION_LIFETIME, token_hash)


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def _unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


class SessionKeeper:
    """Signs and checks session cookies with the instance's secret."""

    def __init__(self, secret: bytes) -> None:
        self._secret = secret

    @classmethod
    def for_data_dir(cls, data_dir: Path) -> SessionKeeper:
        """The keeper of this instance: its secret is made on first use, readable by us only."""
        path = data_dir / _SECRET_FILE
        if not path.exists():
            data_dir.mkdir(parents=True, exist_ok=True)
            try:
                descriptor = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
            except FileExistsError:
                pass  # another worker made it first; use theirs
            else:
                with os.fdopen(descriptor, "wb") as handle:
                    handle.write(secrets.token_bytes(32))
        return cls(path.read_bytes())

    def _signature(self, payload: bytes) -> bytes:
        return hmac.new(self._secret, payload, hashlib.sha256).digest()

    def encode(self, session: Session) -> str:
        payload = json.dumps(
            {"c": session.csrf, "e": session.expires, "p": session.token_hash},
            separators=(",", ":"),
        ).encode()
        return f"{_b64(payload)}.{_b64(self._signature(payload))}"

    def decode(self, value: str, now: float | None = None) -> Session | None:
        """The session of a cookie value; None if forged, malformed or expired."""
        body, _, signature = value.partition(".")
        try:
            payload, mac = _unb64(body), _unb64(signature)
        except ValueError:
            return None
        if not hmac.compare_digest(mac, self._signature(payload)):
            return None
        try:
            data = json.loads(payload)
            session = Session(str(data["c"]), int(data["e"]), data["p"])
        except (ValueError, KeyError, TypeError):
            return None
        if session.expires <= (time.time() if now is None else now):
            return None
        return session


@functools.lru_cache(maxsize=8)
def _keeper_for(data_dir: Path) -> SessionKeeper:
    return SessionKeeper.for_data_dir(data_dir)


def _keeper(app: web.Application) -> SessionKeeper:
    # Keyed by the data directory: the app's state is frozen once it runs.
    return _keeper_for(app[SETTINGS].data_dir.resolve())


_CACHE_KEY = web.RequestKey("web_session", Session)


def read_session(request: web.Request) -> Session | None:
    cached: Session | None = request.get(_CACHE_KEY)
    if cached is not None:
        return cached
    value = request.cookies.get(COOKIE_NAME)
    session = _keeper(request.app).decode(value) if value else None
    if session is not None:
        request[_CACHE_KEY] = session
    return session


def write_session(request: web.Request, response: web.StreamResponse, session: Session) -> None:
    response.set_cookie(
        COOKIE_NAME,
        _keeper(request.app).encode(session),
        max_age=max(0, session.expires - int(time.time())),
        path="/",
        httponly=True,
        secure=request.secure,
        samesite="Strict",
    )
    request[_CACHE_KEY] = session


def clear_session(request: web.Request, response: web.StreamResponse) -> None:
    response.del_cookie(COOKIE_NAME, path="/", secure=request.secure, samesite="Strict")


async def current_principal(request: web.Request) -> Principal | None:
    """Who the session belongs to, looked up afresh (revoked tokens end their sessions)."""
    session = read_session(request)
    if session is None or session.token_hash is None:
        return None
    return await principal_for_token_hash(request.app, session.token_hash)


def check_csrf(request: web.Request, submitted: object) -> None:
    session = read_session(request)
    if (
        session is None
        or not isinstance(submitted, str)
        or not hmac.compare_digest(submitted.encode(), session.csrf.encode())
    ):
        raise CsrfError
