"""Schedules: exact instants for every kind, DST nights, rrule rebasing and its speed."""

import bisect
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest
from dateutil.rrule import MO, MONTHLY, TH, WEEKLY, rrule

from app.core.errors import ScheduleError
from app.core.schedules import Schedule, load_timezone, parse_schedule

CREATED = datetime(2026, 1, 1, tzinfo=UTC)
# A Wednesday.
NOW = datetime(2026, 5, 13, 10, 20, 30, tzinfo=UTC)
PARIS = ZoneInfo("Europe/Paris")


def utc(
    year: int, month: int, day: int, hour: int = 0, minute: int = 0, second: int = 0
) -> datetime:
    return datetime(year, month, day, hour, minute, second, tzinfo=UTC)


def cron(expr: str, tz: str = "UTC") -> Schedule:
    return parse_schedule("cron", expr, tz, CREATED)


def rule(expr: str, tz: str = "UTC", start: datetime = CREATED) -> Schedule:
    return parse_schedule("rrule", expr, tz, start)


def once(expr: str, tz: str = "UTC") -> Schedule:
    return parse_schedule("once", expr, tz, CREATED)


@contextmanager
def schedule_error(field: str) -> Iterator[None]:
    with pytest.raises(ScheduleError) as info:
        yield
    assert info.value.field == field


# --- time zones -----------------------------------------------------------------------------


def test_load_timezone_known_name() -> None:
    assert load_timezone("Europe/Chisinau").key == "Europe/Chisinau"
    assert load_timezone("UTC").key == "UTC"


@pytest.mark.parametrize(
    "name",
    ["", "../etc", "Not/AZone", "/etc/passwd", "Europe/../UTC", "localtime", "europe/paris"],
)
def test_load_timezone_rejects(name: str) -> None:
    with schedule_error("timezone"):
        load_timezone(name)


@pytest.mark.parametrize("kind", ["cron", "rrule", "once", "event"])
def test_parse_schedule_rejects_bad_timezone_for_every_kind(kind: str) -> None:
    expr = {"cron": "* * * * *", "rrule": "RRULE:FREQ=DAILY", "once": "2026-12-01T10:00:00Z"}
    with schedule_error("timezone"):
        parse_schedule(kind, expr.get(kind), "Not/AZone", CREATED)


def test_unknown_kind() -> None:
    with schedule_error("schedule_kind"):
        parse_schedule("weekly", "* * * * *", "UTC", CREATED)


@pytest.mark.parametrize("kind", ["cron", "rrule", "once"])
@pytest.mark.parametrize("expr", [None, "", "   "])
def test_expression_required(kind: str, expr: str | None) -> None:
    with schedule_error("schedule_expr"):
        parse_schedule(kind, expr, "UTC", CREATED)


def test_naive_datetimes_are_refused() -> None:
    with pytest.raises(ValueError, match="timezone-aware"):
        cron("* * * * *").next_after(datetime(2026, 1, 1))


def test_parsing_is_cached() -> None:
    assert cron("*/5 * * * *") is cron("*/5 * * * *")


# --- cron -----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("expr", "expected"),
    [
        ("*/15 * * * *", utc(2026, 5, 13, 10, 30)),
        ("0 9 * * 1-5", utc(2026, 5, 14, 9, 0)),
        ("0 * * * * 30", utc(2026, 5, 13, 11, 0, 30)),  # six fields: seconds last
        ("* * * * * 15", utc(2026, 5, 13, 10, 21, 15)),
        ("*/20 * * * * *", utc(2026, 5, 13, 10, 20, 31)),
    ],
)
def test_cron_fields(expr: str, expected: datetime) -> None:
    assert cron(expr).next_after(NOW) == expected


@pytest.mark.parametrize(
    ("alias", "expected"),
    [
        ("@hourly", utc(2026, 5, 13, 11)),
        ("@daily", utc(2026, 5, 14)),
        ("@midnight", utc(2026, 5, 14)),
        ("@weekly", utc(2026, 5, 17)),  # the next Sunday
        ("@monthly", utc(2026, 6, 1)),
        ("@yearly", utc(2027, 1, 1)),
        ("@annually", utc(2027, 1, 1)),
    ],
)
def test_cron_aliases(alias: str, expected: datetime) -> None:
    assert cron(alias).next_after(NOW) == expected


