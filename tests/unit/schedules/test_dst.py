"""DST nights for all three timed kinds, in zones with 1-hour, 30-minute and 45-minute offsets.

A wall time that occurs twice fires once, at its first instance (every kind). A wall time that
does not exist fires, for cron, at the first instant after the gap (as cronie does); for rrule
and once it is read with the offset before the gap (RFC 5545 section 3.3.5: 02:30 in a 02:00
to 03:00 gap is 03:30 new time).

The nights used, all from the tz database:
- Europe/Chisinau 2026-03-29: 02:00 EET (+02) jumps to 03:00 EEST at 00:00Z; 2026-10-25: 03:00
  EEST falls back to 02:00 EET at 00:00Z.
- Australia/Lord_Howe (a 30-minute shift) 2026-10-04: 02:00 (+10:30) jumps to 02:30 (+11) at
  15:30Z on the 3rd; 2026-04-05: 02:00 (+11) falls back to 01:30 (+10:30) at 15:00Z on the 4th.
- Pacific/Chatham (+12:45/+13:45) 2026-09-27: 02:45 jumps to 03:45 at 14:00Z on the 26th;
  2026-04-05: 03:45 falls back to 02:45 at 14:00Z on the 4th.
- Asia/Kathmandu (+05:45) 1986-01-01: 00:00 (+05:30) jumps to 00:15 (+05:45) at 18:30Z.
"""

from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from app.core.schedules import Budget
from app.core.schedules.budget import unlimited
from tests.unit.schedules.reference import Plain
from tests.unit.schedules.support import chain, cron, once, rule, utc

SIX_HOURS = timedelta(hours=6)
LORD_HOWE = "Australia/Lord_Howe"
CHATHAM = "Pacific/Chatham"
KATHMANDU = "Asia/Kathmandu"


def daily(zone: str, start: str) -> str:
    return f"DTSTART;TZID={zone}:{start}\nRRULE:FREQ=DAILY"


# --- a missing wall time ------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("zone", "cron_expr", "rrule_expr", "once_expr", "cron_at", "rrule_at"),
    [
        # 02:30 is in the gap: cron at 03:00 new time, rrule and once at 03:30 new time
        (
            "Europe/Chisinau",
            "30 2 * * *",
            daily("Europe/Chisinau", "20260301T023000"),
            "2026-03-29T02:30:00",
            utc(2026, 3, 29, 0, 0),
            utc(2026, 3, 29, 0, 30),
        ),
        # 02:15 is in a 30-minute gap: cron at 02:30 (+11), rrule and once at 02:45 (+11)
        (
            LORD_HOWE,
            "15 2 * * *",
            daily(LORD_HOWE, "20260901T021500"),
            "2026-10-04T02:15:00",
            utc(2026, 10, 3, 15, 30),
            utc(2026, 10, 3, 15, 45),
        ),
        # 03:00 is in the gap: cron at 03:45 (+13:45), rrule and once at 04:00 (+13:45)
        (
            CHATHAM,
            "0 3 * * *",
            daily(CHATHAM, "20260901T030000"),
            "2026-09-27T03:00:00",
            utc(2026, 9, 26, 14, 0),
            utc(2026, 9, 26, 14, 15),
        ),
        # 00:10 is in a 15-minute gap: cron at 00:15 (+05:45), rrule and once at 00:25
        (
            KATHMANDU,
            "10 0 * * *",
            daily(KATHMANDU, "19851225T001000"),
            "1986-01-01T00:10:00",
            utc(1985, 12, 31, 18, 30),
            utc(1985, 12, 31, 18, 40),
        ),
    ],
)
def test_a_missing_wall_time(
    zone: str,
    cron_expr: str,
    rrule_expr: str,
    once_expr: str,
    cron_at: datetime,
    rrule_at: datetime,
) -> None:
    before = cron_at - SIX_HOURS  # the nights before fired a day earlier
    assert cron(cron_expr, zone).next_after(before) == cron_at
    assert rule(rrule_expr, zone).next_after(before) == rrule_at
    assert once(once_expr, zone).first(before) == rrule_at


