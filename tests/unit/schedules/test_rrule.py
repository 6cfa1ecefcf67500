"""rrule: DTSTART and its defaults, COUNT and UNTIL, phase and BYSETPOS wherever a query starts,
and queries on rules with an old DTSTART that take a few steps, not a walk from DTSTART."""

import bisect
from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest
from dateutil.rrule import MO, MONTHLY, TH, WEEKLY, rrule

from app.core.schedules import Budget, Schedule
from tests.unit.schedules.support import CREATED, NOW, PARIS, chain, rule, schedule_error, utc

# --- DTSTART and its defaults ------------------------------------------------------------------


def test_rrule_without_dtstart_starts_at_creation_in_timezone() -> None:
    created = datetime(2026, 1, 15, 10, 17, 23, 456000, tzinfo=UTC)
    daily = rule("RRULE:FREQ=DAILY;BYHOUR=9;BYMINUTE=0;BYSECOND=0", "Europe/Paris", created)
    assert daily.first(created) == utc(2026, 1, 16, 8)
    assert daily.next_after(utc(2026, 7, 1)) == utc(2026, 7, 1, 7)  # 09:00 CEST
    # Fields the rule leaves out come from the creation time (RFC 5545), and the creation
    # instant itself is the first occurrence when it matches the rule.
    hourly = rule("RRULE:FREQ=HOURLY", "Europe/Paris", created)
    assert hourly.first(created) == utc(2026, 1, 15, 10, 17, 23)
    assert hourly.next_after(utc(2026, 1, 15, 10, 17, 23)) == utc(2026, 1, 15, 11, 17, 23)


def test_count_without_dtstart_counts_the_creation_instant() -> None:
    created = datetime(2026, 3, 2, 10, 17, 42, 250000, tzinfo=UTC)
    schedule = rule("RRULE:FREQ=DAILY;COUNT=3", "UTC", created)
    first = schedule.first(created)
    assert first == utc(2026, 3, 2, 10, 17, 42)
    assert chain(schedule, created, 5) == [utc(2026, 3, 3, 10, 17, 42), utc(2026, 3, 4, 10, 17, 42)]
    assert [first, *chain(schedule, created, 5)] == [
        utc(2026, 3, 2, 10, 17, 42),
        utc(2026, 3, 3, 10, 17, 42),
        utc(2026, 3, 4, 10, 17, 42),
    ]


def test_time_parts_below_the_finest_given_are_zero_without_dtstart() -> None:
    created = datetime(2026, 3, 2, 10, 17, 42, tzinfo=UTC)
    assert rule("FREQ=DAILY;BYHOUR=9", "UTC", created).first(created) == utc(2026, 3, 3, 9)
    assert rule("FREQ=DAILY;BYMINUTE=30", "UTC", created).first(created) == utc(2026, 3, 2, 10, 30)
    # parts FREQ iterates are not defaults: every minute of 09:xx, at second 0
    minutely = rule("FREQ=MINUTELY;BYHOUR=9", "UTC", created)
    assert chain(minutely, created, 3) == [
        utc(2026, 3, 3, 9, 0),
        utc(2026, 3, 3, 9, 1),
        utc(2026, 3, 3, 9, 2),
    ]
    # with no time part given, the creation's time of day is the rule's
    weekly = rule("FREQ=WEEKLY;BYDAY=FR", "UTC", created)
    assert weekly.first(created) == utc(2026, 3, 6, 10, 17, 42)
    # the creation instant is counted only when it matches the rule
    counted = rule("FREQ=DAILY;BYHOUR=9;COUNT=2", "UTC", created)
    assert chain(counted, created, 3) == [utc(2026, 3, 3, 9), utc(2026, 3, 4, 9)]


def test_an_explicit_dtstart_keeps_its_own_time_of_day() -> None:
    schedule = rule("DTSTART:20260101T101742Z\nRRULE:FREQ=DAILY;BYHOUR=9")
    assert schedule.first(utc(2026, 1, 1, 12)) == utc(2026, 1, 2, 9, 17, 42)


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


def test_dtstart_as_a_date() -> None:
    schedule = rule("DTSTART;VALUE=DATE:20260301\nRRULE:FREQ=MONTHLY;COUNT=2")
    assert chain(schedule, utc(2026, 1, 1), 3) == [utc(2026, 3, 1), utc(2026, 4, 1)]


def test_rrule_unknown_tzid() -> None:
    with schedule_error("schedule_expr"):
        rule("DTSTART;TZID=Mars/Olympus:20260101T090000\nRRULE:FREQ=DAILY")


