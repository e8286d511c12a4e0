"""Typed keys of the application state shared by the app factory, middlewares and handlers."""

from __future__ import annotations

from aiohttp import web
from apscheduler.schedulers.asyncio import AsyncIOScheduler  # type: ignore[import-untyped]

from service.capture import CaptureTracker
from service.capture_hooks import CapturePolicy
from service.settings import Settings
from service.store import EventStore

__all__ = ["CAPTURES", "CAPTURE_POLICY", "SCHEDULER", "SETTINGS", "STORE"]

SETTINGS = web.AppKey("settings", Settings)
STORE = web.AppKey("store", EventStore)
SCHEDULER = web.AppKey("scheduler", AsyncIOScheduler)
CAPTURES = web.AppKey("captures", CaptureTracker)
CAPTURE_POLICY = web.AppKey("capture_policy", CapturePolicy)
