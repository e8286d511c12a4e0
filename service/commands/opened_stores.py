"""Stores a command opens for its run, each closed in reverse order when the run ends."""

from __future__ import annotations

from contextlib import AsyncExitStack
from typing import Protocol, TypeVar

__all__ = ["opened"]


class _Openable(Protocol):
    async def open(self) -> None: ...
    async def close(self) -> None: ...


_S = TypeVar("_S", bound=_Openable)


async def opened(stack: AsyncExitStack, store: _S) -> _S:
    """Open ``store`` and have ``stack`` close it; returns the store."""
    await store.open()
    stack.push_async_callback(store.close)
    return store
