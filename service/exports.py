"""Export requests from regulators and trading partners: who asks, why, by when, and for what."""

from __future__ import annotations

import re
import uuid
from dataclasses import dataclass, field, replace
from datetime import UTC, date, datetime, time, timedelta
from enum import StrEnum
from typing import Any

from epcis.errors import EPCISError

__all__ = [
    "DEADLINE_WARNING",
    "ExportRequest",
    "ExportRequestError",
    "ExportScope",
    "ExportStatus",
    "RequesterKind",
    "ScopeKind",
    "add_business_days",
    "default_due",
    "due_soon",
    "new_request",
    "parse_moment",
    "request_from_dict",
    "request_to_dict",
    "scope_from_dict",
    "scope_to_dict",
]

# A request is flagged when less than this is left before its due time.
DEADLINE_WARNING = timedelta(hours=4)


class ExportRequestError(EPCISError):
    """A malformed export request (400)."""

    problem_type = "epcisException:ValidationException"
    status = 400


class RequesterKind(StrEnum):
    FDA = "fda"
    STATE = "state"
    TRADING_PARTNER = "trading_partner"


class ScopeKind(StrEnum):
    SERIALS = "serials"
    LOT = "lot"
    GTIN = "gtin"
    PARTNER = "partner"


class ExportStatus(StrEnum):
    PENDING = "pending"
    RUNNING = "running"
    READY = "ready"
    FAILED = "failed"


_GTIN = re.compile(r"^\d{14}$")
_GLN = re.compile(r"^\d{13}$")


@dataclass(frozen=True, slots=True)
class ExportScope:
    """Serials; a lot (GTIN + lot); a GTIN and date range; or a partner GLN and date range.

    Date ranges are event times ``date_from`` inclusive to ``date_to`` exclusive.
    """

    kind: ScopeKind
    serials: tuple[str, ...] = ()
    gtin: str | None = None
    lot: str | None = None
    partner_gln: str | None = None
    date_from: datetime | None = None
    date_to: datetime | None = None

    def __post_init__(self) -> None:
        problem = _scope_problem(self)
        if problem:
            raise ExportRequestError(problem)

    def describe(self) -> str:
        if self.kind is ScopeKind.SERIALS:
            return f"{len(self.serials)} serial(s): {', '.join(self.serials[:5])}" + (
                ", ..." if len(self.serials) > 5 else ""
            )
        if self.kind is ScopeKind.LOT:
            return f"lot {self.lot} of GTIN {self.gtin}"
        span = f"from {_iso(self.date_from)} to {_iso(self.date_to)}"
        if self.kind is ScopeKind.GTIN:
            return f"GTIN {self.gtin} {span}"
        return f"trading partner {self.partner_gln} {span}"


def _scope_problem(scope: ExportScope) -> str | None:
    kind = scope.kind
    if kind is ScopeKind.SERIALS:
        return None if scope.serials else "a serials scope needs at least one serial"
    if kind in (ScopeKind.LOT, ScopeKind.GTIN) and not _GTIN.match(scope.gtin or ""):
        return "the scope needs a 14-digit GTIN"
    if kind is ScopeKind.LOT:
        return None if scope.lot else "a lot scope needs a lot number"
    if kind is ScopeKind.PARTNER and not _GLN.match(scope.partner_gln or ""):
        return "a partner scope needs the partner's 13-digit GLN"
    if scope.date_from is None or scope.date_to is None:
        return f"a {kind.value} scope needs a date range (from and to)"
    if scope.date_from >= scope.date_to:
        return "the date range is empty: 'from' must be before 'to'"
    return None


@dataclass(frozen=True, slots=True)
class ExportRequest:
    """One request and, once built, its bundle; the status fields are the only ones updated."""

    export_id: str
    requester_kind: RequesterKind
    requester: str
    reason: str
    incident_number: str | None  # Form FDA 3911 incident number, if any
    scope: ExportScope
    created_at: datetime
    created_by: str
    due_at: datetime
    status: ExportStatus = ExportStatus.PENDING
    finished_at: datetime | None = None
    bundle_sha256: str | None = None
    bundle_size: int | None = None
    error: str | None = None
    flagged_at: datetime | None = None
    summary: dict[str, Any] = field(default_factory=dict)

    def with_status(self, status: ExportStatus, **changes: Any) -> ExportRequest:
        return replace(self, status=status, **changes)


def add_business_days(moment: datetime, days: int) -> datetime:
    """``days`` business days (Monday to Friday) after ``moment``, at the same time of day.

    Federal holidays are not skipped: a due time is a deadline, and counting a holiday as a
    business day only ever makes it earlier, never late.
    """
    result = moment
    remaining = days
    while remaining > 0:
        result += timedelta(days=1)
        if result.weekday() < 5:
            remaining -= 1
    return result


def default_due(created_at: datetime) -> datetime:
    """DSCSA: within one business day of the request (section 582(g)(1)(D))."""
    return add_business_days(created_at, 1)


def due_soon(request: ExportRequest, now: datetime, warning: timedelta = DEADLINE_WARNING) -> bool:
    """An unfinished request whose due time is near or past."""
    if request.status in (ExportStatus.READY,):
        return False
    return request.due_at - now <= warning


