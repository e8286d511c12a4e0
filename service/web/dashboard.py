"""The Dashboard: what matters today, and the last 30 days as an inline SVG bar chart."""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta

from aiohttp import web

from service.auth import Principal, Role
from service.exception_records import ExceptionStatus
from service.export_store import EXPORTS
from service.exports import ExportStatus
from service.handlers.traceability import TRACEABILITY
from service.handlers.verification import VERIFICATION
from service.state import STORE
from service.store import CaptureJob
from service.traceability_store import ExceptionFilter
from service.verification_log import LogFilter
from service.web.rendering import page, render
from verification.ports import VerificationLogEntry

__all__ = ["Bar", "Chart", "DayCounts", "chart", "get_dashboard", "verification_outcome"]

DAYS = 30
_WIDTH, _HEIGHT, _LEFT, _RIGHT, _BOTTOM, _TOP = 720, 220, 44, 24, 28, 12


@dataclass(frozen=True, slots=True)
class DayCounts:
    day: date
    events: int
    verifications: int


@dataclass(frozen=True, slots=True)
class Bar:
    x: float
    y: float
    width: float
    height: float
    series: str
    label: str


@dataclass(frozen=True, slots=True)
class Chart:
    width: int
    height: int
    bars: tuple[Bar, ...]
    ticks: tuple[tuple[float, int], ...]  # (y, value) of the horizontal grid lines
    right: int  # where the grid lines end
    labels: tuple[tuple[float, str], ...]  # (x, text) under the bars, every week
    baseline: float
    left: int


def verification_outcome(entry: VerificationLogEntry) -> str:
    if entry.verified is True:
        return "verified"
    if entry.verified is False:
        return "not verified"
    return "no answer"


def _nice_ceiling(value: int) -> int:
    step = 1
    while step * 10 < value:
        step *= 10
    for factor in (1, 2, 5, 10):
        if value <= step * factor:
            return step * factor
    return step * 10


def chart(days: Sequence[DayCounts]) -> Chart:
    """Two bars a day (events captured, verifications), scaled to the busiest day."""
    top = _nice_ceiling(max([1, *(max(d.events, d.verifications) for d in days)]))
    plot_height = _HEIGHT - _BOTTOM - _TOP
    slot = (_WIDTH - _LEFT - _RIGHT) / max(1, len(days))
    bar = slot * 0.38
    baseline = _HEIGHT - _BOTTOM
    bars: list[Bar] = []
    labels: list[tuple[float, str]] = []
    for index, counts in enumerate(days):
        x = _LEFT + index * slot + slot * 0.1
        for offset, series, value in (
            (0.0, "events", counts.events),
            (bar, "verifications", counts.verifications),
        ):
            height = plot_height * value / top
            label = f"{counts.day.isoformat()}: {value} {series}"
            bars.append(Bar(x + offset, baseline - height, bar, height, series, label))
        # Weekly labels counted back from today, so the newest day is always labelled.
        if (len(days) - 1 - index) % 7 == 0:
            labels.append((x + bar, counts.day.strftime("%b %d")))
    ticks = tuple((baseline - plot_height * part / 4, top * part // 4) for part in range(5))
    return Chart(
        _WIDTH, _HEIGHT, tuple(bars), ticks, _WIDTH - _RIGHT, tuple(labels), baseline, _LEFT
    )


def _per_day(moments: Iterable[tuple[datetime, int]], first: date) -> Counter[date]:
    counts: Counter[date] = Counter()
    for moment, amount in moments:
        day = moment.astimezone(UTC).date()
        if day >= first:
            counts[day] += amount
    return counts


async def _verifications(app: web.Application, since: datetime) -> list[VerificationLogEntry]:
    services = app.get(VERIFICATION)
    if services is None:
        return []
    return await services.log.query(LogFilter(since=since, limit=100_000))


def _captures_today(jobs: Sequence[CaptureJob], today: date) -> dict[str, int]:
    todays = [j for j in jobs if j.created_at.astimezone(UTC).date() == today]
    return {
        "documents": len(todays),
        "events": sum(j.captured for j in todays),
        "failed": sum(1 for j in todays if not j.running and not j.success),
    }


@page(Role.OPERATOR, Role.AUDITOR)
async def get_dashboard(request: web.Request, principal: Principal) -> web.StreamResponse:
    app = request.app
    now = datetime.now(UTC)
    today = now.date()
    first = today - timedelta(days=DAYS - 1)
    jobs = await app[STORE].list_capture_jobs(limit=10_000)
    entries = await _verifications(app, datetime.combine(first, time(), tzinfo=UTC))
    open_exceptions = await app[TRACEABILITY].list_exceptions(
        ExceptionFilter(status=ExceptionStatus.OPEN, limit=100_000)
    )
    exports = app.get(EXPORTS)
    requests = await exports.list_requests(open_only=True) if exports is not None else []
    events = _per_day(((j.created_at, j.captured) for j in jobs), first)
    checks = _per_day(((e.time, 1) for e in entries), first)
    days = [
        DayCounts(day, events[day], checks[day])
        for day in (first + timedelta(days=n) for n in range(DAYS))
    ]
    todays_checks = [e for e in entries if e.time.astimezone(UTC).date() == today]
    return render(
        request,
        "dashboard.html",
        principal=principal,
        today=today,
        captures=_captures_today(jobs, today),
        verifications=Counter(verification_outcome(e) for e in todays_checks),
        verification_total=len(todays_checks),
        exceptions=Counter(r.type.value for r in open_exceptions).most_common(),
        exception_total=len(open_exceptions),
        exports_due=[r for r in requests if r.due_at.astimezone(UTC).date() <= today],
        exports_open=len(requests),
        exports_failed=sum(1 for r in requests if r.status is ExportStatus.FAILED),
        chart=chart(days),
        days=days,
        now=now,
    )
