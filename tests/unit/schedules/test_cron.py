"""Cron: fields as crontab(5) defines them, our extensions (L, W, n#k, nL, wrapped ranges,
seconds), and the refusals that say what to write instead."""

from collections.abc import Callable
from datetime import date, datetime, timedelta

import pytest

from app.core.schedules import Budget
from tests.unit.schedules.support import NOW, PARIS, chain, cron, schedule_error, utc


def midnights(expr: str, start: date, n: int) -> list[date]:
    """The dates of the next ``n`` midnight runs of ``expr`` after ``start``."""
    begin = datetime(start.year, start.month, start.day, tzinfo=NOW.tzinfo)
    return [d.date() for d in chain(cron(expr), begin, n)]


def days_where(keep: Callable[[date], bool], start: date, n: int) -> list[date]:
    """The first ``n`` dates after ``start`` that ``keep`` accepts, by walking day by day."""
    found, day = [], start
    while len(found) < n:
        day += timedelta(days=1)
        if keep(day):
            found.append(day)
    return found


def last_day(d: date) -> bool:
    return (d + timedelta(days=1)).month != d.month


def nth_of_month(d: date) -> int:
    return (d.day - 1) // 7 + 1


START = date(2026, 1, 1)


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


def test_cron_first_is_strictly_after_now() -> None:
    schedule = cron("0 10 * * *")
    assert schedule.first(utc(2026, 5, 13, 10)) == utc(2026, 5, 14, 10)
    assert schedule.first(utc(2026, 5, 13, 9, 59, 59)) == utc(2026, 5, 13, 10)


def test_cron_in_a_non_utc_zone() -> None:
    schedule = cron("0 9 * * *", "Europe/Paris")
    assert schedule.next_after(utc(2026, 1, 15, 12)) == utc(2026, 1, 16, 8)  # CET, +01:00
    assert schedule.next_after(utc(2026, 7, 15, 12)) == utc(2026, 7, 16, 7)  # CEST, +02:00
    result = schedule.next_after(utc(2026, 7, 15, 12))
    assert result is not None and result.tzinfo is NOW.tzinfo


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


# --- crontab(5) ------------------------------------------------------------------------------


def test_an_equal_range_is_the_single_value() -> None:
    assert midnights("0 0 * * 1-1", START, 3) == [
        date(2026, 1, 5),
        date(2026, 1, 12),
        date(2026, 1, 19),
    ]
    assert chain(cron("5-5 * * * *"), utc(2026, 1, 1), 3) == [
        utc(2026, 1, 1, 0, 5),
        utc(2026, 1, 1, 1, 5),
        utc(2026, 1, 1, 2, 5),
    ]
    assert midnights("0 0 1 JAN-JAN *", START, 2) == [date(2027, 1, 1), date(2028, 1, 1)]
    assert chain(cron("1-1/5 * * * *"), utc(2026, 1, 1), 2) == [
        utc(2026, 1, 1, 0, 1),
        utc(2026, 1, 1, 1, 1),
    ]
    assert midnights("0 0 * * 7-7", START, 2) == [date(2026, 1, 4), date(2026, 1, 11)]


def test_both_day_fields_restricted_means_either() -> None:
    expected = days_where(lambda d: d.day == 13 or d.weekday() == 4, START, 12)
    assert midnights("0 0 13 * 5", START, 12) == expected
    assert midnights("0 0 13 * FRI", START, 12) == expected


def test_the_13th_or_the_second_friday() -> None:
    expected = days_where(
        lambda d: d.day == 13 or (d.weekday() == 4 and nth_of_month(d) == 2), START, 10
    )
    assert midnights("0 0 13 * 5#2", START, 10) == expected
    assert date(2026, 1, 13) in expected and date(2026, 1, 9) in expected


def test_a_day_field_starting_with_a_star_means_both() -> None:
    # crontab(5): only fields that do not start with * are "restricted"; */2 starts with *
    odd_mondays = days_where(lambda d: d.day % 2 == 1 and d.weekday() == 0, START, 6)
    assert midnights("0 0 */2 * 1", START, 6) == odd_mondays
    mondays = days_where(lambda d: d.weekday() == 0, START, 6)
    assert midnights("0 0 * * 1", START, 6) == mondays
    assert midnights("0 0 ? * 1", START, 6) == mondays
    firsts = days_where(lambda d: d.day == 1, START, 6)
    assert midnights("0 0 1 * *", START, 6) == firsts
    assert midnights("0 0 1 * ?", START, 6) == firsts
    # a range covering every day does not start with *: either field, so every day
    assert midnights("0 0 1-31 * 1", START, 6) == days_where(lambda d: True, START, 6)


def test_numbered_weekdays_mix_with_plain_ones() -> None:
    sundays = days_where(lambda d: d.weekday() == 6, START, 8)
    assert midnights("0 0 * * 0,0#1", START, 8) == sundays
    assert midnights("0 0 * * 0#1,0", START, 8) == sundays
    mondays_and_second_fridays = days_where(
        lambda d: d.weekday() == 0 or (d.weekday() == 4 and nth_of_month(d) == 2), START, 12
    )
    assert midnights("0 0 * * 1,5#2", START, 12) == mondays_and_second_fridays
    assert midnights("0 0 * * 5#2,1", START, 12) == mondays_and_second_fridays


def test_the_fifth_weekday_only_in_months_that_have_one() -> None:
    fifth_mondays = days_where(lambda d: d.weekday() == 0 and nth_of_month(d) == 5, START, 5)
    assert midnights("0 0 * * MON#5", START, 5) == fifth_mondays
    # a fifth Friday in February needs a leap year whose February starts on a Friday
    assert midnights("0 0 * 2 5#5", START, 2) == [date(2036, 2, 29), date(2064, 2, 29)]


