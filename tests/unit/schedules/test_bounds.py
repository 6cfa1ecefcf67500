"""Computing one occurrence of any accepted schedule is bounded.

A rule whose occurrences are too costly to find within a :class:`Budget` is refused at parse
time with a message that says why; a budget passed to a query cuts it off with
``ScheduleTooSlow``, so the scheduler and the web process never stall on one rule.
"""

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta

import msgspec
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from app.core.errors import ScheduleError, ScheduleTooSlow
from app.core.schedules import Budget
from app.core.schedules.budget import DEFAULT_STEPS
from app.core.taskspec import TaskSpec, new_task
from tests.unit.schedules.support import NOW, chain, cron, rule, schedule_error, utc

SPARSE = "FREQ=SECONDLY;BYMONTH=12;BYMONTHDAY=1;BYDAY=TU;BYHOUR=4;BYMINUTE=38;BYSECOND=0"


def test_a_sparse_secondly_rule_is_computed_day_by_day_not_second_by_second() -> None:
    schedule = rule(SPARSE)
    budget = Budget()
    # 1 December falls on a Tuesday in 2026, 2037, 2043, 2048
    assert schedule.next_after(NOW, budget) == utc(2026, 12, 1, 4, 38)
    assert budget.used <= 20
    assert chain(schedule, utc(2026, 12, 1, 4, 38), 3) == [
        utc(2037, 12, 1, 4, 38),
        utc(2043, 12, 1, 4, 38),
        utc(2048, 12, 1, 4, 38),
    ]


def test_a_bysetpos_that_selects_nothing_is_refused_at_once() -> None:
    with schedule_error("schedule_expr", match="BYSETPOS=366 can never match"):
        rule("FREQ=SECONDLY;BYSETPOS=366;BYYEARDAY=366")


@pytest.mark.parametrize(
    ("expr", "hint"),
    [
        # every 86,399 s drifts one second a day: hour 5 is hit for ten years, then missed for
        # 227; finding the next run across such a gap is beyond the bound
        ("FREQ=SECONDLY;INTERVAL=86399;BYHOUR=5", "FREQ=DAILY"),
        # 100,000 months is past year 9999: counting them all is beyond the bound
        ("FREQ=MONTHLY;INTERVAL=5;BYDAY=-1FR;COUNT=100000", "UNTIL"),
    ],
)
def test_a_rule_too_costly_to_compute_is_refused_with_the_reason(expr: str, hint: str) -> None:
    with pytest.raises(ScheduleTooSlow) as info:
        rule(expr)
    assert info.value.field == "schedule_expr"
    assert "too sparse or too costly" in info.value.reason and hint in info.value.reason


def test_creating_a_task_with_such_a_rule_is_a_validation_error() -> None:
    fields = {
        "title": "t",
        "description": "",
        "schedule_kind": "rrule",
        "schedule_expr": "FREQ=SECONDLY;INTERVAL=86399;BYHOUR=5",
        "payload": {"steps": [{"name": "a", "action": "log", "params": {"message": "x"}}]},
        "created_by": "00000000-0000-4000-8000-000000000001",
    }
    spec = msgspec.convert(fields, TaskSpec)
    with pytest.raises(ScheduleError) as info:
        new_task(spec, task_id="t1", now_ms=1_700_000_000_000)
    assert info.value.field == "schedule_expr"


def test_a_budget_counts_steps() -> None:
    budget = Budget(steps=3, seconds=None)
    budget.spend(3)
    assert budget.used == 3
    with pytest.raises(ScheduleTooSlow, match="more than 3 steps"):
        budget.spend()


def test_a_budget_has_a_deadline() -> None:
    ticks: Iterator[float] = iter(float(i) for i in range(10**6))
    budget = Budget(steps=10**6, seconds=5, timer=lambda: next(ticks))
    with pytest.raises(ScheduleTooSlow, match="more than 5000 ms"):
        for _ in range(10**5):
            budget.spend()
    assert budget.used < 10**5


@pytest.mark.parametrize("kind", ["cron", "rrule"])
def test_a_query_is_cut_off_by_the_budget_it_is_given(kind: str) -> None:
    schedule = cron("0 0 29 2 *") if kind == "cron" else rule(SPARSE)
    with pytest.raises(ScheduleTooSlow):
        schedule.next_after(utc(2027, 1, 1), Budget(steps=1, seconds=None))
    with pytest.raises(ScheduleTooSlow):
        schedule.between(utc(2027, 1, 1), utc(2100, 1, 1), 100, Budget(steps=1, seconds=None))


# --- random sparse rules ------------------------------------------------------------------------

