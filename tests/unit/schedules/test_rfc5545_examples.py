"""Every example of RFC 5545 section 3.8.5.3 that a task can express, with the RFC's own dates.

All examples are in America/New_York at 09:00 local unless they say otherwise. The one example
that needs EXDATE (Friday the 13th) is given without it: its DTSTART does not match the rule,
so it is not an occurrence here either.
"""

from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest

from tests.unit.schedules.support import chain, rule

NY = ZoneInfo("America/New_York")


def at(year: int, month: int, day: int, hour: int = 9, minute: int = 0) -> datetime:
    return datetime(year, month, day, hour, minute, tzinfo=NY).astimezone(UTC)


def days(year: int, month: int, *numbers: int) -> list[datetime]:
    return [at(year, month, d) for d in numbers]


def span(year: int, month: int, first: int, last: int) -> list[datetime]:
    return days(year, month, *range(first, last + 1))


def occurrences(dtstart: str, rrule: str, n: int) -> list[datetime]:
    schedule = rule(f"DTSTART;TZID=America/New_York:{dtstart}\nRRULE:{rrule}")
    start = datetime.strptime(dtstart, "%Y%m%dT%H%M%S").replace(tzinfo=NY).astimezone(UTC)
    return chain(schedule, start - timedelta(seconds=1), n)


