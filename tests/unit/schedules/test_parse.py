"""parse_schedule: time zones, kinds, required expressions, caching; the event kind."""

from datetime import datetime

import pytest

from app.core.schedules import load_timezone, parse_schedule
from tests.unit.schedules.support import CREATED, NOW, cron, schedule_error


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


@pytest.mark.parametrize("kind", ["cron", "rrule", "once"])
def test_naive_datetimes_are_refused(kind: str) -> None:
    expr = {"cron": "* * * * *", "rrule": "RRULE:FREQ=DAILY", "once": "2026-12-01T10:00:00Z"}
    schedule = parse_schedule(kind, expr[kind], "UTC", CREATED)
    with pytest.raises(ValueError, match="timezone-aware"):
        schedule.next_after(datetime(2026, 1, 1))


def test_parsing_is_cached() -> None:
    assert cron("*/5 * * * *") is cron("*/5 * * * *")


def test_an_rrule_without_dtstart_is_cached_per_creation_second() -> None:
    a = parse_schedule("rrule", "RRULE:FREQ=DAILY", "UTC", CREATED)
    b = parse_schedule("rrule", "RRULE:FREQ=DAILY", "UTC", CREATED.replace(microsecond=500_000))
    c = parse_schedule("rrule", "RRULE:FREQ=DAILY", "UTC", CREATED.replace(second=1))
    assert a is b and a is not c


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