@pytest.mark.parametrize(
    "expr",
    [
        "garbage",
        "* * * *",
        "0 0 * * * 0 2026",  # seven fields
        "0 0 30 2 *",  # valid syntax, no such date
        "61 * * * *",
        "@reboot",
        "H * * * *",
    ],
)
def test_cron_invalid(expr: str) -> None:
    with schedule_error("schedule_expr"):
        cron(expr)


def test_cron_first_is_strictly_after_now() -> None:
    schedule = cron("0 10 * * *")
    assert schedule.first(utc(2026, 5, 13, 10)) == utc(2026, 5, 14, 10)
    assert schedule.first(utc(2026, 5, 13, 9, 59, 59)) == utc(2026, 5, 13, 10)


def test_cron_in_a_non_utc_zone() -> None:
    schedule = cron("0 9 * * *", "Europe/Paris")
    assert schedule.next_after(utc(2026, 1, 15, 12)) == utc(2026, 1, 16, 8)  # CET, +01:00
    assert schedule.next_after(utc(2026, 7, 15, 12)) == utc(2026, 7, 16, 7)  # CEST, +02:00
    result = schedule.next_after(utc(2026, 7, 15, 12))
    assert result is not None and result.tzinfo is UTC


def test_cron_accepts_any_aware_input() -> None:
    schedule = cron("0 9 * * *", "Europe/Paris")
    # 06:30 in Paris is before 09:00 the same day.
    assert schedule.next_after(datetime(2026, 7, 15, 6, 30, tzinfo=PARIS)) == utc(2026, 7, 15, 7)


def test_cron_between_with_limit() -> None:
    schedule = cron("0 * * * *")
    assert schedule.between(utc(2026, 5, 13, 10), utc(2026, 5, 13, 13), 10) == [
        utc(2026, 5, 13, 11),
        utc(2026, 5, 13, 12),
        utc(2026, 5, 13, 13),
    ]
    assert schedule.between(utc(2026, 5, 13, 10), utc(2026, 5, 13, 23), 2) == [
        utc(2026, 5, 13, 11),
        utc(2026, 5, 13, 12),
    ]
    assert schedule.between(utc(2026, 5, 13, 10), utc(2026, 5, 13, 10, 59), 5) == []


# Europe/Chisinau, 2026-03-29: 02:00 EET (+02) jumps to 03:00 EEST (+03) at 00:00 UTC.
# 2026-10-25: 03:00 EEST falls back to 02:00 EET at 00:00 UTC, so 02:00-02:59 occur twice.


def test_cron_daily_spring_forward_fires_after_the_gap() -> None:
    schedule = cron("30 2 * * *", "Europe/Chisinau")
    assert schedule.next_after(utc(2026, 3, 28, 12)) == utc(2026, 3, 29, 0)  # 03:00 local
    assert schedule.next_after(utc(2026, 3, 29, 0)) == utc(2026, 3, 29, 23, 30)  # 02:30 EEST


def test_cron_daily_fall_back_fires_once() -> None:
    schedule = cron("30 2 * * *", "Europe/Chisinau")
    first = schedule.next_after(utc(2026, 10, 24, 12))
    assert first == utc(2026, 10, 24, 23, 30)  # 02:30 EEST, the first pass
    assert schedule.next_after(first) == utc(2026, 10, 26, 0, 30)  # not 2026-10-25T00:30Z
    # A task created during the repeated hour does not catch the second 02:30 either.
    assert schedule.first(utc(2026, 10, 25, 0, 10)) == utc(2026, 10, 26, 0, 30)


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


def test_cron_hourly_fall_back_skips_the_repeated_hour() -> None:
    schedule = cron("30 * * * *", "Europe/Chisinau")
    assert schedule.between(utc(2026, 10, 24, 22), utc(2026, 10, 25, 2), 10) == [
        utc(2026, 10, 24, 22, 30),  # 01:30 EEST
        utc(2026, 10, 24, 23, 30),  # 02:30 EEST
        utc(2026, 10, 25, 1, 30),  # 03:30 EET; the second 02:30 (00:30Z) is skipped
    ]
    assert schedule.next_after(utc(2026, 10, 24, 23, 30)) == utc(2026, 10, 25, 1, 30)