#: (DTSTART, RRULE, the RFC's dates, whether the rule ends there)
EXAMPLES = {
    "daily for 10 occurrences": (
        "19970902T090000",
        "FREQ=DAILY;COUNT=10",
        span(1997, 9, 2, 11),
        True,
    ),
    "daily until December 24, 1997": (
        "19970902T090000",
        "FREQ=DAILY;UNTIL=19971224T000000Z",
        span(1997, 9, 2, 30)
        + span(1997, 10, 1, 31)
        + span(1997, 11, 1, 30)
        + span(1997, 12, 1, 23),
        True,
    ),
    "every other day, forever": (
        "19970902T090000",
        "FREQ=DAILY;INTERVAL=2",
        days(1997, 9, *range(2, 31, 2))
        + days(1997, 10, *range(2, 31, 2))
        + days(1997, 11, *range(1, 30, 2))
        + days(1997, 12, 1, 3),
        False,
    ),
    "every 10 days, 5 occurrences": (
        "19970902T090000",
        "FREQ=DAILY;INTERVAL=10;COUNT=5",
        days(1997, 9, 2, 12, 22) + days(1997, 10, 2, 12),
        True,
    ),
    "every day in January, for 3 years (yearly)": (
        "19980101T090000",
        "FREQ=YEARLY;UNTIL=20000131T140000Z;BYMONTH=1;BYDAY=SU,MO,TU,WE,TH,FR,SA",
        span(1998, 1, 1, 31) + span(1999, 1, 1, 31) + span(2000, 1, 1, 31),
        True,
    ),
    "every day in January, for 3 years (daily)": (
        "19980101T090000",
        "FREQ=DAILY;UNTIL=20000131T140000Z;BYMONTH=1",
        span(1998, 1, 1, 31) + span(1999, 1, 1, 31) + span(2000, 1, 1, 31),
        True,
    ),
    "weekly for 10 occurrences": (
        "19970902T090000",
        "FREQ=WEEKLY;COUNT=10",
        days(1997, 9, 2, 9, 16, 23, 30) + days(1997, 10, 7, 14, 21, 28) + days(1997, 11, 4),
        True,
    ),
    "weekly until December 24, 1997": (
        "19970902T090000",
        "FREQ=WEEKLY;UNTIL=19971224T000000Z",
        days(1997, 9, 2, 9, 16, 23, 30)
        + days(1997, 10, 7, 14, 21, 28)
        + days(1997, 11, 4, 11, 18, 25)
        + days(1997, 12, 2, 9, 16, 23),
        True,
    ),
    "every other week, forever": (
        "19970902T090000",
        "FREQ=WEEKLY;INTERVAL=2;WKST=SU",
        days(1997, 9, 2, 16, 30)
        + days(1997, 10, 14, 28)
        + days(1997, 11, 11, 25)
        + days(1997, 12, 9, 23)
        + days(1998, 1, 6, 20)
        + days(1998, 2, 3, 17),
        False,
    ),
    "weekly on Tuesday and Thursday for five weeks (until)": (
        "19970902T090000",
        "FREQ=WEEKLY;UNTIL=19971007T000000Z;WKST=SU;BYDAY=TU,TH",
        days(1997, 9, 2, 4, 9, 11, 16, 18, 23, 25, 30) + days(1997, 10, 2),
        True,
    ),
    "weekly on Tuesday and Thursday for five weeks (count)": (
        "19970902T090000",
        "FREQ=WEEKLY;COUNT=10;WKST=SU;BYDAY=TU,TH",
        days(1997, 9, 2, 4, 9, 11, 16, 18, 23, 25, 30) + days(1997, 10, 2),
        True,
    ),
    "every other week on Monday, Wednesday and Friday until December 24, 1997": (
        "19970901T090000",
        "FREQ=WEEKLY;INTERVAL=2;UNTIL=19971224T000000Z;WKST=SU;BYDAY=MO,WE,FR",
        days(1997, 9, 1, 3, 5, 15, 17, 19, 29)
        + days(1997, 10, 1, 3, 13, 15, 17, 27, 29, 31)
        + days(1997, 11, 10, 12, 14, 24, 26, 28)
        + days(1997, 12, 8, 10, 12, 22),
        True,
    ),
    "every other week on Tuesday and Thursday, for 8 occurrences": (
        "19970902T090000",
        "FREQ=WEEKLY;INTERVAL=2;COUNT=8;WKST=SU;BYDAY=TU,TH",
        days(1997, 9, 2, 4, 16, 18, 30) + days(1997, 10, 2, 14, 16),
        True,
    ),
    "monthly on the first Friday for 10 occurrences": (
        "19970905T090000",
        "FREQ=MONTHLY;COUNT=10;BYDAY=1FR",
        days(1997, 9, 5)
        + days(1997, 10, 3)
        + days(1997, 11, 7)
        + days(1997, 12, 5)
        + days(1998, 1, 2)
        + days(1998, 2, 6)
        + days(1998, 3, 6)
        + days(1998, 4, 3)
        + days(1998, 5, 1)
        + days(1998, 6, 5),
        True,
    ),
    "monthly on the first Friday until December 24, 1997": (
        "19970905T090000",
        "FREQ=MONTHLY;UNTIL=19971224T000000Z;BYDAY=1FR",
        days(1997, 9, 5) + days(1997, 10, 3) + days(1997, 11, 7) + days(1997, 12, 5),
        True,
    ),
    "every other month on the first and last Sunday, 10 occurrences": (
        "19970907T090000",
        "FREQ=MONTHLY;INTERVAL=2;COUNT=10;BYDAY=1SU,-1SU",
        days(1997, 9, 7, 28)
        + days(1997, 11, 2, 30)
        + days(1998, 1, 4, 25)
        + days(1998, 3, 1, 29)
        + days(1998, 5, 3, 31),
        True,
    ),
    "monthly on the second-to-last Monday for 6 months": (
        "19970922T090000",
        "FREQ=MONTHLY;COUNT=6;BYDAY=-2MO",
        days(1997, 9, 22)
        + days(1997, 10, 20)
        + days(1997, 11, 17)
        + days(1997, 12, 22)
        + days(1998, 1, 19)
        + days(1998, 2, 16),
        True,
    ),
    "monthly on the third-to-the-last day, forever": (
        "19970928T090000",
        "FREQ=MONTHLY;BYMONTHDAY=-3",
        days(1997, 9, 28)
        + days(1997, 10, 29)
        + days(1997, 11, 28)
        + days(1997, 12, 29)
        + days(1998, 1, 29)
        + days(1998, 2, 26),
        False,
    ),
    "monthly on the 2nd and 15th for 10 occurrences": (
        "19970902T090000",
        "FREQ=MONTHLY;COUNT=10;BYMONTHDAY=2,15",
        days(1997, 9, 2, 15)
        + days(1997, 10, 2, 15)
        + days(1997, 11, 2, 15)
        + days(1997, 12, 2, 15)
        + days(1998, 1, 2, 15),
        True,
    ),
    "monthly on the first and last day for 10 occurrences": (
        "19970930T090000",
        "FREQ=MONTHLY;COUNT=10;BYMONTHDAY=1,-1",
        days(1997, 9, 30)
        + days(1997, 10, 1, 31)
        + days(1997, 11, 1, 30)
        + days(1997, 12, 1, 31)
        + days(1998, 1, 1, 31)
        + days(1998, 2, 1),
        True,
    ),
    "every 18 months on the 10th thru 15th for 10 occurrences": (
        "19970910T090000",
        "FREQ=MONTHLY;INTERVAL=18;COUNT=10;BYMONTHDAY=10,11,12,13,14,15",
        span(1997, 9, 10, 15) + span(1999, 3, 10, 13),
        True,
    ),
    "every Tuesday, every other month": (
        "19970902T090000",
        "FREQ=MONTHLY;INTERVAL=2;BYDAY=TU",
        days(1997, 9, 2, 9, 16, 23, 30)
        + days(1997, 11, 4, 11, 18, 25)
        + days(1998, 1, 6, 13, 20, 27)
        + days(1998, 3, 3, 10, 17, 24, 31),
        False,
    ),
    "yearly in June and July for 10 occurrences": (
        "19970610T090000",
        "FREQ=YEARLY;COUNT=10;BYMONTH=6,7",
        [at(y, m, 10) for y in range(1997, 2002) for m in (6, 7)],
        True,
    ),
    "every other year on January, February and March for 10 occurrences": (
        "19970310T090000",
        "FREQ=YEARLY;INTERVAL=2;COUNT=10;BYMONTH=1,2,3",
        [at(1997, 3, 10)] + [at(y, m, 10) for y in (1999, 2001, 2003) for m in (1, 2, 3)],
        True,
    ),
    "every third year on the 1st, 100th and 200th day for 10 occurrences": (
        "19970101T090000",
        "FREQ=YEARLY;INTERVAL=3;COUNT=10;BYYEARDAY=1,100,200",
        days(1997, 1, 1)
        + days(1997, 4, 10)
        + days(1997, 7, 19)
        + days(2000, 1, 1)
        + days(2000, 4, 9)
        + days(2000, 7, 18)
        + days(2003, 1, 1)
        + days(2003, 4, 10)
        + days(2003, 7, 19)
        + days(2006, 1, 1),
        True,
    ),
    "every 20th Monday of the year, forever": (
        "19970519T090000",
        "FREQ=YEARLY;BYDAY=20MO",
        days(1997, 5, 19) + days(1998, 5, 18) + days(1999, 5, 17),
        False,
    ),
    "Monday of week number 20, forever": (
        "19970512T090000",
        "FREQ=YEARLY;BYWEEKNO=20;BYDAY=MO",
        days(1997, 5, 12) + days(1998, 5, 11) + days(1999, 5, 17),
        False,
    ),
    "every Thursday in March, forever": (
        "19970313T090000",
        "FREQ=YEARLY;BYMONTH=3;BYDAY=TH",
        days(1997, 3, 13, 20, 27) + days(1998, 3, 5, 12, 19, 26) + days(1999, 3, 4, 11, 18, 25),
        False,
    ),
    "every Thursday, but only during June, July and August, forever": (
        "19970605T090000",
        "FREQ=YEARLY;BYDAY=TH;BYMONTH=6,7,8",
        days(1997, 6, 5, 12, 19, 26)
        + days(1997, 7, 3, 10, 17, 24, 31)
        + days(1997, 8, 7, 14, 21, 28)
        + days(1998, 6, 4, 11, 18, 25)
        + days(1998, 7, 2, 9, 16, 23, 30)
        + days(1998, 8, 6, 13, 20, 27)
        + days(1999, 6, 3, 10, 17, 24)
        + days(1999, 7, 1, 8, 15, 22, 29)
        + days(1999, 8, 5, 12, 19, 26),
        False,
    ),
    "every Friday the 13th, forever": (
        "19970902T090000",
        "FREQ=MONTHLY;BYDAY=FR;BYMONTHDAY=13",
        days(1998, 2, 13)
        + days(1998, 3, 13)
        + days(1998, 11, 13)
        + days(1999, 8, 13)
        + days(2000, 10, 13),
        False,
    ),
    "the first Saturday that follows the first Sunday of the month, forever": (
        "19970913T090000",
        "FREQ=MONTHLY;BYDAY=SA;BYMONTHDAY=7,8,9,10,11,12,13",
        days(1997, 9, 13)
        + days(1997, 10, 11)
        + days(1997, 11, 8)
        + days(1997, 12, 13)
        + days(1998, 1, 10)
        + days(1998, 2, 7)
        + days(1998, 3, 7)
        + days(1998, 4, 11)
        + days(1998, 5, 9)
        + days(1998, 6, 13),
        False,
    ),
    "every 4 years, the first Tuesday after a Monday in November, forever": (
        "19961105T090000",
        "FREQ=YEARLY;INTERVAL=4;BYMONTH=11;BYDAY=TU;BYMONTHDAY=2,3,4,5,6,7,8",
        days(1996, 11, 5) + days(2000, 11, 7) + days(2004, 11, 2),
        False,
    ),
    "the third instance of Tuesday, Wednesday or Thursday, for the next 3 months": (
        "19970904T090000",
        "FREQ=MONTHLY;COUNT=3;BYDAY=TU,WE,TH;BYSETPOS=3",
        days(1997, 9, 4) + days(1997, 10, 7) + days(1997, 11, 6),
        True,
    ),
    "the second-to-last weekday of the month": (
        "19970929T090000",
        "FREQ=MONTHLY;BYDAY=MO,TU,WE,TH,FR;BYSETPOS=-2",
        days(1997, 9, 29)
        + days(1997, 10, 30)
        + days(1997, 11, 27)
        + days(1997, 12, 30)
        + days(1998, 1, 29)
        + days(1998, 2, 26)
        + days(1998, 3, 30),
        False,
    ),
    "every 15 minutes for 6 occurrences": (
        "19970902T090000",
        "FREQ=MINUTELY;INTERVAL=15;COUNT=6",
        [at(1997, 9, 2, h, m) for h, m in ((9, 0), (9, 15), (9, 30), (9, 45), (10, 0), (10, 15))],
        True,
    ),
    "every hour and a half for 4 occurrences": (
        "19970902T090000",
        "FREQ=MINUTELY;INTERVAL=90;COUNT=4",
        [at(1997, 9, 2, h, m) for h, m in ((9, 0), (10, 30), (12, 0), (13, 30))],
        True,
    ),
    "every 20 minutes from 9:00 to 16:40 every day (daily)": (
        "19970902T090000",
        "FREQ=DAILY;BYHOUR=9,10,11,12,13,14,15,16;BYMINUTE=0,20,40",
        [at(1997, 9, d, h, m) for d in (2, 3) for h in range(9, 17) for m in (0, 20, 40)],
        False,
    ),
    "every 20 minutes from 9:00 to 16:40 every day (minutely)": (
        "19970902T090000",
        "FREQ=MINUTELY;INTERVAL=20;BYHOUR=9,10,11,12,13,14,15,16",
        [at(1997, 9, d, h, m) for d in (2, 3) for h in range(9, 17) for m in (0, 20, 40)],
        False,
    ),
    "days generated depend on WKST (MO)": (
        "19970805T090000",
        "FREQ=WEEKLY;INTERVAL=2;COUNT=4;BYDAY=TU,SU;WKST=MO",
        days(1997, 8, 5, 10, 19, 24),
        True,
    ),
    "days generated depend on WKST (SU)": (
        "19970805T090000",
        "FREQ=WEEKLY;INTERVAL=2;COUNT=4;BYDAY=TU,SU;WKST=SU",
        days(1997, 8, 5, 17, 19, 31),
        True,
    ),
    "an invalid date (February 30) is ignored": (
        "20070115T090000",
        "FREQ=MONTHLY;BYMONTHDAY=15,30;COUNT=5",
        days(2007, 1, 15, 30) + days(2007, 2, 15) + days(2007, 3, 15, 30),
        True,
    ),
}