# --- COUNT and UNTIL ---------------------------------------------------------------------------


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
    # Out of order on purpose: no query may depend on an earlier one.
    for index in (700, 10, 999, 0, 256, 513, 998):
        occurrence = start + index * step
        expected = None if index == 999 else occurrence + step
        assert schedule.next_after(occurrence) == expected
        assert schedule.next_after(occurrence - timedelta(seconds=1)) == occurrence
    assert schedule.next_after(utc(2026, 1, 1)) is None


#: the last occurrences as plain dateutil iteration from DTSTART gives them
@pytest.mark.parametrize(
    ("expr", "last"),
    [
        ("FREQ=DAILY;COUNT=100000", utc(2273, 10, 15, 9)),
        ("FREQ=DAILY;INTERVAL=2;COUNT=100000", utc(2547, 7, 30, 9)),
        ("FREQ=HOURLY;INTERVAL=5;COUNT=100000", utc(2057, 1, 14, 12)),
        ("FREQ=SECONDLY;INTERVAL=7;COUNT=100000", utc(2000, 1, 9, 11, 26, 33)),
        ("FREQ=WEEKLY;BYDAY=MO,WE,FR;COUNT=100000", utc(2638, 11, 5, 9)),
        ("FREQ=WEEKLY;INTERVAL=2;BYDAY=MO,WE,FR;BYSETPOS=2;COUNT=50000", utc(3916, 7, 12, 9)),
        ("FREQ=MONTHLY;BYDAY=-1FR;COUNT=5000", utc(2416, 8, 26, 9)),
    ],
)
def test_a_large_count_is_resolved_in_bulk(expr: str, last: datetime) -> None:
    schedule = rule(f"DTSTART:20000101T090000Z\nRRULE:{expr}")
    assert schedule.next_after(last - timedelta(seconds=1)) == last
    assert schedule.next_after(last) is None
    assert steps(schedule, last - timedelta(seconds=1)) <= 10


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


# --- BYSETPOS and the first period --------------------------------------------------------------


def test_weekly_bysetpos_picks_from_the_whole_week_around_dtstart() -> None:
    """RFC 5545: a WEEKLY period is the week from WKST, so the second of Mon/Wed/Fri is the
    Wednesday in every week, the first one too, wherever a query starts."""
    schedule = rule("DTSTART:20260107T090000Z\nRRULE:FREQ=WEEKLY;BYDAY=MO,WE,FR;BYSETPOS=2")
    wednesdays = [utc(2026, 1, d, 9) for d in (7, 14, 21, 28)]
    assert chain(schedule, utc(2026, 1, 1), 4) == wednesdays
    assert schedule.between(utc(2026, 1, 1), utc(2026, 1, 31), 10) == wednesdays
    for t in (utc(2026, 1, 9, 12), utc(2026, 1, 10), utc(2026, 1, 14, 9), utc(2026, 1, 16)):
        expected = wednesdays[bisect.bisect_right(wednesdays, t)]
        assert schedule.next_after(t) == expected, t


def test_weekly_bysetpos_with_count_from_a_sunday() -> None:
    schedule = rule("DTSTART:20260104T090000Z\nRRULE:FREQ=WEEKLY;BYDAY=MO,WE,FR;BYSETPOS=2;COUNT=3")
    expected = [utc(2026, 1, 7, 9), utc(2026, 1, 14, 9), utc(2026, 1, 21, 9)]
    assert chain(schedule, utc(2026, 1, 1), 5) == expected
    assert schedule.between(utc(2026, 1, 1), utc(2026, 3, 1), 10) == expected
    assert schedule.next_after(utc(2026, 1, 8)) == utc(2026, 1, 14, 9)


def test_bysetpos_counts_the_days_of_week_1_at_the_end_of_the_year_before() -> None:
    # 2024 starts on a Monday, and 30 and 31 December 2024 are in week 1 of 2025: nine days
    schedule = rule("DTSTART:20200101T000000Z\nRRULE:FREQ=YEARLY;BYWEEKNO=1;BYSETPOS=9")
    assert schedule.next_after(utc(2020, 1, 1)) == utc(2024, 12, 31)


