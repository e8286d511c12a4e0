"""The JSON-LD writer's memoised timestamps are json_time's, whatever the zone of equal times."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone

from hypothesis import given, settings
from hypothesis import strategies as st

from epcis.jsonld_writer import _time, json_time

_zones = st.sampled_from(
    [UTC, timezone(timedelta(hours=1)), timezone(timedelta(hours=-5, minutes=-30)), None]
)


@settings(max_examples=200, deadline=None)
@given(
    st.datetimes(min_value=datetime(1900, 1, 2), max_value=datetime(2200, 1, 1)),
    st.lists(_zones, min_size=1, max_size=6),
)
def test_memoised_time_is_json_time_in_every_zone(moment: datetime, zones: list[object]) -> None:
    # One instant seen in several zones: equal datetimes (equal hashes) written differently.
    for zone in zones:
        value = moment if zone is None else moment.replace(tzinfo=UTC).astimezone(zone)  # type: ignore[arg-type]
        assert _time(value) == json_time(value)


def test_equal_instants_in_two_zones_keep_their_own_offsets() -> None:
    utc = datetime(2026, 11, 27, 10, 0, tzinfo=UTC)
    later = utc.astimezone(timezone(timedelta(hours=2)))
    assert utc == later
    assert hash(utc) == hash(later)
    assert _time(utc) == "2026-11-27T10:00:00.000Z"
    assert _time(later) == "2026-11-27T12:00:00.000+02:00"
    assert _time(utc) == "2026-11-27T10:00:00.000Z"
