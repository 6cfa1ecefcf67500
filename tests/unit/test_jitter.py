"""Jitter offsets (app/core/jitter.py): fixed per (task, occurrence), within the window, spread
evenly; and what a plan makes of them (pure: no Redis, no clock)."""

import uuid
from collections import Counter
from datetime import UTC, datetime
from typing import Any

from app import clock
from app.core.jitter import fire_at, nominal, offset_ms, placed
from app.core.planning import occurrence_run_id, plan_occurrence
from app.core.task import Task
from app.core.upcoming import upcoming

MIN = 60_000
T0 = clock.to_ms(datetime(2026, 6, 1, 12, 0, tzinfo=UTC))


def task(**kw: Any) -> Task:
    fields: dict[str, Any] = {
        "id": "3f1d2c3b-8a9e-4f10-9b2c-3d4e5f607182",
        "title": "t",
        "description": "",
        "schedule_kind": "cron",
        "schedule_expr": "* * * * *",
        "payload": {},
        "created_by": "a",
        "created_at": T0 - MIN,
        "updated_at": T0 - MIN,
        "jitter_seconds": 60,
    }
    fields.update(kw)
    return Task(**fields)


def test_offsets_are_fixed_per_task_and_occurrence_and_within_the_window() -> None:
    ids = [str(uuid.UUID(int=i)) for i in range(2000)]
    offsets = [offset_ms(i, T0, 60) for i in ids]
    assert offsets == [offset_ms(i, T0, 60) for i in ids]
    assert all(0 <= o < 60_000 for o in offsets)
    assert offset_ms(ids[0], T0, 60) != offset_ms(ids[0], T0 + MIN, 60)
    assert offset_ms(ids[0], T0, 0) == 0


def test_offsets_spread_evenly_over_the_window() -> None:
    ids = [str(uuid.uuid5(uuid.NAMESPACE_DNS, str(i))) for i in range(60_000)]
    per_second = Counter(offset_ms(i, T0, 60) // 1000 for i in ids)
    assert set(per_second) == set(range(60))
    # 1,000 expected per second; a fair hash stays within a few standard deviations (~32)
    assert max(per_second.values()) < 1150 and min(per_second.values()) > 850, per_second


def test_placing_a_schedule_keeps_the_nominal_occurrence_when_jitter_moves_it() -> None:
    t = task()
    fire, occ = placed(t, T0)
    assert occ == T0 and fire == T0 + offset_ms(t.id, T0, 60)
    assert placed(task(jitter_seconds=0), T0) == (T0, None)
    assert placed(t, None) == (None, None)
    # a snoozed occurrence fires exactly when the snooze ends
    assert placed(task(snoozed_until=T0), T0) == (T0, None)


def test_nominal_is_kept_only_while_it_belongs_to_next_run_at() -> None:
    fire, occ = placed(task(), T0)
    assert nominal(task(next_run_at=fire, next_occurrence=occ)) == T0
    # a snooze moved next_run_at out of the occurrence's window: it is its own occurrence
    assert nominal(task(next_run_at=fire + 3_600_000, next_occurrence=occ)) == fire + 3_600_000
    assert nominal(task(next_run_at=fire)) == fire


def test_a_jittered_plan_runs_the_nominal_occurrence_and_fires_the_next_with_its_offset() -> None:
    t = task()
    fire, occ = placed(t, T0)
    t = task(next_run_at=fire, next_occurrence=occ)
    plan = plan_occurrence(t, fire + 10, 60_000)
    assert plan.occurrence == fire
    assert plan.runs == (T0,)
    assert occurrence_run_id(t.id, plan.runs[0]) == occurrence_run_id(t.id, T0)
    assert plan.next_occurrence == T0 + MIN
    assert plan.next_run_at == fire_at(t, T0 + MIN, fire)
    assert T0 + MIN <= plan.next_run_at < T0 + 2 * MIN


def test_a_window_wider_than_the_gap_keeps_occurrences_in_order() -> None:
    t = task(schedule_expr="* * * * * *", jitter_seconds=30)
    fire, occ = placed(t, T0)
    t = task(schedule_expr="* * * * * *", jitter_seconds=30, next_run_at=fire, next_occurrence=occ)
    shown = upcoming(t, T0, 60_000, 100)
    assert shown == sorted(shown)
    assert len(shown) == 100
    current = t
    for _ in range(100):
        plan = plan_occurrence(current, current.next_run_at or 0, 60_000)
        (run,) = plan.runs
        assert run <= current.next_run_at < run + 30_000  # type: ignore[operator]
        current = task(
            schedule_expr="* * * * * *",
            jitter_seconds=30,
            next_run_at=plan.next_run_at,
            next_occurrence=plan.next_occurrence,
        )