@pytest.mark.parametrize(
    ("expr", "says"),
    [
        ("FREQ=SECONDLY;BYSETPOS=366;BYYEARDAY=366", "holds at most 1 occurrence"),
        ("FREQ=SECONDLY;BYSETPOS=2;BYHOUR=9", "holds at most 1 occurrence"),
        ("FREQ=MINUTELY;BYSECOND=1,2;BYSETPOS=3", "holds at most 2 occurrences"),
        ("FREQ=DAILY;BYHOUR=9;BYSETPOS=-2", "holds at most 1 occurrence"),
        ("FREQ=WEEKLY;BYDAY=MO,TU;BYSETPOS=3", "holds at most 2 occurrences"),
        (
            "FREQ=WEEKLY;BYDAY=MO,TU,WE,TH,FR,SA,SU;BYHOUR=9,17;BYSETPOS=15",
            "at most 14 occurrences",
        ),
        ("FREQ=MONTHLY;BYDAY=-1FR;BYSETPOS=2", "holds at most 1 occurrence"),
    ],
)
def test_bysetpos_that_can_never_match_is_refused(expr: str, says: str) -> None:
    with schedule_error("schedule_expr", match=says):
        rule(expr)


# --- validation -------------------------------------------------------------------------------


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
        # Every 168 hours from a Thursday neither.
        "DTSTART:20260101T090000Z\nRRULE:FREQ=HOURLY;INTERVAL=168;BYDAY=MO",
        # Every 12 months from January never reaches March.
        "DTSTART:20260101T090000Z\nRRULE:FREQ=MONTHLY;INTERVAL=12;BYMONTH=3",
    ],
)
def test_rrule_that_never_fires_has_no_first_run(expr: str) -> None:
    schedule = rule(expr)
    assert schedule.first(NOW) is None
    assert schedule.next_after(NOW) is None
    assert schedule.between(CREATED, NOW, 10) == []


def test_rrule_sparse_rule_finds_the_next_leap_day() -> None:
    schedule = rule("DTSTART:20000229T120000Z\nRRULE:FREQ=YEARLY")
    assert schedule.next_after(NOW) == utc(2028, 2, 29, 12)
    friday_13 = rule("DTSTART:20000101T000000Z\nRRULE:FREQ=MONTHLY;BYDAY=FR;BYMONTHDAY=13")
    assert friday_13.next_after(NOW) == utc(2026, 11, 13)


# --- an old DTSTART ----------------------------------------------------------------------------


def steps(schedule: Schedule, t: datetime) -> int:
    budget = Budget()
    schedule.next_after(t, budget)
    return budget.used


def test_rrule_old_dtstart_minutely_takes_a_few_steps() -> None:
    schedule = rule("DTSTART:20000101T000000Z\nRRULE:FREQ=MINUTELY")
    assert schedule.next_after(NOW) == utc(2026, 5, 13, 10, 21)
    assert steps(schedule, NOW) <= 5  # a walk from DTSTART would be 13.8 million minutes


def test_rrule_old_dtstart_hourly_takes_a_few_steps() -> None:
    start = utc(2000, 1, 1, 0, 17)
    step = timedelta(hours=5)
    schedule = rule("DTSTART:20000101T001700Z\nRRULE:FREQ=HOURLY;INTERVAL=5")
    expected = start + ((NOW - start) // step + 1) * step
    assert expected > NOW and expected - step <= NOW
    assert schedule.next_after(NOW) == expected
    assert steps(schedule, NOW) <= 5


def _probe_times() -> list[datetime]:
    """Query instants spread over 2010-2029, at irregular offsets."""
    times, t = [], utc(2010, 1, 3, 5, 7, 11)
    while t < utc(2029, 6, 1):
        times.append(t)
        t += timedelta(days=13, hours=7, minutes=29, seconds=17)
    return times


def _check_against(schedule: Schedule, reference: list[datetime]) -> None:
    """Compare next_after with a full iteration of the same rule by dateutil."""
    for t in _probe_times():
        index = bisect.bisect_right(reference, t)
        assert schedule.next_after(t) == reference[index], t


def test_the_phase_of_minutely_interval_7() -> None:
    start, step = utc(2010, 1, 1, 0, 3), timedelta(minutes=7)
    schedule = rule("DTSTART:20100101T000300Z\nRRULE:FREQ=MINUTELY;INTERVAL=7")
    for t in _probe_times():
        assert schedule.next_after(t) == start + ((t - start) // step + 1) * step


def test_the_phase_of_a_biweekly_byday_rule_across_dst() -> None:
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


def test_the_phase_of_a_monthly_bymonthday_rule() -> None:
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


def test_monthly_from_the_31st_skips_short_months() -> None:
    schedule = rule("DTSTART;TZID=Europe/Paris:20000131T120000\nRRULE:FREQ=MONTHLY;INTERVAL=2")
    reference = rrule(
        MONTHLY,
        interval=2,
        dtstart=datetime(2000, 1, 31, 12, tzinfo=PARIS),
        until=datetime(2031, 1, 1, tzinfo=PARIS),
    )
    _check_against(schedule, [x.astimezone(UTC) for x in reference])
