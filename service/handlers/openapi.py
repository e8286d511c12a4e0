"""``GET /openapi.yaml``: our own OpenAPI document, served as written."""

from __future__ import annotations

from pathlib import Path

from aiohttp import web

__all__ = ["OPENAPI_PATH", "get_openapi"]

OPENAPI_PATH = Path(__file__).resolve().parents[2] / "schemas" / "openapi.yaml"


async def get_openapi(request: web.Request) -> web.FileResponse:
    return web.FileResponse(OPENAPI_PATH, headers={"Content-Type": "application/yaml"})
