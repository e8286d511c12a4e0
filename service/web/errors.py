"""The one error type web pages raise: a message for people and the HTTP status to send."""

from __future__ import annotations

__all__ = ["PageError"]


class PageError(Exception):
    """Shown to the user as an error page (or beside the form that caused it)."""

    def __init__(self, message: str, *, status: int = 400) -> None:
        super().__init__(message)
        self.message = message
        self.status = status
