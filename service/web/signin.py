"""Signing in with a partner or operator token, and signing out."""

from __future__ import annotations

from aiohttp import web

from service.auth import Principal, Role, principal_for_token_hash
from service.partners import hash_token
from service.web.rendering import PAGE_PREFIX, home_for, page, redirect, render
from service.web.sessions import (
    CsrfError,
    Session,
    check_csrf,
    clear_session,
    current_principal,
    read_session,
    write_session,
)

__all__ = ["get_sign_in", "post_sign_in", "post_sign_out"]


def _safe_next(target: str | None) -> str | None:
    # Only our own pages: an open redirect would let a link send people anywhere after sign-in.
    if target and target.startswith(f"{PAGE_PREFIX}/") and not target.startswith("//"):
        return target
    return None


def _form(
    request: web.Request,
    *,
    error: str | None = None,
    status: int = 200,
    next_page: str | None = None,
) -> web.Response:
    session = read_session(request)
    fresh = session is None
    if session is None:
        session = Session.anonymous()
    response = render(
        request,
        "signin.html",
        status=status,
        error=error,
        next=_safe_next(next_page or request.query.get("next")) or "",
        form_csrf=session.csrf,
    )
    if fresh:
        write_session(request, response, session)
    return response


async def get_sign_in(request: web.Request) -> web.StreamResponse:
    principal = await current_principal(request)
    if principal is not None:
        return redirect(home_for(principal))
    return _form(request)


async def _principal_of_token(request: web.Request, token: str) -> Principal | None:
    return await principal_for_token_hash(request.app, hash_token(token))


async def post_sign_in(request: web.Request) -> web.StreamResponse:
    form = await request.post()
    target = str(form.get("next", ""))
    try:
        check_csrf(request, form.get("csrf"))
    except CsrfError as error:
        return _form(request, error=error.message, status=403, next_page=target)
    field = form.get("token")
    token = field.strip() if isinstance(field, str) else ""
    principal = await _principal_of_token(request, token) if token else None
    if principal is None:
        return _form(
            request,
            error="That token is not known or has been revoked.",
            status=401,
            next_page=target,
        )
    response = redirect(_safe_next(target) or home_for(principal))
    write_session(request, response, Session.signed_in(hash_token(token)))
    return response


@page(*Role)
async def post_sign_out(request: web.Request, principal: Principal) -> web.StreamResponse:
    response = redirect(f"{PAGE_PREFIX}/sign-in")
    clear_session(request, response)
    return response
