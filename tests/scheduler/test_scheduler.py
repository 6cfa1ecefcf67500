"""The scheduler pass in-process: occurrences become runs on RQ, the task moves on, races with
pause/cancel/snooze are won by them, misfire policies apply after an outage, completion."""

import threading
from collections.abc import Callable

import pytest
import redis
from rq.job import Job

from app import clock
from app.core.errors import NotFound
from app.store import stats
from app.store.keys import Keys
from app.store.scheduling import occurrence_run_id
from app.store.tasks import TaskStore
from tests.support.agents import AGENT
from tests.support.scheduler import add_run, create, once_at, rq_job_ids, runs_of
from workers.scheduler import Scheduler

MIN = 60_000


def to(ms: int) -> None:
    """Move the clock to ``ms``."""
    clock.shift(ms - clock.now_ms())


def test_a_due_occurrence_becomes_one_run_on_its_priority_queue(
    r: redis.Redis,
    rq: redis.Redis,
    keys: Keys,
    store: TaskStore,
    make_scheduler: Callable[..., Scheduler],
) -> None:
    task = create(store, priority=2)
    occ = task.next_run_at
    assert occ is not None
    scheduler = make_scheduler()

    assert scheduler.run_once().claimed == 0
    to(occ)
    done = scheduler.run_once()

    run_id = occurrence_run_id(task.id, occ)
    assert (done.claimed, done.runs["queued"], done.enqueued) == (1, 1, 1)
    assert rq.lrange("rq:queue:chime-p2", 0, -1) == [run_id.encode()]
    job = Job.fetch(run_id, connection=rq)
    assert job.func_name == "workers.job.execute_run" and job.args == (run_id,)
    assert r.zrange(keys.outbox, 0, -1) == [run_id]  # the ledger, until a worker starts it
    assert store.get(task.id).next_run_at == occ + MIN
    assert scheduler.run_once().claimed == 0
    assert rq_job_ids(rq) == [run_id]
    counted = stats.read(r, keys)
    assert counted["runs:queued:schedule"] == 1
    assert counted["claim_batch:count"] == 1


def test_each_minute_gives_one_run_and_a_batch_bound_spreads_the_work(
    r: redis.Redis,
    rq: redis.Redis,
    keys: Keys,
    store: TaskStore,
    make_scheduler: Callable[..., Scheduler],
) -> None:
    tasks = [create(store) for _ in range(7)]
    occ = tasks[0].next_run_at
    assert occ is not None and all(t.next_run_at == occ for t in tasks)
    # a grace longer than the test: the queued runs' outbox entries stay out of these passes
    scheduler = make_scheduler(claim_batch=3, enqueue_grace_seconds=3600)

    for minute in range(3):
        to(occ + minute * MIN)
        passes = [scheduler.run_once() for _ in range(3)]
        assert [p.claimed for p in passes] == [3, 3, 1]
        assert passes[0].more and not passes[2].more
    for task in tasks:
        assert [run.scheduled_for for run in runs_of(r, keys, task.id)] == [
            occ + i * MIN for i in range(3)
        ]
    assert len(rq_job_ids(rq)) == len(set(rq_job_ids(rq))) == 21


@pytest.mark.parametrize("action", ["pause", "cancel", "snooze"])
def test_a_change_racing_with_the_claim_wins(
    r: redis.Redis,
    rq: redis.Redis,
    keys: Keys,
    store: TaskStore,
    make_scheduler: Callable[..., Scheduler],
    action: str,
) -> None:
    task = create(store)
    occ = task.next_run_at
    assert occ is not None

    def race(point: str) -> None:
        if point == "after_claim":
            if action == "snooze":
                store.snooze(task.id, 300, None, AGENT)
            else:
                getattr(store, action)(task.id, AGENT)

    scheduler = make_scheduler(hook=race)
    to(occ)
    done = scheduler.run_once()

    assert done.claimed == 1 and sum(done.runs.values()) == 0
    assert runs_of(r, keys, task.id) == [] and rq_job_ids(rq) == []
    assert r.zcard(keys.claims) == 0
    after = store.get(task.id)
    if action == "snooze":
        assert r.zscore(keys.due, task.id) == occ + 300_000 == after.next_run_at
        scheduler.hook = None
        to(occ + 300_000)
        scheduler.run_once()
        assert [run.scheduled_for for run in runs_of(r, keys, task.id)] == [occ + 300_000]
        assert store.get(task.id).snoozed_until is None
    else:
        assert r.zscore(keys.due, task.id) is None
        assert after.status == {"pause": "paused", "cancel": "canceled"}[action]


