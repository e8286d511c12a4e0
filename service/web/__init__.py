"""Server-rendered web pages for pharmacists and compliance officers (under ``/ui``)."""

from __future__ import annotations

from aiohttp import web

from service.web import dashboard, exception_pages, export_pages, signin, trace_page, verify_page
from service.web.rendering import PAGE_PREFIX, STATIC_DIR, redirect, render
from service.web.sessions import current_principal

__all__ = ["PAGE_PREFIX", "is_page_path", "web_routes"]


def is_page_path(path: str) -> bool:
    """Paths the pages serve: they sign people in with a session, not a bearer token."""
    return path == PAGE_PREFIX or path.startswith(f"{PAGE_PREFIX}/")


async def _to_pages(request: web.Request) -> web.StreamResponse:
    return redirect(f"{PAGE_PREFIX}/")


async def _not_found(request: web.Request) -> web.StreamResponse:
    principal = await current_principal(request)
    return render(
        request,
        "error.html",
        principal=principal,
        status=404,
        message="There is no such page. Use the menu, or start again from the first page.",
    )


def web_routes() -> list[web.AbstractRouteDef]:
    p = PAGE_PREFIX
    return [
        web.get(p, _to_pages, allow_head=False),
        web.get(f"{p}/", dashboard.get_dashboard, allow_head=False),
        web.get(f"{p}/sign-in", signin.get_sign_in, allow_head=False),
        web.post(f"{p}/sign-in", signin.post_sign_in),
        web.post(f"{p}/sign-out", signin.post_sign_out),
        web.get(f"{p}/verify", verify_page.get_verify, allow_head=False),
        web.post(f"{p}/verify", verify_page.post_verify),
        web.get(f"{p}/trace", trace_page.get_trace, allow_head=False),
        web.get(f"{p}/exceptions", exception_pages.get_exceptions, allow_head=False),
        web.post(f"{p}/exceptions/{{exception_id}}/resolution", exception_pages.post_resolution),
        web.get(f"{p}/exports", export_pages.get_exports, allow_head=False),
        web.post(f"{p}/exports", export_pages.post_export),
        web.get(f"{p}/exports/{{export_id}}/bundle", export_pages.get_bundle, allow_head=False),
        web.static(f"{p}/static", STATIC_DIR, append_version=False),
        # Last: anything else under /ui is a page that does not exist (HTML, not JSON).
        web.route("*", f"{p}/{{tail:.*}}", _not_found),
    ]
