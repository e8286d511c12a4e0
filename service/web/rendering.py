"""Templates (jinja2, autoescaped), the page decorator that signs people in, and page headers."""

from __future__ import annotations

import functools
from collections.abc import Awaitable, Callable
from datetime import date, datetime
from pathlib import Path
from typing import Any
from urllib.parse import quote

import jinja2
from aiohttp import web

from service.auth import Principal, Role
from service.web.errors import PageError
from service.web.sessions import Session, check_csrf, current_principal, read_session
from service.web.words import exception_label, status_label, step_label

__all__ = [
    "PAGE_PREFIX",
    "STATIC_DIR",
    "PageHandler",
    "page",
    "redirect",
    "render",
]

PAGE_PREFIX = "/ui"
STATIC_DIR = Path(__file__).parent / "static"

# Everything from this origin only; no inline script, so injected markup cannot run code.
_SECURITY_HEADERS = {
    "Content-Security-Policy": (
        "default-src 'self'; img-src 'self' data:; style-src 'self'; script-src 'self'; "
        "form-action 'self'; frame-ancestors 'none'; base-uri 'none'; object-src 'none'"
    ),
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "same-origin",
    "X-Frame-Options": "DENY",
    "Cache-Control": "no-store",
}

_NAVIGATION = (
    ("dashboard", "Dashboard", (Role.OPERATOR, Role.AUDITOR)),
    ("verify", "Verify", (Role.OPERATOR, Role.PARTNER)),
    ("trace", "Trace", (Role.OPERATOR, Role.AUDITOR, Role.PARTNER)),
    ("exceptions", "Exceptions", (Role.OPERATOR, Role.AUDITOR)),
    ("exports", "Exports", (Role.OPERATOR, Role.AUDITOR)),
)


def _when(value: datetime | None) -> str:
    if value is None:
        return "—"
    return value.strftime("%Y-%m-%d %H:%M UTC") if value.tzinfo else value.isoformat()


def _day(value: date | None) -> str:
    return value.isoformat() if value is not None else "—"


def _environment() -> jinja2.Environment:
    environment = jinja2.Environment(
        loader=jinja2.PackageLoader("service.web", "templates"),
        autoescape=True,
        undefined=jinja2.StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
    )
    environment.filters.update(
        when=_when,
        day=_day,
        status_label=status_label,
        step_label=step_label,
        exception_label=exception_label,
    )
    return environment


_TEMPLATES = _environment()


def home_for(principal: Principal) -> str:
    """Where a person lands after signing in: partners on Verify (they have no dashboard)."""
    return f"{PAGE_PREFIX}/verify" if principal.role is Role.PARTNER else f"{PAGE_PREFIX}/"


def render(
    request: web.Request,
    template: str,
    *,
    principal: Principal | None = None,
    status: int = 200,
    **context: Any,
) -> web.Response:
    session: Session | None = read_session(request)
    navigation = [
        (f"{PAGE_PREFIX}/" if key == "dashboard" else f"{PAGE_PREFIX}/{key}", label, key)
        for key, label, roles in _NAVIGATION
        if principal is not None and principal.role in roles
    ]
    text = _TEMPLATES.get_template(template).render(
        principal=principal,
        csrf=session.csrf if session else "",
        navigation=navigation,
        prefix=PAGE_PREFIX,
        **context,
    )
    return web.Response(
        text=text, status=status, content_type="text/html", headers=_SECURITY_HEADERS
    )


def redirect(location: str) -> web.Response:
    return web.Response(status=303, headers={"Location": location, **_SECURITY_HEADERS})


PageHandler = Callable[[web.Request, Principal], Awaitable[web.StreamResponse]]
Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


def _refusal(principal: Principal) -> PageError:
    return PageError(
        f"You are signed in as {principal.name} ({principal.role.value}); this page is not "
        "open to that role.",
        status=403,
    )


def page(*roles: Role) -> Callable[[PageHandler], Handler]:
    """A page for signed-in people of ``roles``: others are sent to sign in or refused;
    form posts must carry the session's CSRF token; a :class:`PageError` becomes an
    error page."""

    def wrap(handler: PageHandler) -> Handler:
        @functools.wraps(handler)
        async def run(request: web.Request) -> web.StreamResponse:
            principal = await current_principal(request)
            if principal is None:
                return redirect(f"{PAGE_PREFIX}/sign-in?next={quote(request.path_qs)}")
            try:
                if principal.role not in roles:
                    raise _refusal(principal)
                if request.method == "POST":
                    check_csrf(request, (await request.post()).get("csrf"))
                return await handler(request, principal)
            except PageError as error:
                return render(
                    request,
                    "error.html",
                    principal=principal,
                    status=error.status,
                    message=error.message,
                )

        return run

    return wrap