def test_a_resume_after_a_pause_racing_with_the_claim_gives_one_run(
    r: redis.Redis,
    rq: redis.Redis,
    keys: Keys,
    store: TaskStore,
    make_scheduler: Callable[..., Scheduler],
) -> None:
    task = create(store)
    occ = task.next_run_at
    assert occ is not None

    def race(point: str) -> None:
        if point == "after_claim":
            store.pause(task.id, AGENT)
            store.resume(task.id, AGENT)

    scheduler = make_scheduler(hook=race)
    to(occ)
    scheduler.run_once()
    scheduler.hook = None
    resumed = store.get(task.id).next_run_at
    assert resumed is not None and resumed > occ
    to(resumed)
    scheduler.run_once()

    assert [run.scheduled_for for run in runs_of(r, keys, task.id)] == [resumed]
    assert r.zcard(keys.claims) == 0


def outage(store: TaskStore, make_scheduler: Callable[..., Scheduler], policy: str) -> list[int]:
    """A */5 task whose scheduler was down for an hour: the runs of the first pass after it."""
    task = create(store, schedule_expr="*/5 * * * *", misfire_policy=policy)
    occ = task.next_run_at
    assert occ is not None
    to(occ + 60 * MIN + 150_000)
    scheduler = make_scheduler()
    scheduler.run_once()
    after = store.get(task.id)
    assert after.next_run_at == occ + 65 * MIN
    runs = runs_of(store.r, store.keys, task.id)
    return [run.scheduled_for - occ for run in runs if run.scheduled_for is not None]


def test_run_once_after_an_hour_of_outage(
    store: TaskStore, make_scheduler: Callable[..., Scheduler]
) -> None:
    assert outage(store, make_scheduler, "run_once") == [0]


def test_skip_after_an_hour_of_outage(
    r: redis.Redis, keys: Keys, store: TaskStore, make_scheduler: Callable[..., Scheduler]
) -> None:
    assert outage(store, make_scheduler, "skip") == []
    assert stats.read(r, keys)["misfires_skipped"] == 13


def test_run_all_after_an_hour_of_outage(
    rq: redis.Redis, store: TaskStore, make_scheduler: Callable[..., Scheduler]
) -> None:
    assert outage(store, make_scheduler, "run_all") == [i * 5 * MIN for i in range(13)]
    assert len(rq_job_ids(rq)) == 13


def test_an_rrule_with_count_completes_when_used_up(
    r: redis.Redis,
    keys: Keys,
    store: TaskStore,
    make_scheduler: Callable[..., Scheduler],
) -> None:
    task = create(
        store,
        schedule_kind="rrule",
        schedule_expr="DTSTART:20300101T090000Z RRULE:FREQ=HOURLY;COUNT=3",
    )
    scheduler = make_scheduler()
    seen = []
    while (current := store.get(task.id)).next_run_at is not None:
        to(current.next_run_at)
        scheduler.run_once()
        seen.append(current.next_run_at)

    assert len(seen) == 3
    assert [run.scheduled_for for run in runs_of(r, keys, task.id)] == seen
    after = store.get(task.id)
    assert after.status == "completed"
    assert r.zscore(keys.index(AGENT, "completed", "rrule"), task.id) is not None
    assert r.zscore(keys.index(AGENT, "active", None), task.id) is None