def test_last_day_and_last_weekday() -> None:
    assert midnights("0 0 L * *", START, 3) == [
        date(2026, 1, 31),
        date(2026, 2, 28),
        date(2026, 3, 31),
    ]
    assert midnights("0 0 L 2 *", START, 3) == [
        date(2026, 2, 28),
        date(2027, 2, 28),
        date(2028, 2, 29),
    ]
    assert midnights("0 0 1,L * *", START, 4) == [
        date(2026, 1, 31),
        date(2026, 2, 1),
        date(2026, 2, 28),
        date(2026, 3, 1),
    ]
    assert midnights("0 0 27-L 2 *", START, 3) == [
        date(2026, 2, 27),
        date(2026, 2, 28),
        date(2027, 2, 27),
    ]
    last_fridays = days_where(
        lambda d: d.weekday() == 4 and d.month != (d + timedelta(7)).month, START, 6
    )
    assert midnights("0 0 * * 5L", START, 6) == last_fridays
    assert midnights("0 0 * * L5", START, 6) == last_fridays
    assert midnights("0 0 * * FRIL", START, 6) == last_fridays
    assert all(last_day(d) for d in midnights("0 0 L * *", START, 24))


def test_nearest_weekday() -> None:
    # 2026-02-15 is a Sunday (Monday 16th); 2026-08-01 a Saturday (Monday 3rd, same month);
    # 2026-05-31 a Sunday (Friday 29th, same month); February has no 31st: its last day counts
    assert midnights("0 0 15W * *", START, 2) == [date(2026, 1, 15), date(2026, 2, 16)]
    assert midnights("0 0 1W 8 *", START, 1) == [date(2026, 8, 3)]
    assert midnights("0 0 31W 5 *", START, 1) == [date(2026, 5, 29)]
    assert midnights("0 0 31W 2 *", START, 1) == [date(2026, 2, 27)]


def test_wrapped_ranges() -> None:
    hours = [d.hour for d in chain(cron("0 22-2 * * *"), utc(2026, 1, 1, 12), 5)]
    assert hours == [22, 23, 0, 1, 2]
    stepped = [d.hour for d in chain(cron("0 22-2/2 * * *"), utc(2026, 1, 1, 12), 4)]
    assert stepped == [22, 0, 2, 22]
    months = {d.month for d in midnights("0 0 1 NOV-FEB *", START, 8)}
    assert months == {11, 12, 1, 2}
    weekend = days_where(lambda d: d.weekday() in (4, 5, 6, 0), START, 8)
    assert midnights("0 0 * * FRI-MON", START, 8) == weekend
    assert midnights("0 0 * * 5-1", START, 8) == weekend
    assert midnights("0 0 * * 6-0", START, 4) == days_where(lambda d: d.weekday() >= 5, START, 4)


def test_sunday_is_0_or_7_and_names_ignore_case() -> None:
    sundays = days_where(lambda d: d.weekday() == 6, START, 3)
    assert midnights("0 0 * * 7", START, 3) == sundays
    assert midnights("0 0 * * sun", START, 3) == sundays
    weekend = days_where(lambda d: d.weekday() >= 5, START, 4)
    assert midnights("0 0 * * 6-7", START, 4) == weekend
    assert midnights("0 0 1 jan,Jul *", START, 2) == [date(2026, 7, 1), date(2027, 1, 1)]


def test_a_step_from_a_value_runs_to_the_end_of_the_field() -> None:
    minutes = [d.minute for d in chain(cron("5/20 * * * *"), utc(2026, 1, 1), 4)]
    assert minutes == [5, 25, 45, 5]


def test_six_fields_put_seconds_last() -> None:
    assert chain(cron("30 9 * * * 0,30"), utc(2026, 1, 1), 3) == [
        utc(2026, 1, 1, 9, 30, 0),
        utc(2026, 1, 1, 9, 30, 30),
        utc(2026, 1, 2, 9, 30, 0),
    ]


@pytest.mark.parametrize(
    ("expr", "says"),
    [
        ("garbage", "5 fields"),
        ("* * * *", "5 fields"),
        ("0 0 * * * 0 2026", "5 fields"),  # seven fields
        ("0 0 30 2 *", "matches no date"),  # valid syntax, no such date
        ("0 0 31 4,6,9,11 *", "matches no date"),
        ("61 * * * *", "minute values are 0-59"),
        ("0 24 * * *", "hour values are 0-23"),
        ("0 0 0 * *", "day-of-month values are 1-31"),
        ("0 0 * 13 *", "month values are 1-12"),
        ("0 0 * * 8", "day-of-week values are 0-7"),
        ("@reboot", "unknown cron alias"),
        ("H * * * *", "hashed values"),
        ("*/0 * * * *", "step must be 1 or more"),
        ("? * * * *", "only a whole day-of-month or day-of-week"),
        ("0 0 L-2 * *", "write L"),
        ("0 0 LW * *", "nW"),
        ("0 0 1,15W * *", "nW"),
        ("0 0 * * 5#6", "k in 1..5"),
        ("0 0 * * 1-5#2", "one weekday"),
        ("0 0 * * L", "nL"),
        ("0 0 * JAN-L *", "only fits day-of-month"),
        ("0 0 * * MON-XYZ", "not a day-of-week value"),
    ],
)
def test_cron_invalid_says_what_to_write(expr: str, says: str) -> None:
    with schedule_error("schedule_expr", match=says):
        cron(expr)


def test_the_search_is_month_by_month() -> None:
    # the next fifth Friday of February is 10 years away: about 10 steps, not 3,650 days
    budget = Budget()
    assert cron("0 0 * 2 5#5").next_after(utc(2026, 1, 1), budget) == utc(2036, 2, 29)
    assert budget.used <= 12
