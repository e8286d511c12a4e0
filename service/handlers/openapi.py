"""``GET /openapi.yaml``: our own OpenAPI document, served as written."""

from __future__ import annotations

from aiohttp import web

from epcis.validation import schema_dir

__all__ = ["OPENAPI_PATH", "get_openapi"]

# The same lookup as the XSDs: schemas/ in a checkout, epcis/schemas/ in an installed wheel.
OPENAPI_PATH = schema_dir() / "openapi.yaml"


async def get_openapi(request: web.Request) -> web.FileResponse:
    return web.FileResponse(OPENAPI_PATH, headers={"Content-Type": "application/yaml"})
