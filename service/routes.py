"""The whole URL map of the service in one place; it reads like the OpenAPI ``paths``."""

from __future__ import annotations

from aiohttp import web

from service.handlers import capture, events, health, openapi

__all__ = ["setup_routes"]


def setup_routes(app: web.Application) -> None:
    app.add_routes(
        [
            web.get("/health", health.get_health, allow_head=False),
            web.get("/openapi.yaml", openapi.get_openapi, allow_head=False),
            web.post("/capture", capture.capture_document),
            web.get("/capture", capture.list_capture_jobs, allow_head=False),
            web.get("/capture/{captureID}", capture.get_capture_job, allow_head=False),
            web.post("/events", capture.capture_event),
            web.get("/events", events.query_events, allow_head=False),
            web.get("/events/{eventID}", events.get_event, allow_head=False),
            web.get("/epcs/{epc:.+}/events", events.get_epc_events, allow_head=False),
        ]
    )
