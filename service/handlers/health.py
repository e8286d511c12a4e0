"""``GET /health``: whether the store answers, and which version is running (no auth)."""

from __future__ import annotations

from aiohttp import web

from service.settings import package_version
from service.state import STORE

__all__ = ["get_health"]


async def get_health(request: web.Request) -> web.Response:
    try:
        reachable = await request.app[STORE].ping()
    except Exception:
        reachable = False
    body = {
        "status": "ok" if reachable else "unavailable",
        "store": "reachable" if reachable else "unreachable",
        "version": package_version(),
    }
    return web.json_response(body, status=200 if reachable else 503)
