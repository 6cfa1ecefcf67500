"""The end of the calendar: every occurrence whose instant is at or before
9999-12-31T23:59:59.999999Z is found, in zones east and west of UTC, and none after it."""

from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest

from tests.unit.schedules.support import cron, once, rule, utc

END = datetime.max.replace(tzinfo=UTC)
ZONES = ["UTC", "Pacific/Kiritimati", "Etc/GMT+12", "America/New_York", "Asia/Kathmandu"]


@pytest.mark.parametrize("zone", ZONES)
def test_every_seventh_minute_up_to_the_end(zone: str) -> None:
    tz = ZoneInfo(zone)
    expected = []
    wall = datetime(9999, 12, 29)
    while wall < datetime(9999, 12, 31, 23, 59):
        wall += timedelta(minutes=1)
        if wall.minute % 7 == 0:
            try:
                expected.append(wall.replace(tzinfo=tz).astimezone(UTC))
            except OverflowError:
                break  # the wall time is in year 10000 in UTC
    for schedule in (
        cron("*/7 * * * *", zone),
        rule(
            "DTSTART:99990101T000000\nRRULE:FREQ=MINUTELY;BYMINUTE=0,7,14,21,28,35,42,49,56", zone
        ),
    ):
        start = expected[-100] - timedelta(seconds=1)
        assert schedule.between(start, END, 200) == expected[-100:]
        assert schedule.next_after(expected[-1]) is None
        assert schedule.next_after(expected[-1] - timedelta(microseconds=1)) == expected[-1]


@pytest.mark.parametrize(
    ("zone", "last"),
    [
        ("Asia/Kathmandu", utc(9999, 12, 31, 18, 14)),  # 23:59 at +05:45
        ("Australia/Lord_Howe", utc(9999, 12, 31, 12, 59)),  # 23:59 at +11
        ("UTC", utc(9999, 12, 31, 23, 59)),
    ],
)
def test_the_last_minute_of_the_calendar(zone: str, last: datetime) -> None:
    for schedule in (
        cron("59 23 31 12 *", zone),
        rule("DTSTART:20000101T235900\nRRULE:FREQ=YEARLY;BYMONTH=12;BYMONTHDAY=31", zone),
    ):
        assert schedule.next_after(utc(9999, 12, 30)) == last
        assert schedule.next_after(last) is None
        assert schedule.between(utc(9999, 12, 30), END, 5) == [last]


def test_the_last_second() -> None:
    every_second = cron("* * * * * *")
    assert every_second.next_after(utc(9999, 12, 31, 23, 59, 58)) == utc(9999, 12, 31, 23, 59, 59)
    assert every_second.next_after(utc(9999, 12, 31, 23, 59, 59)) is None
    secondly = rule("DTSTART:99991231T235950Z\nRRULE:FREQ=SECONDLY")
    assert secondly.between(utc(9999, 12, 31, 23, 59, 57), END, 5) == [
        utc(9999, 12, 31, 23, 59, 58),
        utc(9999, 12, 31, 23, 59, 59),
    ]


def test_wall_times_west_of_utc_that_fall_in_year_10000_never_occur() -> None:
    # 15:00..18:00 in New York are 20:00..23:00Z; 19:00 would be in year 10000
    hourly = rule("DTSTART:99991231T150000\nRRULE:FREQ=HOURLY", "America/New_York")
    assert hourly.between(utc(9999, 12, 31), END, 10) == [
        utc(9999, 12, 31, 20),
        utc(9999, 12, 31, 21),
        utc(9999, 12, 31, 22),
        utc(9999, 12, 31, 23),
    ]
    assert once("9999-12-31T18:59:59", "America/New_York").first(utc(2026, 1, 1)) == utc(
        9999, 12, 31, 23, 59, 59
    )