def test_cron_every_second_jumps_over_the_repeated_hour_at_once() -> None:
    schedule = cron("* * * * * *", "Europe/Chisinau")
    # 02:00:30 EET, second pass: every wall second up to 02:59:59 already fired.
    t = utc(2026, 10, 25, 0, 0, 30)
    assert schedule.next_after(t) == utc(2026, 10, 25, 1)  # 03:00:00 EET
    # Found directly rather than by stepping through 3,570 already-fired wall seconds.
    assert _average_seconds(lambda: schedule.next_after(t)) < 0.02


# --- rrule ----------------------------------------------------------------------------------


def test_rrule_without_dtstart_starts_at_creation_in_timezone() -> None:
    created = datetime(2026, 1, 15, 10, 17, 23, 456000, tzinfo=UTC)
    daily = rule("RRULE:FREQ=DAILY;BYHOUR=9;BYMINUTE=0;BYSECOND=0", "Europe/Paris", created)
    assert daily.first(created) == utc(2026, 1, 16, 8)
    assert daily.next_after(utc(2026, 7, 1)) == utc(2026, 7, 1, 7)  # 09:00 CEST
    # Fields the rule leaves out come from the creation time (RFC 5545).
    hourly = rule("RRULE:FREQ=HOURLY", "Europe/Paris", created)
    assert hourly.first(created) == utc(2026, 1, 15, 11, 17, 23)


def test_rrule_accepts_a_bare_rule_line() -> None:
    assert rule("FREQ=DAILY;BYHOUR=9;BYMINUTE=0;BYSECOND=0").first(NOW) == utc(2026, 5, 14, 9)


def test_rrule_with_tzid_follows_dst() -> None:
    schedule = rule("DTSTART;TZID=Europe/Paris:20260101T090000\nRRULE:FREQ=WEEKLY;BYDAY=MO")
    assert schedule.between(utc(2026, 3, 20), utc(2026, 4, 1), 10) == [
        utc(2026, 3, 23, 8),  # 09:00 CET
        utc(2026, 3, 30, 7),  # 09:00 CEST
    ]


def test_rrule_with_utc_dtstart_is_evaluated_in_utc() -> None:
    schedule = rule("DTSTART:20260101T090000Z\nRRULE:FREQ=DAILY", "Europe/Paris")
    assert schedule.next_after(utc(2026, 7, 1, 10)) == utc(2026, 7, 2, 9)


def test_rrule_floating_dtstart_is_read_in_timezone() -> None:
    schedule = rule("DTSTART:20260701T090000\nRRULE:FREQ=DAILY", "Europe/Paris")
    assert schedule.first(utc(2026, 6, 1)) == utc(2026, 7, 1, 7)


def test_rrule_future_dtstart_is_its_first_run() -> None:
    schedule = rule("DTSTART:20270301T120000Z RRULE:FREQ=MONTHLY")
    assert schedule.first(NOW) == utc(2027, 3, 1, 12)


def test_rrule_unknown_tzid() -> None:
    with schedule_error("schedule_expr"):
        rule("DTSTART;TZID=Mars/Olympus:20260101T090000\nRRULE:FREQ=DAILY")


def test_rrule_count_used_up() -> None:
    schedule = rule("DTSTART:20260101T090000Z\nRRULE:FREQ=DAILY;COUNT=3")
    assert schedule.first(utc(2025, 12, 1)) == utc(2026, 1, 1, 9)
    assert schedule.next_after(utc(2026, 1, 1, 9)) == utc(2026, 1, 2, 9)
    assert schedule.next_after(utc(2026, 1, 2, 9)) == utc(2026, 1, 3, 9)
    assert schedule.next_after(utc(2026, 1, 3, 9)) is None
    assert schedule.first(NOW) is None
    assert schedule.between(utc(2025, 1, 1), utc(2027, 1, 1), 10) == [
        utc(2026, 1, 1, 9),
        utc(2026, 1, 2, 9),
        utc(2026, 1, 3, 9),
    ]


def test_rrule_count_is_counted_from_the_real_dtstart() -> None:
    start = utc(2000, 1, 1)
    step = timedelta(minutes=3)
    schedule = rule("DTSTART:20000101T000000Z\nRRULE:FREQ=MINUTELY;INTERVAL=3;COUNT=1000")
    # Out of order on purpose: later queries resume from checkpoints, earlier ones must not.
    for index in (700, 10, 999, 0, 256, 513, 998):
        occurrence = start + index * step
        expected = None if index == 999 else occurrence + step
        assert schedule.next_after(occurrence) == expected
        assert schedule.next_after(occurrence - timedelta(seconds=1)) == occurrence
    assert schedule.next_after(utc(2026, 1, 1)) is None


