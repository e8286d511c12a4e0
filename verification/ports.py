"""What the requestor needs from outside: a lookup directory and a log of every exchange."""

from __future__ import annotations

import os
import time
from dataclasses import dataclass, field
from datetime import datetime
from enum import StrEnum
from typing import Any, Protocol

__all__ = [
    "Direction",
    "ExchangeLog",
    "LookupDirectory",
    "ResponderEndpoint",
    "VerificationLogEntry",
    "new_entry_id",
]


@dataclass(frozen=True, slots=True)
class ResponderEndpoint:
    """Where to send a GTIN's verification requests, and the headers that authenticate us.

    ``headers`` hold secrets: they are excluded from the repr and never logged.
    """

    responder_id: str
    base_url: str
    headers: dict[str, str] = field(default_factory=dict, repr=False)


class LookupDirectory(Protocol):
    async def resolve(self, gtin: str) -> ResponderEndpoint | None:
        """The responder of a GTIN-14, or None when the directory does not know it."""
        ...


class Direction(StrEnum):
    INBOUND = "inbound"
    OUTBOUND = "outbound"


@dataclass(frozen=True, slots=True)
class VerificationLogEntry:
    """One verification exchange as it happened; never changed once recorded.

    ``requestor`` is who asked (partner id inbound, ``self`` outbound), ``responder`` who
    answered (us inbound, the responder id outbound). ``status`` is the HTTP status (0 when
    no response came); ``answer`` is the response body when there was one.
    """

    entry_id: str
    direction: Direction
    time: datetime
    requestor: str
    responder: str
    req_gln: str | None
    corr_uuid: str | None
    gtin: str | None
    serial: str | None
    lot: str | None
    expiry: str | None
    context: str | None
    status: int
    verified: bool | None
    failure_reason: str | None
    additional_info: str | None
    latency_ms: float
    answer: dict[str, Any] | None = None
    error: str | None = None
    # 1.3 extras and protocol details as received: version header, possession attestation,
    # contact, credential scheme outcome.
    extras: dict[str, str] = field(default_factory=dict)


def new_entry_id() -> str:
    """A log entry's id: 32 hex digits, the milliseconds since 1970 then 80 random bits.

    Time first, so ids sort roughly by time and a log's unique index on them grows at its
    end instead of touching a random page per entry; and it is cheaper than ``uuid4``.
    """
    return f"{time.time_ns() // 1_000_000:012x}{os.urandom(10).hex()}"


class ExchangeLog(Protocol):
    # What append answers (a log's digest of the stored entry) is not the requestor's concern.
    async def append(self, entry: VerificationLogEntry) -> object: ...
