"""Web session cookies, the CSRF check, plain words for answers, and the dashboard chart."""

from __future__ import annotations

import stat
import time
from datetime import date, timedelta
from pathlib import Path

import pytest
from aiohttp import web
from aiohttp.test_utils import make_mocked_request
from pydantic import SecretStr

from service.settings import Settings
from service.state import SETTINGS
from service.web.dashboard import DayCounts, chart
from service.web.sessions import (
    COOKIE_NAME,
    CsrfError,
    Session,
    SessionKeeper,
    check_csrf,
    write_session,
)
from service.web.words import failure_words, info_words, step_label
from verification.messages import AdditionalInfo, FailureReason


def test_secret_is_made_once_and_readable_by_the_owner_only(tmp_path: Path) -> None:
    first = SessionKeeper.for_data_dir(tmp_path)
    second = SessionKeeper.for_data_dir(tmp_path)
    mode = stat.S_IMODE((tmp_path / "web-session.key").stat().st_mode)
    assert mode == 0o600
    cookie = first.encode(Session.signed_in("ab" * 32))
    assert second.decode(cookie) == first.decode(cookie)


def test_another_instance_cannot_read_our_cookie(tmp_path: Path) -> None:
    ours = SessionKeeper.for_data_dir(tmp_path / "a")
    theirs = SessionKeeper.for_data_dir(tmp_path / "b")
    assert theirs.decode(ours.encode(Session.anonymous())) is None


@pytest.mark.parametrize(
    "spoil",
    [
        lambda v: v.replace(".", ".x", 1),
        lambda v: "e30" + v[3:],
        lambda v: v.partition(".")[0],
        lambda v: "!!!." + v.partition(".")[2],
    ],
)
def test_tampered_cookies_are_rejected(tmp_path: Path, spoil: object) -> None:
    keeper = SessionKeeper.for_data_dir(tmp_path)
    value = keeper.encode(Session.signed_in("cd" * 32))
    assert keeper.decode(spoil(value)) is None  # type: ignore[operator]


def test_expired_cookie_is_no_session(tmp_path: Path) -> None:
    keeper = SessionKeeper.for_data_dir(tmp_path)
    value = keeper.encode(Session("token", int(time.time()) + 10, "ef" * 32))
    assert keeper.decode(value) is not None
    assert keeper.decode(value, now=time.time() + 11) is None


def _app(tmp_path: Path) -> web.Application:
    app = web.Application()
    app[SETTINGS] = Settings(
        store=SecretStr(f"sqlite:///{tmp_path}/e.sqlite3"), data_dir=tmp_path / "data"
    )
    return app


@pytest.mark.parametrize("scheme", ["http", "https"])
def test_cookie_is_secure_over_tls_and_always_httponly_strict(tmp_path: Path, scheme: str) -> None:
    request = make_mocked_request("GET", "/ui/", app=_app(tmp_path)).clone(scheme=scheme)
    response = web.Response()
    write_session(request, response, Session.anonymous())
    cookie = response.cookies[COOKIE_NAME]
    assert cookie["httponly"] is True
    assert cookie["samesite"] == "Strict"
    assert bool(cookie["secure"]) is (scheme == "https")


def test_csrf_check(tmp_path: Path) -> None:
    app = _app(tmp_path)
    session = Session.anonymous()
    keeper = SessionKeeper.for_data_dir((tmp_path / "data").resolve())
    request = make_mocked_request(
        "POST", "/ui/verify", app=app, headers={"Cookie": f"{COOKIE_NAME}={keeper.encode(session)}"}
    )
    check_csrf(request, session.csrf)
    for wrong in (None, "", session.csrf + "x", Session.anonymous().csrf):
        with pytest.raises(CsrfError):
            check_csrf(request, wrong)


def test_every_lmvs_answer_has_plain_words() -> None:
    for reason in FailureReason:
        words = failure_words(reason.value)
        assert words
        assert "_" not in words
    for info in AdditionalInfo:
        assert info_words(info.value)
    assert failure_words(None) is None
    assert "Odd_value" in (failure_words("Odd_value") or "")
    assert step_label("shipping", "ObjectEvent", "OBSERVE") == "Shipped"
    assert step_label(None, "AggregationEvent", "ADD") == "AggregationEvent ADD"


def test_chart_scales_to_the_busiest_day_and_labels_today() -> None:
    today = date(2026, 11, 27)
    days = [DayCounts(today - timedelta(days=29 - n), n, 2 * n) for n in range(30)]
    drawn = chart(days)
    assert len(drawn.bars) == 60
    tallest = max(drawn.bars, key=lambda b: b.height)
    assert tallest.series == "verifications"
    assert tallest.label == "2026-11-27: 58 verifications"
    # 58 rounds up to a scale of 100: the tallest bar fills 58% of the plot.
    plot = drawn.baseline - drawn.ticks[-1][0]
    assert tallest.height == pytest.approx(plot * 0.58)
    assert drawn.labels[-1][1] == "Nov 27"
    assert all(bar.y + bar.height == pytest.approx(drawn.baseline) for bar in drawn.bars)


def test_chart_of_an_empty_month_draws_no_bars_above_zero() -> None:
    days = [DayCounts(date(2026, 1, 1) + timedelta(days=n), 0, 0) for n in range(30)]
    drawn = chart(days)
    assert all(bar.height == 0 for bar in drawn.bars)
    assert drawn.ticks[-1][1] == 1