def test_rrule_until_used_up() -> None:
    schedule = rule("DTSTART:20260101T090000Z\nRRULE:FREQ=DAILY;UNTIL=20260103T090000Z")
    assert schedule.next_after(utc(2026, 1, 2, 9)) == utc(2026, 1, 3, 9)
    assert schedule.next_after(utc(2026, 1, 3, 9)) is None
    assert schedule.first(NOW) is None


def test_rrule_until_with_tzid_and_as_a_date() -> None:
    with_tzid = rule(
        "DTSTART;TZID=Europe/Paris:20260101T090000\nRRULE:FREQ=DAILY;UNTIL=20260103T080000Z"
    )
    assert with_tzid.next_after(utc(2026, 1, 2, 8)) == utc(2026, 1, 3, 8)
    assert with_tzid.next_after(utc(2026, 1, 3, 8)) is None
    as_date = rule("DTSTART:20260101T090000Z\nRRULE:FREQ=DAILY;UNTIL=20260103")
    assert as_date.next_after(utc(2026, 1, 2, 9)) == utc(2026, 1, 3, 9)
    assert as_date.next_after(utc(2026, 1, 3, 9)) is None


def test_rrule_between_with_limit() -> None:
    schedule = rule("DTSTART:20260101T090000Z\nRRULE:FREQ=DAILY")
    assert schedule.between(utc(2026, 1, 1, 9), utc(2026, 1, 10, 9), 3) == [
        utc(2026, 1, 2, 9),
        utc(2026, 1, 3, 9),
        utc(2026, 1, 4, 9),
    ]
    everything = schedule.between(utc(2026, 1, 1, 9), utc(2026, 1, 10, 9), 100)
    assert everything == [utc(2026, 1, day, 9) for day in range(2, 11)]
    assert schedule.between(utc(2026, 1, 1, 9), utc(2026, 1, 2, 8), 100) == []


def test_rrule_daily_across_both_dst_nights() -> None:
    schedule = rule("DTSTART;TZID=Europe/Chisinau:20260301T023000\nRRULE:FREQ=DAILY")
    assert schedule.next_after(utc(2026, 3, 28, 12)) == utc(2026, 3, 29, 0)  # 03:00 EEST
    assert schedule.next_after(utc(2026, 3, 29, 0)) == utc(2026, 3, 29, 23, 30)
    assert schedule.next_after(utc(2026, 10, 24, 12)) == utc(2026, 10, 24, 23, 30)
    assert schedule.next_after(utc(2026, 10, 24, 23, 30)) == utc(2026, 10, 26, 0, 30)


def test_rrule_hourly_fall_back_matches_cron() -> None:
    schedule = rule("DTSTART;TZID=Europe/Chisinau:20261024T003000\nRRULE:FREQ=HOURLY")
    assert schedule.between(utc(2026, 10, 24, 22), utc(2026, 10, 25, 2), 10) == [
        utc(2026, 10, 24, 22, 30),
        utc(2026, 10, 24, 23, 30),
        utc(2026, 10, 25, 1, 30),
    ]


@pytest.mark.parametrize(
    "expr",
    [
        "garbage",
        "RRULE:FREQ=SOMETIMES",
        "RRULE:INTERVAL=2",
        "RRULE:FREQ=DAILY;INTERVAL=0",
        "RRULE:FREQ=DAILY;INTERVAL=1_0",
        "RRULE:FREQ=DAILY;COUNT=0",
        "RRULE:FREQ=DAILY;COUNT=100001",
        "RRULE:FREQ=DAILY;COUNT=2;UNTIL=20270101T000000Z",
        "RRULE:FREQ=DAILY;FREQ=WEEKLY",
        "RRULE:FREQ=DAILY;BYHOUR=24",
        "RRULE:FREQ=DAILY;BYMONTHDAY=0",
        "RRULE:FREQ=DAILY;BYEASTER=0",
        "RRULE:FREQ=DAILY;BYDAY=1MO",
        "RRULE:FREQ=MONTHLY;BYDAY=MO,1TU",
        "RRULE:FREQ=DAILY;UNTIL=tomorrow",
        "RRULE:FREQ=DAILY\nEXDATE:20260102T000000Z",
        "RRULE:FREQ=DAILY\nRRULE:FREQ=WEEKLY",
        "DTSTART:2026-01-01\nRRULE:FREQ=DAILY",
        "DTSTART;TZID=Europe/Paris:20260101T090000Z\nRRULE:FREQ=DAILY",
        "DTSTART:20260101T090000Z\nDTSTART:20260102T090000Z\nRRULE:FREQ=DAILY",
        "DTSTART:20260101T090000Z",
    ],
)
def test_rrule_invalid(expr: str) -> None:
    with schedule_error("schedule_expr"):
        rule(expr)


