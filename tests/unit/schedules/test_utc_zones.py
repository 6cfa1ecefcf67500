"""Zones whose wall clock is UTC's (``UTC_ZONES``) take a shorter walk: a wall time is its own
instant. It must answer exactly what the general walk (thresholds, gap and fold handling,
ordering) answers for the same zone."""

import copy
from datetime import UTC, datetime, timedelta, timezone
from zoneinfo import ZoneInfo, available_timezones

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from app.core.schedules.wallclock import UTC_ZONES, WallClockSchedule
from tests.unit.schedules.support import cron, rule

SCHEDULES = [
    lambda tz: cron("*/7 * * * *", tz),
    lambda tz: cron("0 9 * * 1-5", tz),
    lambda tz: cron("0 12 29 2 *", tz),
    lambda tz: cron("30 2 * * 0", tz),
    lambda tz: rule("FREQ=HOURLY;INTERVAL=5", tz),
    lambda tz: rule("FREQ=MONTHLY;BYDAY=-1FR;BYHOUR=2;BYMINUTE=30", tz),
    lambda tz: rule("DTSTART:20260101T000000Z\nRRULE:FREQ=DAILY;UNTIL=20270315T000000Z", tz),
    lambda tz: rule("FREQ=MINUTELY;INTERVAL=13;BYHOUR=5,6", tz),
]


def general(schedule: WallClockSchedule) -> WallClockSchedule:
    """A copy of the schedule (parsed ones are shared) made to take the general walk."""
    slow = copy.copy(schedule)
    slow._utc = False
    return slow


def test_the_utc_zones_are_utc_at_every_instant_of_the_database() -> None:
    assert available_timezones() >= UTC_ZONES
    for name in UTC_ZONES:
        zone = ZoneInfo(name)
        for year in (1900, 1970, 2026, 2038, 2100, 9998):
            for month in (1, 4, 7, 10):
                t = datetime(year, month, 1, 12, tzinfo=UTC)
                assert t.astimezone(zone).utcoffset() == timedelta(0), (name, t)


def test_only_the_utc_zones_take_the_short_walk() -> None:
    assert cron("0 * * * *", "UTC")._utc  # type: ignore[attr-defined]
    assert cron("0 * * * *", "Etc/GMT")._utc  # type: ignore[attr-defined]
    assert not cron("0 * * * *", "Europe/London")._utc  # type: ignore[attr-defined]
    assert not cron("0 * * * *", "Etc/GMT-1")._utc  # type: ignore[attr-defined]


@pytest.mark.parametrize("make", SCHEDULES)
@pytest.mark.parametrize("zone", ["UTC", "Etc/GMT"])
@settings(max_examples=60, deadline=None)
@given(
    seconds=st.integers(min_value=0, max_value=3 * 366 * 86400),
    micro=st.integers(min_value=0, max_value=999_999),
    offset_minutes=st.sampled_from([0, 60, -330, 840]),
)
def test_the_short_walk_answers_as_the_general_one(
    make, zone: str, seconds: int, micro: int, offset_minutes: int
) -> None:
    fast, slow = make(zone), general(make(zone))
    assert fast._utc
    base = datetime(2025, 6, 1, tzinfo=UTC) + timedelta(seconds=seconds, microseconds=micro)
    # the query time may be given in any offset: the answer is the same instant
    t = base.astimezone(timezone(timedelta(minutes=offset_minutes)))
    assert fast.next_after(t) == slow.next_after(t)
    assert fast.first(t) == slow.first(t)
    end = t + timedelta(days=40)
    assert fast.between(t, end, 20) == slow.between(t, end, 20)


@pytest.mark.parametrize("make", SCHEDULES)
def test_the_short_walk_ends_at_the_end_of_the_calendar(make) -> None:
    fast, slow = make("UTC"), general(make("UTC"))
    for t in (
        datetime(9999, 12, 31, 23, 59, 59, tzinfo=UTC),
        datetime(9999, 12, 31, 22, tzinfo=UTC),
        datetime(9999, 12, 31, 23, 30, tzinfo=timezone(timedelta(hours=-5))),
        datetime(1, 1, 1, tzinfo=timezone(timedelta(hours=5))),
    ):
        answers = []
        for schedule in (fast, slow):
            try:
                answers.append(schedule.next_after(t))
            except OverflowError as e:
                answers.append(type(e))
        assert answers[0] == answers[1], t
