"""plan_occurrence (app/core/planning.py): what one due occurrence turns into (pure: no Redis,
no clock)."""

from datetime import UTC, datetime
from typing import Any

import pytest

from app import clock
from app.core.errors import ScheduleTooSlow
from app.core.planning import MAX_CATCH_UP, Plan, occurrence_run_id, plan_occurrence
from app.core.schedules import Budget
from app.core.task import Task
from tests.support.records import make_task

MIN = 60_000
GRACE = 60_000
T0 = clock.to_ms(datetime(2026, 6, 1, 12, 0, tzinfo=UTC))


def task_at(occ: int, **kw: Any) -> Task:
    fields: dict[str, Any] = {"created_at": T0 - MIN, "updated_at": T0 - MIN, "next_run_at": occ}
    fields.update(kw)
    return make_task(**fields)


def test_on_time_one_run_and_the_next_occurrence() -> None:
    plan = plan_occurrence(task_at(T0, schedule_expr="*/5 * * * *"), T0 + 200, GRACE)
    assert plan == Plan(T0, (T0,), T0 + 5 * MIN, "repeat", False)


def test_late_within_the_grace_is_still_on_time() -> None:
    plan = plan_occurrence(task_at(T0, misfire_policy="skip"), T0 + GRACE, GRACE)
    assert plan.runs == (T0,) and plan.next_run_at == T0 + MIN


def test_run_once_after_an_outage_runs_one_catch_up_then_goes_on_after_now() -> None:
    now = T0 + 60 * MIN + 150_000
    plan = plan_occurrence(task_at(T0, schedule_expr="*/5 * * * *"), now, GRACE)
    assert plan.runs == (T0,)
    assert plan.next_run_at == T0 + 65 * MIN
    assert plan.skipped == 12


def test_skip_after_an_outage_runs_none() -> None:
    now = T0 + 60 * MIN + 150_000
    plan = plan_occurrence(
        task_at(T0, schedule_expr="*/5 * * * *", misfire_policy="skip"), now, GRACE
    )
    assert plan.runs == ()
    assert plan.next_run_at == T0 + 65 * MIN
    assert plan.skipped == 13


def test_skip_keeps_an_occurrence_that_is_inside_the_grace() -> None:
    now = T0 + 60 * MIN + 30_000
    plan = plan_occurrence(
        task_at(T0, schedule_expr="*/5 * * * *", misfire_policy="skip"), now, GRACE
    )
    assert plan.runs == ()
    assert plan.next_run_at == T0 + 60 * MIN


def test_run_all_runs_every_missed_occurrence() -> None:
    now = T0 + 60 * MIN + 150_000
    plan = plan_occurrence(
        task_at(T0, schedule_expr="*/5 * * * *", misfire_policy="run_all"), now, GRACE
    )
    assert plan.runs == tuple(T0 + i * 5 * MIN for i in range(13))
    assert plan.next_run_at == T0 + 65 * MIN
    assert plan.skipped == 0


def test_run_all_stops_at_one_hundred_runs() -> None:
    now = T0 + 180 * MIN + 1
    plan = plan_occurrence(task_at(T0, misfire_policy="run_all"), now, GRACE)
    assert plan.runs == tuple(T0 + i * MIN for i in range(MAX_CATCH_UP))
    assert plan.next_run_at == T0 + 181 * MIN
    assert plan.skipped == 81  # 181 occurrences from T0 to T0 + 180 min


def test_a_once_task_created_for_a_past_time_is_not_a_misfire() -> None:
    past = T0 - 3 * 3600_000
    task = task_at(
        past,
        schedule_kind="once",
        schedule_expr=clock.iso(past),
        misfire_policy="skip",
        created_at=T0,
        updated_at=T0,
    )
    assert plan_occurrence(task, T0 + 5, GRACE) == Plan(past, (past,), None, "once", False)


def test_a_once_task_missed_under_skip_has_no_run_and_no_next() -> None:
    task = task_at(T0, schedule_kind="once", schedule_expr=clock.iso(T0), misfire_policy="skip")
    plan = plan_occurrence(task, T0 + 2 * 3600_000, GRACE)
    assert (plan.runs, plan.next_run_at, plan.mode) == ((), None, "once")


def test_the_snoozed_occurrence_goes_on_from_the_snoozed_time() -> None:
    snoozed = T0 + 150_000
    task = task_at(snoozed, snoozed_until=snoozed, snooze_reason="later")
    plan = plan_occurrence(task, snoozed, GRACE)
    assert plan == Plan(snoozed, (snoozed,), T0 + 3 * MIN, "repeat", True)


def test_a_used_up_rule_has_no_next() -> None:
    task = task_at(
        T0,
        schedule_kind="rrule",
        schedule_expr="DTSTART:20260601T110000Z RRULE:FREQ=HOURLY;COUNT=2",
    )
    assert plan_occurrence(task, T0, GRACE).next_run_at is None


def test_the_fall_back_night_gives_the_doubled_local_time_one_occurrence() -> None:
    # Europe/Berlin 2026-10-25: 03:00 CEST becomes 02:00 CET; 02:30 exists twice
    first = clock.to_ms(datetime(2026, 10, 25, 0, 30, tzinfo=UTC))  # 02:30 CEST
    task = task_at(first, schedule_expr="30 2 * * *", timezone="Europe/Berlin")
    plan = plan_occurrence(task, first, GRACE)
    assert plan.next_run_at == clock.to_ms(datetime(2026, 10, 26, 1, 30, tzinfo=UTC))


def test_run_ids_depend_only_on_task_and_occurrence() -> None:
    assert occurrence_run_id("t", 1) == occurrence_run_id("t", 1)
    assert (
        len({occurrence_run_id("t", 1), occurrence_run_id("t", 2), occurrence_run_id("u", 1)}) == 3
    )


def test_a_task_without_next_run_at_has_nothing_to_plan() -> None:
    with pytest.raises(ValueError):
        plan_occurrence(make_task(next_run_at=None), T0, GRACE)


def test_a_plan_is_cut_off_by_its_budget() -> None:
    """Every computation of one plan shares one budget: the scheduler can bound a task's plan
    (and pause that task) instead of stalling the others."""
    task = task_at(
        T0,
        schedule_kind="rrule",
        schedule_expr="DTSTART:20000101T000000Z\nRRULE:FREQ=YEARLY;BYMONTH=2;BYMONTHDAY=29",
    )
    assert plan_occurrence(task, T0, GRACE).next_run_at == clock.to_ms(
        datetime(2028, 2, 29, tzinfo=UTC)
    )
    with pytest.raises(ScheduleTooSlow):
        plan_occurrence(task, T0, GRACE, Budget(steps=1, seconds=None))