def parse_moment(text: str, *, end_of_day: bool = False) -> datetime:
    """An ISO 8601 date or date-time; a date alone means its start (or the next day's start)."""
    value = text.strip()
    try:
        if len(value) == 10:
            day = date.fromisoformat(value)
            moment = datetime.combine(day, time(), tzinfo=UTC)
            return moment + timedelta(days=1) if end_of_day else moment
        parsed = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        raise ExportRequestError(f"not an ISO 8601 date or time: {text!r}") from None
    if parsed.tzinfo is None:
        raise ExportRequestError(f"give a time zone (e.g. Z) with {text!r}")
    return parsed.astimezone(UTC)


def new_request(
    *,
    scope: ExportScope,
    requester_kind: RequesterKind | str,
    requester: str,
    reason: str,
    created_by: str,
    incident_number: str | None = None,
    due_at: datetime | None = None,
    now: datetime | None = None,
) -> ExportRequest:
    created = (now or datetime.now(UTC)).astimezone(UTC)
    try:
        kind = RequesterKind(requester_kind)
    except ValueError:
        allowed = ", ".join(k.value for k in RequesterKind)
        raise ExportRequestError(f"requester kind must be one of {allowed}") from None
    if not requester.strip() or not reason.strip():
        raise ExportRequestError("say who asks (requester) and why (reason)")
    due = (due_at or default_due(created)).astimezone(UTC)
    return ExportRequest(
        export_id=uuid.uuid4().hex,
        requester_kind=kind,
        requester=requester.strip(),
        reason=reason.strip(),
        incident_number=(incident_number or "").strip() or None,
        scope=scope,
        created_at=created,
        created_by=created_by,
        due_at=due,
    )


# --- JSON forms (stores, HTTP, manifest) -----------------------------------------------------


def _iso(value: datetime | None) -> str | None:
    return value.isoformat() if value is not None else None


def _time(value: Any) -> datetime | None:
    return datetime.fromisoformat(value) if value else None


def scope_to_dict(scope: ExportScope) -> dict[str, Any]:
    return {
        "kind": scope.kind.value,
        "serials": list(scope.serials),
        "gtin": scope.gtin,
        "lot": scope.lot,
        "partner_gln": scope.partner_gln,
        "date_from": _iso(scope.date_from),
        "date_to": _iso(scope.date_to),
    }


def scope_from_dict(data: dict[str, Any]) -> ExportScope:
    try:
        kind = ScopeKind(str(data.get("kind")))
    except ValueError:
        allowed = ", ".join(k.value for k in ScopeKind)
        raise ExportRequestError(f"scope kind must be one of {allowed}") from None
    serials = data.get("serials") or ()
    if not isinstance(serials, list | tuple) or not all(isinstance(s, str) for s in serials):
        raise ExportRequestError("serials must be a list of identifiers")
    return ExportScope(
        kind=kind,
        serials=tuple(serials),
        gtin=data.get("gtin"),
        lot=data.get("lot"),
        partner_gln=data.get("partner_gln"),
        date_from=_moment_field(data.get("date_from")),
        date_to=_moment_field(data.get("date_to"), end_of_day=True),
    )


def _moment_field(value: Any, *, end_of_day: bool = False) -> datetime | None:
    if value is None:
        return None
    if not isinstance(value, str):
        raise ExportRequestError("dates are ISO 8601 strings")
    return parse_moment(value, end_of_day=end_of_day)


def request_to_dict(request: ExportRequest) -> dict[str, Any]:
    return {
        "export_id": request.export_id,
        "requester_kind": request.requester_kind.value,
        "requester": request.requester,
        "reason": request.reason,
        "incident_number": request.incident_number,
        "scope": scope_to_dict(request.scope),
        "created_at": request.created_at.isoformat(),
        "created_by": request.created_by,
        "due_at": request.due_at.isoformat(),
        "status": request.status.value,
        "finished_at": _iso(request.finished_at),
        "bundle_sha256": request.bundle_sha256,
        "bundle_size": request.bundle_size,
        "error": request.error,
        "flagged_at": _iso(request.flagged_at),
        "summary": dict(request.summary),
    }


def request_from_dict(data: dict[str, Any]) -> ExportRequest:
    created_at = _time(data["created_at"])
    due_at = _time(data["due_at"])
    assert created_at is not None
    assert due_at is not None
    return ExportRequest(
        export_id=data["export_id"],
        requester_kind=RequesterKind(data["requester_kind"]),
        requester=data["requester"],
        reason=data["reason"],
        incident_number=data.get("incident_number"),
        scope=scope_from_dict(data["scope"]),
        created_at=created_at,
        created_by=data["created_by"],
        due_at=due_at,
        status=ExportStatus(data.get("status", "pending")),
        finished_at=_time(data.get("finished_at")),
        bundle_sha256=data.get("bundle_sha256"),
        bundle_size=data.get("bundle_size"),
        error=data.get("error"),
        flagged_at=_time(data.get("flagged_at")),
        summary=dict(data.get("summary") or {}),
    )
