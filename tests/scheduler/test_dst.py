"""DST nights end to end: the clock is moved to the night and walked through it, the scheduler
passing at every occurrence and every quarter hour between; each local time fires once."""

from collections.abc import Callable
from datetime import UTC, datetime

import pytest
import redis

from app import clock
from app.store.keys import Keys
from app.store.tasks import TaskStore
from tests.support.scheduler import create, rq_job_ids, runs_of
from workers.scheduler import Scheduler

QUARTER = 15 * 60_000


def utc(year: int, month: int, day: int, hour: int, minute: int) -> int:
    return clock.to_ms(datetime(year, month, day, hour, minute, tzinfo=UTC))


def walk_night(
    store: TaskStore,
    scheduler: Scheduler,
    start: int,
    end: int,
    expr: str,
    zone: str,
    kind: str = "cron",
) -> list[int]:
    """Create the task at ``start`` and pass through to ``end``; the runs' scheduled times."""
    clock.shift(start - clock.now_ms())
    task = create(store, schedule_kind=kind, schedule_expr=expr, timezone=zone)
    now = start
    while now < end:
        nxt = store.get(task.id).next_run_at
        assert nxt is not None or kind == "once"  # a once task has none after its run
        now = now + QUARTER if nxt is None else min(nxt, now + QUARTER)
        clock.shift(now - clock.now_ms())
        scheduler.run_once()
    runs = runs_of(store.r, store.keys, task.id)
    return [run.scheduled_for for run in runs if run.scheduled_for is not None]


@pytest.mark.parametrize(
    ("zone", "first_pass"),
    [
        # 02:30 exists twice on 2026-10-25; it fires at the first one only
        ("Europe/Berlin", utc(2026, 10, 25, 0, 30)),  # 02:30 CEST; 02:30 CET is 01:30 UTC
        ("Europe/Chisinau", utc(2026, 10, 24, 23, 30)),  # 02:30 EEST; 02:30 EET is 00:30 UTC
    ],
)
def test_the_doubled_local_time_of_the_fall_back_night_runs_once(
    rq: redis.Redis,
    store: TaskStore,
    make_scheduler: Callable[..., Scheduler],
    zone: str,
    first_pass: int,
) -> None:
    scheduler = make_scheduler()
    got = walk_night(
        store, scheduler, utc(2026, 10, 24, 12, 0), utc(2026, 10, 26, 12, 0), "30 2 * * *", zone
    )
    # the next night is standard time: one hour later in UTC than the first pass
    assert got == [first_pass, first_pass + 25 * 3600_000]
    assert len(rq_job_ids(rq)) == 2


def test_the_missing_local_time_of_the_spring_forward_night_runs_after_the_gap(
    store: TaskStore, make_scheduler: Callable[..., Scheduler]
) -> None:
    scheduler = make_scheduler()
    got = walk_night(
        store,
        scheduler,
        utc(2026, 3, 28, 12, 0),
        utc(2026, 3, 30, 12, 0),
        "30 2 * * *",
        "Europe/Berlin",
    )
    # 2026-03-29 02:30 does not exist in Berlin: 03:00 CEST (01:00 UTC); then 02:30 CEST
    assert got == [utc(2026, 3, 29, 1, 0), utc(2026, 3, 30, 0, 30)]


def test_an_hourly_task_through_the_fall_back_night_runs_each_local_hour_once(
    r: redis.Redis, keys: Keys, store: TaskStore, make_scheduler: Callable[..., Scheduler]
) -> None:
    scheduler = make_scheduler()
    got = walk_night(
        store,
        scheduler,
        utc(2026, 10, 24, 21, 30),
        utc(2026, 10, 25, 3, 30),
        "0 * * * *",
        "Europe/Berlin",
    )
    # local 00:00, 01:00, 02:00 CEST, then 03:00, 04:00 CET; 02:00 CET (01:00 UTC) repeats a
    # local time that already ran
    assert got == [
        utc(2026, 10, 24, 22, 0),
        utc(2026, 10, 24, 23, 0),
        utc(2026, 10, 25, 0, 0),
        utc(2026, 10, 25, 2, 0),
        utc(2026, 10, 25, 3, 0),
    ]
    assert r.zcard(keys.claims) == 0


@pytest.mark.parametrize(
    ("kind", "expr"),
    [
        ("rrule", "DTSTART;TZID=Europe/Berlin:20260301T023000\nRRULE:FREQ=DAILY"),
        ("once", "2026-03-29T02:30:00"),
    ],
)
def test_rrule_and_once_read_the_missing_local_time_with_the_offset_before_the_gap(
    store: TaskStore, make_scheduler: Callable[..., Scheduler], kind: str, expr: str
) -> None:
    scheduler = make_scheduler()
    got = walk_night(
        store,
        scheduler,
        utc(2026, 3, 28, 12, 0),
        utc(2026, 3, 30, 12, 0),
        expr,
        "Europe/Berlin",
        kind,
    )
    # 02:30 does not exist in Berlin on 2026-03-29: read at +01:00 it is 03:30 CEST (01:30 UTC)
    first = utc(2026, 3, 29, 1, 30)
    assert got == ([first, utc(2026, 3, 30, 0, 30)] if kind == "rrule" else [first])