def test_a_gap_wall_time_still_fires_when_asked_from_just_after_the_gap() -> None:
    # 15:35Z is 02:35 (+11), after the gap; the rrule's 02:15 is read as 02:45 (+11): still ahead
    schedule = rule(daily(LORD_HOWE, "20260901T021500"), LORD_HOWE)
    assert schedule.next_after(utc(2026, 10, 3, 15, 35)) == utc(2026, 10, 3, 15, 45)
    assert schedule.next_after(utc(2026, 10, 3, 15, 45)) == utc(2026, 10, 4, 15, 15)
    # cron's 02:15 fired at 02:30 (+11), before 15:35Z: its next is the following night
    assert cron("15 2 * * *", LORD_HOWE).next_after(utc(2026, 10, 3, 15, 35)) == utc(
        2026, 10, 4, 15, 15
    )


def test_several_wall_times_of_one_gap_fire_once_each_instant() -> None:
    every_quarter = cron("*/15 * * * *", LORD_HOWE)
    assert every_quarter.between(utc(2026, 10, 3, 14, 59), utc(2026, 10, 3, 16), 10) == [
        utc(2026, 10, 3, 15, 0),  # 01:30 (+10:30)
        utc(2026, 10, 3, 15, 15),  # 01:45
        utc(2026, 10, 3, 15, 30),  # 02:00 and 02:15 (missing) and 02:30 (+11): one run
        utc(2026, 10, 3, 15, 45),
        utc(2026, 10, 3, 16, 0),
    ]
    quarterly = rule(
        f"DTSTART;TZID={LORD_HOWE}:20261004T000000\nRRULE:FREQ=MINUTELY;INTERVAL=15", LORD_HOWE
    )
    # 02:00 and 02:15 read at +10:30 are 02:30 and 02:45 new time, which are occurrences too
    assert quarterly.between(utc(2026, 10, 3, 14, 59), utc(2026, 10, 3, 16), 10) == [
        utc(2026, 10, 3, 15, 0),
        utc(2026, 10, 3, 15, 15),
        utc(2026, 10, 3, 15, 30),
        utc(2026, 10, 3, 15, 45),
        utc(2026, 10, 3, 16, 0),
    ]
    assert chain(quarterly, utc(2026, 10, 3, 14, 59), 5) == quarterly.between(
        utc(2026, 10, 3, 14, 59), utc(2026, 10, 3, 16), 10
    )


def test_cron_hourly_spring_forward() -> None:
    half_past = cron("30 * * * *", "Europe/Chisinau")
    assert half_past.between(utc(2026, 3, 28, 23), utc(2026, 3, 29, 1), 10) == [
        utc(2026, 3, 28, 23, 30),  # 01:30 EET
        utc(2026, 3, 29, 0, 0),  # 02:30 does not exist: 03:00 EEST
        utc(2026, 3, 29, 0, 30),  # 03:30 EEST
    ]
    # 02:00 (missing) and 03:00 land on the same instant: one run.
    on_the_hour = cron("0 * * * *", "Europe/Chisinau")
    assert on_the_hour.between(utc(2026, 3, 28, 22, 30), utc(2026, 3, 29, 1), 10) == [
        utc(2026, 3, 28, 23),
        utc(2026, 3, 29, 0),
        utc(2026, 3, 29, 1),
    ]


def test_cron_daily_spring_forward_fires_after_the_gap() -> None:
    schedule = cron("30 2 * * *", "Europe/Chisinau")
    assert schedule.next_after(utc(2026, 3, 28, 12)) == utc(2026, 3, 29, 0)  # 03:00 local
    assert schedule.next_after(utc(2026, 3, 29, 0)) == utc(2026, 3, 29, 23, 30)  # 02:30 EEST


def test_rrule_daily_across_both_dst_nights() -> None:
    schedule = rule(daily("Europe/Chisinau", "20260301T023000"))
    assert schedule.next_after(utc(2026, 3, 28, 12)) == utc(2026, 3, 29, 0, 30)  # 03:30 EEST
    assert schedule.next_after(utc(2026, 3, 29, 0, 30)) == utc(2026, 3, 29, 23, 30)
    assert schedule.next_after(utc(2026, 10, 24, 12)) == utc(2026, 10, 24, 23, 30)
    assert schedule.next_after(utc(2026, 10, 24, 23, 30)) == utc(2026, 10, 26, 0, 30)


