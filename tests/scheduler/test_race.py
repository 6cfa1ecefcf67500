"""Several schedulers racing over 5,000 due tasks: every occurrence gets exactly one run, and
every run is enqueued on RQ exactly once."""

import re
import signal
import threading
from collections.abc import Callable
from pathlib import Path

import pytest
import redis

from app import clock
from app.store.keys import Keys
from app.store.tasks import TaskStore
from tests.support.scheduler import (
    create,
    once_at,
    rq_job_ids,
    runs_of,
    spawn_scheduler,
    wake_subscribers,
)
from tests.support.waiting import wait_for
from workers.scheduler import Scheduler

TASKS = 5000
MIN = 60_000


def assert_exactly_once(
    r: redis.Redis, rq: redis.Redis, keys: Keys, expected: dict[str, list[int]]
) -> None:
    pipe = r.pipeline(transaction=False)
    for task_id in expected:
        pipe.zrange(keys.task_runs(task_id), 0, -1, withscores=True)
    all_runs: list[str] = []
    for (task_id, times), runs in zip(expected.items(), pipe.execute(), strict=True):
        assert [int(score) for _, score in runs] == times, task_id
        all_runs += [run_id for run_id, _ in runs]
    jobs = rq_job_ids(rq)
    assert len(jobs) == len(set(jobs)) == len(all_runs)
    assert set(jobs) == set(all_runs)
    assert r.zcard(keys.claims) == 0
    # queued runs stay in the outbox, the ledger of queued runs, until a worker starts them
    assert set(r.zrange(keys.outbox, 0, -1)) == set(all_runs)


@pytest.mark.parametrize("processes", [2, 4])
def test_scheduler_processes_racing_over_5000_due_tasks(
    r: redis.Redis,
    rq: redis.Redis,
    keys: Keys,
    redis_url: str,
    store: TaskStore,
    tmp_path: Path,
    processes: int,
) -> None:
    logs = [tmp_path / f"scheduler{i}.log" for i in range(processes)]
    procs = [
        spawn_scheduler(redis_url, log, CHIME_CLAIM_BATCH="100", CHIME_LOG_LEVEL="DEBUG")
        for log in logs
    ]
    try:
        wait_for(lambda: wake_subscribers(r, keys) == processes)
        # the schedulers are stopped while the tasks are created, however long that takes, and
        # continued together: every task is due by then, and all of them race over all of it
        for proc in procs:
            proc.send_signal(signal.SIGSTOP)
        at = clock.now_ms()
        tasks = [
            create(store, schedule_kind="once", schedule_expr=once_at(at)) for _ in range(TASKS)
        ]
        assert r.zcard(keys.due) == TASKS and r.zcard(keys.claims) == 0
        for proc in procs:
            proc.send_signal(signal.SIGCONT)
        wait_for(lambda: len(rq_job_ids(rq)) >= TASKS, timeout=60, every=0.2)
    finally:
        for proc in procs:
            proc.send_signal(signal.SIGCONT)
            proc.send_signal(signal.SIGTERM)
        codes = [proc.wait(20) for proc in procs]
    assert codes == [0] * processes

    assert_exactly_once(r, rq, keys, {t.id: [at] for t in tasks})
    claimed = [
        sum(int(n) for n in re.findall(r"event=scheduler.batch claimed=(\d+)", log.read_text()))
        for log in logs
    ]
    assert sum(claimed) == TASKS
    assert sum(1 for n in claimed if n) >= 2, claimed


def test_two_in_process_schedulers_over_5000_tasks_for_two_minutes(
    r: redis.Redis,
    rq: redis.Redis,
    keys: Keys,
    store: TaskStore,
    make_scheduler: Callable[..., Scheduler],
) -> None:
    tasks = [create(store) for _ in range(TASKS)]
    first = tasks[0].next_run_at
    assert first is not None
    stop = threading.Event()
    threads = [
        threading.Thread(target=make_scheduler(claim_batch=250).run, args=(stop,)) for _ in range(2)
    ]
    for thread in threads:
        thread.start()
    try:
        wait_for(lambda: wake_subscribers(r, keys) == 2)
        for minute in range(2):
            # the clock jumps to the next minute; a wake-up tells the sleeping schedulers
            clock.shift(first + minute * MIN - clock.now_ms())
            r.publish(keys.wake, "test")
            wait_for(lambda m=minute: len(rq_job_ids(rq)) >= TASKS * (m + 1), 60, every=0.1)
    finally:
        stop.set()
        for thread in threads:
            thread.join(20)

    assert_exactly_once(r, rq, keys, {t.id: [first, first + MIN] for t in tasks})
    assert all(store.get(t.id).next_run_at == first + 2 * MIN for t in tasks[:50])
    assert len(runs_of(r, keys, tasks[0].id)) == 2