@pytest.mark.parametrize(
    "expr",
    [
        "RRULE:FREQ=DAILY;BYMONTH=2;BYMONTHDAY=30",
        "RRULE:FREQ=MINUTELY;BYMONTH=4;BYMONTHDAY=31",
        # Every 7 days from a Thursday never lands on a Monday.
        "DTSTART:20260101T090000Z\nRRULE:FREQ=DAILY;INTERVAL=7;BYDAY=MO",
    ],
)
def test_rrule_that_never_fires_has_no_first_run(expr: str) -> None:
    began = time.perf_counter()
    schedule = rule(expr)
    assert schedule.first(NOW) is None
    assert schedule.next_after(NOW) is None
    assert schedule.between(CREATED, NOW, 10) == []
    assert time.perf_counter() - began < 3  # dateutil alone scans to year 9999


def test_rrule_sparse_rule_finds_the_next_leap_day() -> None:
    schedule = rule("DTSTART:20000229T120000Z\nRRULE:FREQ=YEARLY")
    assert schedule.next_after(NOW) == utc(2028, 2, 29, 12)
    friday_13 = rule("DTSTART:20000101T000000Z\nRRULE:FREQ=MONTHLY;BYDAY=FR;BYMONTHDAY=13")
    assert friday_13.next_after(NOW) == utc(2026, 11, 13)


def _average_seconds(call: Callable[[], object], times: int = 20) -> float:
    began = time.perf_counter()
    for _ in range(times):
        call()
    return (time.perf_counter() - began) / times


def test_rrule_old_dtstart_minutely_is_fast_and_right() -> None:
    schedule = rule("DTSTART:20000101T000000Z\nRRULE:FREQ=MINUTELY")
    assert schedule.next_after(NOW) == utc(2026, 5, 13, 10, 21)
    assert _average_seconds(lambda: schedule.next_after(NOW)) < 0.005


