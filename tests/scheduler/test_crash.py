"""A scheduler process killed at the worst moments loses nothing and runs nothing twice; one
told to stop mid-batch finishes the batch and exits 0.

The process stops itself (SIGSTOP) at ``after_claim`` or ``after_commit`` through
``CHIME_SCHEDULER_TEST_HALT``; the test then kills it with SIGKILL, and an in-process scheduler
whose clock is moved past the lease (or the outbox grace) takes over.
"""

import os
import signal
from collections.abc import Callable
from pathlib import Path

import pytest
import redis

from app import clock
from app.core.task import Task
from app.store.keys import Keys
from app.store.tasks import TaskStore
from tests.support.scheduler import (
    create,
    once_at,
    process_state,
    rq_job_ids,
    runs_of,
    spawn_scheduler,
)
from tests.support.waiting import wait_for
from workers.scheduler import HALT_ENV, Scheduler

TASKS = 200
LEASE_S = 2.0
GRACE_S = 3.0


def due_tasks(store: TaskStore) -> list[Task]:
    at = once_at(clock.now_ms())
    return [create(store, schedule_kind="once", schedule_expr=at) for _ in range(TASKS)]


def assert_one_run_each_and_all_enqueued(
    r: redis.Redis, rq: redis.Redis, keys: Keys, tasks: list[Task]
) -> None:
    run_ids = []
    for task in tasks:
        runs = runs_of(r, keys, task.id)
        assert [run.scheduled_for for run in runs] == [task.next_run_at]
        run_ids.append(runs[0].id)
    jobs = rq_job_ids(rq)
    assert sorted(jobs) == sorted(run_ids)
    assert r.zcard(keys.claims) == r.zcard(keys.due) == 0
    # queued runs stay in the outbox, the ledger of queued runs, until a worker starts them
    assert sorted(r.zrange(keys.outbox, 0, -1)) == sorted(run_ids)


def halted(redis_url: str, tmp_path: Path, point: str) -> int:
    proc = spawn_scheduler(
        redis_url,
        tmp_path / "scheduler.log",
        **{
            HALT_ENV: point,
            "CHIME_CLAIM_LEASE_SECONDS": str(LEASE_S),
            "CHIME_ENQUEUE_GRACE_SECONDS": str(GRACE_S),
        },
    )
    try:
        wait_for(lambda: process_state(proc.pid) == "T")
    except AssertionError:
        proc.kill()
        raise AssertionError((tmp_path / "scheduler.log").read_text()) from None
    os.kill(proc.pid, signal.SIGKILL)
    assert proc.wait(10) == -signal.SIGKILL
    return proc.pid


def test_killed_between_claim_and_commit_the_claims_are_taken_over_after_the_lease(
    r: redis.Redis,
    rq: redis.Redis,
    keys: Keys,
    redis_url: str,
    store: TaskStore,
    make_scheduler: Callable[..., Scheduler],
    tmp_path: Path,
) -> None:
    tasks = due_tasks(store)
    halted(redis_url, tmp_path, "after_claim")
    assert r.zcard(keys.claims) == TASKS and r.zcard(keys.due) == 0
    assert rq_job_ids(rq) == [] and all(runs_of(r, keys, t.id) == [] for t in tasks[:5])

    other = make_scheduler(claim_lease_seconds=LEASE_S)
    assert other.run_once().claimed == 0  # the dead scheduler's leases still hold
    clock.shift(int(LEASE_S * 1000) + 50)
    assert other.run_once().claimed == TASKS

    assert_one_run_each_and_all_enqueued(r, rq, keys, tasks)


def test_killed_between_commit_and_enqueue_the_runs_are_enqueued_after_the_grace(
    r: redis.Redis,
    rq: redis.Redis,
    keys: Keys,
    redis_url: str,
    store: TaskStore,
    make_scheduler: Callable[..., Scheduler],
    tmp_path: Path,
) -> None:
    tasks = due_tasks(store)
    halted(redis_url, tmp_path, "after_commit")
    assert r.zcard(keys.claims) == 0 and r.zcard(keys.outbox) == TASKS
    assert rq_job_ids(rq) == []

    other = make_scheduler(enqueue_grace_seconds=GRACE_S)
    assert other.run_once().swept == 0
    clock.shift(int(GRACE_S * 1000) + 50)
    assert other.run_once().swept == TASKS

    assert_one_run_each_and_all_enqueued(r, rq, keys, tasks)


@pytest.mark.parametrize("point", ["after_claim", "after_commit"])
def test_sigterm_mid_batch_finishes_the_batch_and_exits_0(
    r: redis.Redis,
    rq: redis.Redis,
    keys: Keys,
    redis_url: str,
    store: TaskStore,
    tmp_path: Path,
    point: str,
) -> None:
    tasks = due_tasks(store)
    log = tmp_path / "scheduler.log"
    proc = spawn_scheduler(redis_url, log, "-m", "app.cli", "scheduler", **{HALT_ENV: point})
    wait_for(lambda: process_state(proc.pid) == "T")
    os.kill(proc.pid, signal.SIGTERM)  # held while stopped, handled once it goes on
    os.kill(proc.pid, signal.SIGCONT)

    assert proc.wait(15) == 0, log.read_text()
    assert_one_run_each_and_all_enqueued(r, rq, keys, tasks)
    assert "scheduler.stopped" in log.read_text()