def test_a_once_task_runs_once_and_waits_for_its_run(
    r: redis.Redis,
    rq: redis.Redis,
    keys: Keys,
    store: TaskStore,
    make_scheduler: Callable[..., Scheduler],
) -> None:
    at = clock.now_ms() + 5000
    task = create(store, schedule_kind="once", schedule_expr=once_at(at))
    scheduler = make_scheduler()
    to(at)
    scheduler.run_once()
    to(at + 3600_000)
    scheduler.run_once()

    [run] = runs_of(r, keys, task.id)
    assert run.scheduled_for == at and rq_job_ids(rq) == [run.id]
    after = store.get(task.id)
    assert (after.status, after.next_run_at) == ("active", None)


def test_a_task_deleted_while_due_only_loses_its_place(
    r: redis.Redis, keys: Keys, store: TaskStore, make_scheduler: Callable[..., Scheduler]
) -> None:
    task = create(store)
    assert task.next_run_at is not None
    r.delete(keys.task(task.id))
    to(task.next_run_at)

    assert make_scheduler().run_once().claimed == 1
    assert r.zcard(keys.due) == r.zcard(keys.claims) == 0
    with pytest.raises(NotFound):
        store.get(task.id)


def test_a_retry_is_released_from_delayed_when_its_time_comes(
    r: redis.Redis,
    rq: redis.Redis,
    keys: Keys,
    store: TaskStore,
    make_scheduler: Callable[..., Scheduler],
) -> None:
    task = create(store, schedule_kind="event", schedule_expr="x", priority=7)
    at = clock.now_ms() + 10_000
    run = add_run(r, keys, task, next_attempt_at=at, priority=7)
    scheduler = make_scheduler()

    assert scheduler.run_once().released == {}
    to(at)
    assert scheduler.run_once().released == {"queued": 1}

    assert r.hget(keys.run(run.id), "status") == "queued"
    assert rq.lrange("rq:queue:chime-p7", 0, -1) == [run.id.encode()]
    assert stats.read(r, keys)["runs:queued:schedule"] == 1  # the run's own trigger
    assert r.zcard(keys.delayed) == r.zcard(keys.delayed_claims) == 0
    assert r.zrange(keys.outbox, 0, -1) == [run.id]


def test_a_queued_run_whose_enqueue_was_lost_is_enqueued_after_the_grace(
    r: redis.Redis,
    rq: redis.Redis,
    keys: Keys,
    store: TaskStore,
    make_scheduler: Callable[..., Scheduler],
) -> None:
    task = create(store, schedule_kind="event", schedule_expr="x", priority=4)
    run = store.run_now(task.id, AGENT)  # queued and in the outbox; nobody enqueued it
    finished = add_run(r, keys, task, status="succeeded", next_attempt_at=None)
    deadline = r.zscore(keys.outbox, run.id)
    assert deadline is not None
    r.zadd(keys.outbox, {finished.id: deadline})
    scheduler = make_scheduler()

    assert scheduler.run_once().swept == 0
    to(int(deadline))
    assert scheduler.run_once().swept == 1

    assert rq.lrange("rq:queue:chime-p4", 0, -1) == [run.id.encode()]
    # the finished run left the outbox; the queued one stays until a worker starts it
    assert r.zrange(keys.outbox, 0, -1) == [run.id]
    assert scheduler.run_once().swept == 0


def test_claims_in_hand_go_back_to_due_when_the_loop_stops_mid_batch(
    r: redis.Redis, keys: Keys, store: TaskStore, make_scheduler: Callable[..., Scheduler]
) -> None:
    task = create(store)
    occ = task.next_run_at
    assert occ is not None
    stop = threading.Event()

    def fail(point: str) -> None:
        if point == "after_claim":
            stop.set()
            raise RuntimeError("stopped between claim and commit")

    scheduler = make_scheduler(hook=fail)
    to(occ)
    scheduler.run(stop)

    assert r.zcard(keys.claims) == 0
    assert r.zscore(keys.due, task.id) == occ
    assert runs_of(r, keys, task.id) == []