def test_rrule_old_dtstart_hourly_is_fast_and_right() -> None:
    start = utc(2000, 1, 1, 0, 17)
    step = timedelta(hours=5)
    schedule = rule("DTSTART:20000101T001700Z\nRRULE:FREQ=HOURLY;INTERVAL=5")
    expected = start + ((NOW - start) // step + 1) * step
    assert expected > NOW and expected - step <= NOW
    assert schedule.next_after(NOW) == expected
    assert _average_seconds(lambda: schedule.next_after(NOW)) < 0.005


def _probe_times() -> list[datetime]:
    """Query instants spread over 2010-2029, at irregular offsets."""
    times, t = [], utc(2010, 1, 3, 5, 7, 11)
    while t < utc(2029, 6, 1):
        times.append(t)
        t += timedelta(days=13, hours=7, minutes=29, seconds=17)
    return times


def _check_against(schedule: Schedule, reference: list[datetime]) -> None:
    """Compare next_after with a full, un-rebased iteration of the same rule."""
    for t in _probe_times():
        index = bisect.bisect_right(reference, t)
        assert schedule.next_after(t) == reference[index], t


def test_rebasing_keeps_the_phase_of_minutely_interval_7() -> None:
    start, step = utc(2010, 1, 1, 0, 3), timedelta(minutes=7)
    schedule = rule("DTSTART:20100101T000300Z\nRRULE:FREQ=MINUTELY;INTERVAL=7")
    for t in _probe_times():
        assert schedule.next_after(t) == start + ((t - start) // step + 1) * step


def test_rebasing_keeps_the_phase_of_a_biweekly_byday_rule_across_dst() -> None:
    schedule = rule(
        "DTSTART;TZID=Europe/Paris:20100104T093000\nRRULE:FREQ=WEEKLY;INTERVAL=2;BYDAY=MO,TH"
    )
    reference = rrule(
        WEEKLY,
        interval=2,
        byweekday=(MO, TH),
        wkst=MO,
        dtstart=datetime(2010, 1, 4, 9, 30, tzinfo=PARIS),
        until=datetime(2030, 1, 1, tzinfo=PARIS),
    )
    _check_against(schedule, [x.astimezone(UTC) for x in reference])


def test_rebasing_keeps_the_phase_of_a_monthly_bymonthday_rule() -> None:
    new_york = ZoneInfo("America/New_York")
    schedule = rule(
        "DTSTART;TZID=America/New_York:20050131T080000\n"
        "RRULE:FREQ=MONTHLY;INTERVAL=5;BYMONTHDAY=15,31"
    )
    reference = rrule(
        MONTHLY,
        interval=5,
        bymonthday=(15, 31),
        dtstart=datetime(2005, 1, 31, 8, tzinfo=new_york),
        until=datetime(2031, 1, 1, tzinfo=new_york),
    )
    _check_against(schedule, [x.astimezone(UTC) for x in reference])


def test_rebasing_monthly_from_the_31st_skips_short_months() -> None:
    schedule = rule("DTSTART;TZID=Europe/Paris:20000131T120000\nRRULE:FREQ=MONTHLY;INTERVAL=2")
    reference = rrule(
        MONTHLY,
        interval=2,
        dtstart=datetime(2000, 1, 31, 12, tzinfo=PARIS),
        until=datetime(2031, 1, 1, tzinfo=PARIS),
    )
    _check_against(schedule, [x.astimezone(UTC) for x in reference])


# --- once -----------------------------------------------------------------------------------


def test_once_in_the_future() -> None:
    schedule = once("2026-12-01T10:00:00Z")
    assert schedule.first(NOW) == utc(2026, 12, 1, 10)
    assert schedule.next_after(NOW) == utc(2026, 12, 1, 10)
    assert schedule.next_after(utc(2026, 12, 1, 10)) is None
    assert schedule.between(NOW, utc(2027, 1, 1), 5) == [utc(2026, 12, 1, 10)]
    assert schedule.between(NOW, utc(2026, 12, 1, 9, 59), 5) == []


def test_once_in_the_past_still_runs() -> None:
    schedule = once("2020-01-01T00:00:00Z")
    assert schedule.first(NOW) == utc(2020, 1, 1)
    assert schedule.next_after(NOW) is None


def test_once_with_an_offset() -> None:
    assert once("2026-12-01T10:00:00+02:00", "America/New_York").first(NOW) == utc(2026, 12, 1, 8)
    assert once("2026-12-01T10:00:00.250-05:30").first(NOW) == datetime(
        2026, 12, 1, 15, 30, 0, 250000, tzinfo=UTC
    )


def test_once_without_offset_is_read_in_timezone() -> None:
    assert once("2026-12-01T10:00:00", "Europe/Paris").first(NOW) == utc(2026, 12, 1, 9)
    assert once("2026-07-01T10:00:00", "Europe/Paris").first(NOW) == utc(2026, 7, 1, 8)


def test_once_at_a_missing_or_repeated_local_time() -> None:
    # Paris skips 02:00-02:59 on 2026-03-29 (at 01:00Z) and repeats it on 2026-10-25.
    assert once("2026-03-29T02:30:00", "Europe/Paris").first(NOW) == utc(2026, 3, 29, 1)
    assert once("2026-10-25T02:30:00", "Europe/Paris").first(NOW) == utc(2026, 10, 25, 0, 30)


@pytest.mark.parametrize(
    "expr",
    [
        "2026-12-01",
        "garbage",
        "2026-13-01T00:00:00Z",
        "2026-12-01T25:00:00Z",
        "2026-12-01T10:00:00+24:00",
        "1764583200",
    ],
)
def test_once_invalid(expr: str) -> None:
    with schedule_error("schedule_expr"):
        once(expr)


# --- event ----------------------------------------------------------------------------------


@pytest.mark.parametrize("expr", [None, "", "order.*", "x" * 200])
def test_event_has_no_time(expr: str | None) -> None:
    schedule = parse_schedule("event", expr, "UTC", CREATED)
    assert schedule.first(NOW) is None
    assert schedule.next_after(NOW) is None
    assert schedule.between(CREATED, NOW, 10) == []


def test_event_pattern_length() -> None:
    with schedule_error("schedule_expr"):
        parse_schedule("event", "x" * 201, "UTC", CREATED)
