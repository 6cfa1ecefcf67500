"""Schedules through the API: next_run_at on create for every kind, and 400 for bad ones."""

from datetime import UTC, datetime
from typing import Any

import pytest
from litestar.testing import TestClient

from app import clock
from tests.support.agents import A
from tests.support.api import assert_400, create, task_body

#: a Saturday, mid-afternoon UTC: far from any DST change in the zones used below
NOW = datetime(2026, 11, 28, 13, 37, 10, tzinfo=UTC)


@pytest.fixture(autouse=True)
def _at_fixed_time() -> None:
    clock.shift(clock.to_ms(NOW) - clock.now_ms())


def at(stamp: str) -> str:
    """An RFC 3339 ``Z`` timestamp as the API writes it."""
    return (
        datetime.fromisoformat(stamp).astimezone(UTC).isoformat(timespec="milliseconds")[:-6] + "Z"
    )


@pytest.mark.parametrize(
    ("kind", "expr", "tz", "expected"),
    [
        ("cron", "*/15 * * * *", "UTC", "2026-11-28T13:45:00+00:00"),
        ("cron", "0 9 * * 1-5", "Europe/Paris", "2026-11-30T09:00:00+01:00"),
        ("cron", "* * * * * 30", "UTC", "2026-11-28T13:37:30+00:00"),
        ("cron", "12 0 * * * 45", "UTC", "2026-11-29T00:12:45+00:00"),
        ("cron", "@hourly", "UTC", "2026-11-28T14:00:00+00:00"),
        ("cron", "@daily", "Asia/Tokyo", "2026-11-29T00:00:00+09:00"),
        ("cron", "@weekly", "UTC", "2026-11-29T00:00:00+00:00"),
        ("cron", "@monthly", "UTC", "2026-12-01T00:00:00+00:00"),
        ("cron", "@yearly", "UTC", "2027-01-01T00:00:00+00:00"),
        (
            "rrule",
            "RRULE:FREQ=DAILY;BYHOUR=9;BYMINUTE=0;BYSECOND=0",
            "Europe/Paris",
            "2026-11-29T09:00:00+01:00",
        ),
        # without DTSTART the rule starts at creation, in the task's timezone, and the creation
        # instant is its first occurrence when it matches the rule
        ("rrule", "RRULE:FREQ=HOURLY;INTERVAL=2", "UTC", "2026-11-28T13:37:10+00:00"),
        (
            "rrule",
            "DTSTART;TZID=America/New_York:20200101T080000\nRRULE:FREQ=DAILY",
            "UTC",
            "2026-11-29T08:00:00-05:00",
        ),
        (
            "rrule",
            "DTSTART:20200101T000000Z\nRRULE:FREQ=MINUTELY;INTERVAL=7",
            "Asia/Tokyo",
            None,
        ),
        ("once", "2027-01-01T10:00:00Z", "Asia/Tokyo", "2027-01-01T10:00:00+00:00"),
        ("once", "2027-01-01T10:00:00+02:00", "UTC", "2027-01-01T10:00:00+02:00"),
        ("once", "2027-01-01T10:00:00", "Europe/Chisinau", "2027-01-01T10:00:00+02:00"),
        ("once", "2027-07-01T10:00:00.250", "Europe/Chisinau", "2027-07-01T10:00:00.250+03:00"),
    ],
)
def test_next_run_at_on_create(
    api: TestClient[Any], kind: str, expr: str, tz: str, expected: str | None
) -> None:
    task = create(api, schedule_kind=kind, schedule_expr=expr, timezone=tz)
    assert task["status"] == "active"
    if expected is None:
        # every 7 minutes since 2020: the first occurrence after now, computed from DTSTART
        start = clock.to_ms(datetime(2020, 1, 1, tzinfo=UTC))
        now = clock.to_ms(NOW)
        step = 7 * 60_000
        expected_ms = start + ((now - start) // step + 1) * step
        assert task["next_run_at"] == clock.iso(expected_ms)
    else:
        assert task["next_run_at"] == at(expected)


def test_once_in_the_past_runs_as_soon_as_possible(api: TestClient[Any]) -> None:
    task = create(api, schedule_kind="once", schedule_expr="2020-01-01T00:00:00Z")
    assert task["status"] == "active"
    assert task["next_run_at"] == "2020-01-01T00:00:00.000Z"


@pytest.mark.parametrize(
    "expr",
    [
        "DTSTART:20200101T000000Z\nRRULE:FREQ=DAILY;COUNT=3",
        "DTSTART:20200101T000000Z\nRRULE:FREQ=DAILY;UNTIL=20200110T000000Z",
    ],
)
def test_a_used_up_rrule_creates_a_completed_task(api: TestClient[Any], expr: str) -> None:
    task = create(api, schedule_kind="rrule", schedule_expr=expr)
    assert task["status"] == "completed"
    assert task["next_run_at"] is None


def test_an_event_task_has_no_next_run(api: TestClient[Any]) -> None:
    with_pattern = create(api, schedule_kind="event", schedule_expr="invoice.*")
    without = create(api, schedule_kind="event", schedule_expr=...)
    for task in (with_pattern, without):
        assert task["status"] == "active"
        assert task["next_run_at"] is None
    assert without["schedule_expr"] is None


def test_spring_forward_fires_at_the_first_instant_after_the_gap(api: TestClient[Any]) -> None:
    clock.shift(clock.to_ms(datetime(2027, 3, 27, 12, tzinfo=UTC)) - clock.now_ms())
    task = create(api, schedule_expr="30 2 * * *", timezone="Europe/Chisinau")
    # 02:30 does not exist on 2027-03-28 in Chisinau: 03:00 EEST, 00:00 UTC
    assert task["next_run_at"] == "2027-03-28T00:00:00.000Z"


@pytest.mark.parametrize(
    ("kind", "expr", "tz", "field"),
    [
        ("cron", "61 * * * *", "UTC", "schedule_expr"),
        ("cron", "* * *", "UTC", "schedule_expr"),
        ("cron", "* * * * * * *", "UTC", "schedule_expr"),
        ("cron", "0 0 30 2 *", "UTC", "schedule_expr"),
        ("cron", "@fortnightly", "UTC", "schedule_expr"),
        ("cron", "", "UTC", "schedule_expr"),
        ("cron", "0 * * * *", "Not/AZone", "timezone"),
        ("cron", "0 * * * *", "../../etc/passwd", "timezone"),
        ("rrule", "RRULE:FREQ=SOMETIMES", "UTC", "schedule_expr"),
        ("rrule", "hello", "UTC", "schedule_expr"),
        (
            "rrule",
            "DTSTART;TZID=Nowhere/City:20200101T080000\nRRULE:FREQ=DAILY",
            "UTC",
            "schedule_expr",
        ),
        ("rrule", "RRULE:FREQ=DAILY", "Mars/Base", "timezone"),
        ("once", "tomorrow", "UTC", "schedule_expr"),
        ("once", "2026-13-01T00:00:00Z", "UTC", "schedule_expr"),
        ("once", "2026-12-01T10:00:00+25:00", "UTC", "schedule_expr"),
        ("once", "2026-12-01T10:00:00Z", "Atlantis/Capital", "timezone"),
        ("event", "x" * 201, "UTC", "schedule_expr"),
    ],
)
def test_invalid_schedules_are_400(
    api: TestClient[Any], kind: str, expr: str, tz: str, field: str
) -> None:
    body = task_body(schedule_kind=kind, schedule_expr=expr, timezone=tz)
    assert_400(api.post("/tasks", json=body, headers=A), field)