def test_once_at_a_missing_or_repeated_local_time() -> None:
    # Paris skips 02:00-02:59 on 2026-03-29 (at 01:00Z) and repeats it on 2026-10-25.
    assert once("2026-03-29T02:30:00", "Europe/Paris").first(utc(2026, 1, 1)) == utc(
        2026, 3, 29, 1, 30
    )
    assert once("2026-10-25T02:30:00", "Europe/Paris").first(utc(2026, 1, 1)) == utc(
        2026, 10, 25, 0, 30
    )


# --- a repeated wall time -----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("zone", "wall", "first", "second"),
    [
        # 02:30 EEST, then 02:30 EET
        ("Europe/Chisinau", "20261025T023000", utc(2026, 10, 24, 23, 30), utc(2026, 10, 25, 0, 30)),
        # 01:45 (+11), then 01:45 (+10:30)
        (LORD_HOWE, "20260405T014500", utc(2026, 4, 4, 14, 45), utc(2026, 4, 4, 15, 15)),
        # 03:00 (+13:45), then 03:00 (+12:45)
        (CHATHAM, "20260405T030000", utc(2026, 4, 4, 13, 15), utc(2026, 4, 4, 14, 15)),
    ],
)
def test_a_repeated_wall_time_fires_at_its_first_instance(
    zone: str, wall: str, first: datetime, second: datetime
) -> None:
    hour, minute = int(wall[9:11]), int(wall[11:13])
    day_before = first - SIX_HOURS
    cron_schedule = cron(f"{minute} {hour} * * *", zone)
    rrule_schedule = rule(daily(zone, wall[:8].replace(wall[6:8], "01") + wall[8:]), zone)
    iso = f"{wall[:4]}-{wall[4:6]}-{wall[6:8]}T{hour:02}:{minute:02}:00"
    for schedule in (cron_schedule, rrule_schedule):
        assert schedule.next_after(day_before) == first
        following = schedule.next_after(first)
        assert following == first + timedelta(days=1) + (second - first)  # the next night
        # a query made during the repeat does not catch the second instance either
        assert schedule.next_after(second - (second - first) / 2) == following
    assert once(iso, zone).first(day_before) == first


def test_cron_daily_fall_back_fires_once() -> None:
    schedule = cron("30 2 * * *", "Europe/Chisinau")
    first = schedule.next_after(utc(2026, 10, 24, 12))
    assert first == utc(2026, 10, 24, 23, 30)  # 02:30 EEST, the first pass
    assert schedule.next_after(first) == utc(2026, 10, 26, 0, 30)  # not 2026-10-25T00:30Z
    # A task created during the repeated hour does not catch the second 02:30 either.
    assert schedule.first(utc(2026, 10, 25, 0, 10)) == utc(2026, 10, 26, 0, 30)


def test_cron_hourly_fall_back_skips_the_repeated_hour() -> None:
    schedule = cron("30 * * * *", "Europe/Chisinau")
    assert schedule.between(utc(2026, 10, 24, 22), utc(2026, 10, 25, 2), 10) == [
        utc(2026, 10, 24, 22, 30),  # 01:30 EEST
        utc(2026, 10, 24, 23, 30),  # 02:30 EEST
        utc(2026, 10, 25, 1, 30),  # 03:30 EET; the second 02:30 (00:30Z) is skipped
    ]
    assert schedule.next_after(utc(2026, 10, 24, 23, 30)) == utc(2026, 10, 25, 1, 30)


def test_quarter_hours_through_a_30_minute_fall_back() -> None:
    expected = [
        utc(2026, 4, 4, 14, 0),  # 01:00 (+11)
        utc(2026, 4, 4, 14, 15),
        utc(2026, 4, 4, 14, 30),  # 01:30 (+11)
        utc(2026, 4, 4, 14, 45),  # 01:45 (+11); 01:30 and 01:45 (+10:30) repeat: skipped
        utc(2026, 4, 4, 15, 30),  # 02:00 (+10:30)
        utc(2026, 4, 4, 15, 45),
    ]
    window = (utc(2026, 4, 4, 13, 59), utc(2026, 4, 4, 15, 45))
    assert cron("*/15 * * * *", LORD_HOWE).between(*window, 10) == expected
    quarterly = rule(
        f"DTSTART;TZID={LORD_HOWE}:20260405T000000\nRRULE:FREQ=MINUTELY;INTERVAL=15", LORD_HOWE
    )
    assert quarterly.between(*window, 10) == expected