WEEKDAYS = ["MO", "TU", "WE", "TH", "FR", "SA", "SU"]


@st.composite
def sparse_rules(draw: st.DrawFn) -> dict[str, list[int] | int | str]:
    parts: dict[str, list[int] | int | str] = {
        "FREQ": draw(st.sampled_from(["SECONDLY", "MINUTELY", "HOURLY", "DAILY"])),
        "INTERVAL": draw(st.sampled_from([1, 1, 2, 7, 13, 60, 97, 3600, 86399, 86401, 100000])),
    }
    choices = {
        "BYMONTH": st.lists(st.integers(1, 12), min_size=1, max_size=2, unique=True),
        "BYMONTHDAY": st.lists(
            st.sampled_from([1, 13, 29, 30, 31, -1]), min_size=1, max_size=2, unique=True
        ),
        "BYDAY": st.lists(st.integers(0, 6), min_size=1, max_size=2, unique=True),
        "BYYEARDAY": st.lists(
            st.sampled_from([1, 60, 200, 366, -1]), min_size=1, max_size=2, unique=True
        ),
        "BYHOUR": st.lists(st.integers(0, 23), min_size=1, max_size=2, unique=True),
        "BYMINUTE": st.lists(st.integers(0, 59), min_size=1, max_size=1),
        "BYSECOND": st.lists(st.integers(0, 59), min_size=1, max_size=1),
    }
    for name, strategy in choices.items():
        if draw(st.floats(0, 1)) < (0.3 if name == "BYYEARDAY" else 0.7):
            parts[name] = draw(strategy)
    parts["DTSTART"] = draw(
        st.datetimes(min_value=datetime(1990, 1, 1), max_value=datetime(2040, 1, 1))
    ).strftime("%Y%m%dT%H%M%SZ")
    return parts


def text(parts: dict[str, list[int] | int | str]) -> str:
    items = []
    for name, value in parts.items():
        if name == "DTSTART":
            continue
        if name == "BYDAY" and isinstance(value, list):
            value = ",".join(WEEKDAYS[d] for d in value)
        elif isinstance(value, list):
            value = ",".join(str(v) for v in value)
        items.append(f"{name}={value}")
    return f"DTSTART:{parts['DTSTART']}\nRRULE:" + ";".join(items)


def matches(at: datetime, parts: dict[str, list[int] | int | str]) -> bool:
    """Whether ``at`` satisfies every part the generator may give, checked one by one."""
    start = datetime.strptime(str(parts["DTSTART"]), "%Y%m%dT%H%M%SZ").replace(tzinfo=UTC)
    unit = {"SECONDLY": 1, "MINUTELY": 60, "HOURLY": 3600, "DAILY": 86400}[str(parts["FREQ"])]
    days_in_month = (
        (at.replace(day=28) + timedelta(days=4)).replace(day=1) - timedelta(days=1)
    ).day
    days_in_year = 366 if datetime(at.year, 12, 31).timetuple().tm_yday == 366 else 365
    yday = at.timetuple().tm_yday
    periods = int(at.timestamp()) // unit - int(start.timestamp()) // unit
    checks = {
        "BYMONTH": [at.month],
        "BYMONTHDAY": [at.day, at.day - days_in_month - 1],
        "BYDAY": [at.weekday()],
        "BYYEARDAY": [yday, yday - days_in_year - 1],
        "BYHOUR": [at.hour],
        "BYMINUTE": [at.minute],
        "BYSECOND": [at.second],
    }
    for name, seen in checks.items():
        wanted = parts.get(name)
        if isinstance(wanted, list) and not set(seen) & set(wanted):
            return False
    return at >= start and periods % int(parts["INTERVAL"]) == 0


@settings(max_examples=120, derandomize=True, deadline=None)
@given(
    parts=sparse_rules(),
    points=st.lists(
        st.datetimes(min_value=datetime(1990, 1, 1), max_value=datetime(2400, 1, 1)),
        min_size=3,
        max_size=3,
    ),
)
def test_random_sparse_rules_are_refused_or_bounded(
    parts: dict[str, list[int] | int | str], points: list[datetime]
) -> None:
    try:
        schedule = rule(text(parts))
    except ScheduleError as exc:
        assert exc.reason  # refused, saying why
        return
    for point in points:
        at = point.replace(tzinfo=UTC)
        budget = Budget(steps=DEFAULT_STEPS, seconds=None)
        found = schedule.next_after(at, budget)  # never ScheduleTooSlow once accepted
        if found is None:
            continue
        assert found > at and matches(found, parts), (text(parts), at, found)
        assert schedule.next_after(found - timedelta(seconds=1)) == found
        assert schedule.between(at, found, 100)[-1] == found