@pytest.mark.parametrize("name", EXAMPLES)
def test_rfc5545_example(name: str) -> None:
    dtstart, rrule, expected, ends = EXAMPLES[name]
    found = occurrences(dtstart, rrule, len(expected) + (5 if ends else 0))
    assert found == expected


def test_every_3_hours_from_9_to_5_on_a_specific_day() -> None:
    """The RFC gives UNTIL=19970902T170000Z, which is 13:00 EDT: by UNTIL's own definition
    (inclusive, a UTC instant) that stops after 12:00. Its list, 09:00, 12:00 and 15:00, is
    what UNTIL at 17:00 local (21:00Z) gives."""
    as_written = occurrences("19970902T090000", "FREQ=HOURLY;INTERVAL=3;UNTIL=19970902T170000Z", 5)
    assert as_written == [at(1997, 9, 2, 9), at(1997, 9, 2, 12)]
    until_5pm = occurrences("19970902T090000", "FREQ=HOURLY;INTERVAL=3;UNTIL=19970902T210000Z", 5)
    assert until_5pm == [at(1997, 9, 2, 9), at(1997, 9, 2, 12), at(1997, 9, 2, 15)]


def test_between_agrees_with_the_examples() -> None:
    for dtstart, rrule, expected, _ in EXAMPLES.values():
        schedule = rule(f"DTSTART;TZID=America/New_York:{dtstart}\nRRULE:{rrule}")
        start = expected[0] - timedelta(seconds=1)
        assert schedule.between(start, expected[-1], len(expected)) == expected, rrule
