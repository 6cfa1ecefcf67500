"""Helpers shared by the schedule tests."""

from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from zoneinfo import ZoneInfo

import pytest

from app.core.errors import ScheduleError
from app.core.schedules import Schedule, parse_schedule

CREATED = datetime(2026, 1, 1, tzinfo=UTC)
#: a Wednesday
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
def schedule_error(field: str, match: str | None = None) -> Iterator[None]:
    """The block raises a ``ScheduleError`` on ``field`` (whose message matches ``match``)."""
    with pytest.raises(ScheduleError, match=match) as info:
        yield
    assert info.value.field == field


def chain(schedule: Schedule, start: datetime, n: int) -> list[datetime]:
    """The next ``n`` occurrences after ``start``, each found from the one before."""
    found: list[datetime] = []
    t: datetime | None = start
    while len(found) < n and t is not None:
        t = schedule.next_after(t)
        if t is not None:
            found.append(t)
    return found
