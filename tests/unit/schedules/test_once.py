"""once: an RFC 3339 instant; without an offset, a wall time in the task's zone."""

import pytest

from tests.unit.schedules.support import NOW, once, schedule_error, utc


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
    assert once("2026-12-01T10:00:00.250-05:30").first(NOW) == utc(2026, 12, 1, 15, 30).replace(
        microsecond=250000
    )


def test_once_without_offset_is_read_in_timezone() -> None:
    assert once("2026-12-01T10:00:00", "Europe/Paris").first(NOW) == utc(2026, 12, 1, 9)
    assert once("2026-07-01T10:00:00", "Europe/Paris").first(NOW) == utc(2026, 7, 1, 8)


@pytest.mark.parametrize(
    "expr",
    [
        "2026-12-01",
        "garbage",
        "2026-13-01T00:00:00Z",
        "2026-12-01T25:00:00Z",
        "2026-12-01T10:00:00+24:00",
        "1764583200",
        "9999-12-31T23:30:00-01:00",  # year 10000 in UTC
    ],
)
def test_once_invalid(expr: str) -> None:
    with schedule_error("schedule_expr"):
        once(expr)