def test_rrule_hourly_fall_back_matches_cron() -> None:
    schedule = rule("DTSTART;TZID=Europe/Chisinau:20261024T003000\nRRULE:FREQ=HOURLY")
    assert schedule.between(utc(2026, 10, 24, 22), utc(2026, 10, 25, 2), 10) == [
        utc(2026, 10, 24, 22, 30),
        utc(2026, 10, 24, 23, 30),
        utc(2026, 10, 25, 1, 30),
    ]


def test_cron_every_second_jumps_over_the_repeated_hour_at_once() -> None:
    schedule = cron("* * * * * *", "Europe/Chisinau")
    # 02:00:30 EET, second pass: every wall second up to 02:59:59 already fired.
    t = utc(2026, 10, 25, 0, 0, 30)
    budget = Budget()
    assert schedule.next_after(t, budget) == utc(2026, 10, 25, 1)  # 03:00:00 EET
    # Found directly rather than by stepping through 3,570 already-fired wall seconds.
    assert budget.used <= 3


def test_a_fixed_45_minute_offset() -> None:
    assert cron("0 9 * * *", KATHMANDU).next_after(utc(2026, 5, 1)) == utc(2026, 5, 1, 3, 15)
    assert rule(daily(KATHMANDU, "20260101T090000"), KATHMANDU).next_after(utc(2026, 5, 1)) == utc(
        2026, 5, 1, 3, 15
    )
    assert once("2026-05-01T09:00:00", KATHMANDU).first(utc(2026, 1, 1)) == utc(2026, 5, 1, 3, 15)


NIGHTS = [
    ("Europe/Chisinau", datetime(2026, 3, 29)),
    ("Europe/Chisinau", datetime(2026, 10, 25)),
    (LORD_HOWE, datetime(2026, 10, 4)),
    (LORD_HOWE, datetime(2026, 4, 5)),
    (CHATHAM, datetime(2026, 9, 27)),
    (CHATHAM, datetime(2026, 4, 5)),
    (KATHMANDU, datetime(1986, 1, 1)),
    ("Pacific/Apia", datetime(2011, 12, 30)),  # a whole day skipped
]


@settings(max_examples=60, derandomize=True, deadline=None)
@given(
    night=st.sampled_from(NIGHTS),
    freq=st.sampled_from(["MINUTELY", "HOURLY", "DAILY"]),
    interval=st.sampled_from([1, 5, 7, 15, 30, 45, 90]),
    byminute=st.sampled_from(["", ";BYMINUTE=0", ";BYMINUTE=15,45", ";BYMINUTE=10"]),
    offset=st.integers(0, 86_399),
    queries=st.lists(st.floats(0, 1), min_size=5, max_size=5),
)
def test_random_rules_through_dst_nights_follow_the_rrule_rules(
    night: tuple[str, datetime],
    freq: str,
    interval: int,
    byminute: str,
    offset: int,
    queries: list[float],
) -> None:
    """Plain expansion of the wall times, each read with fold=0 (a missing one with the offset
    before the gap, a repeated one as its first instance), sorted and without repeats."""
    zone, day = night
    tz = ZoneInfo(zone)
    start = day - timedelta(days=1) + timedelta(seconds=offset)
    text = f"FREQ={freq};INTERVAL={1 if freq == 'DAILY' else interval}{byminute}"
    schedule = rule(f"DTSTART;TZID={zone}:{start:%Y%m%dT%H%M%S}\nRRULE:{text}", zone)
    walls = Plain(start, text).expand(day + timedelta(days=2))
    instants = sorted({w.replace(tzinfo=tz).astimezone(UTC) for w in walls})
    begin = start.replace(tzinfo=tz).astimezone(UTC) - timedelta(hours=1)
    end = (day + timedelta(days=2)).replace(tzinfo=tz).astimezone(UTC) - timedelta(hours=2)
    expected = [x for x in instants if begin < x <= end]
    assert schedule.between(begin, end, 10_000, unlimited()) == expected
    for fraction in queries:
        at = begin + (end - begin) * fraction
        after = [x for x in expected if x > at]
        if after:
            assert schedule.next_after(at) == after[0], at
