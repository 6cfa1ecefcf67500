"""Jitter, live: two scheduler processes fire each occurrence once, never before its jittered
instant, and the runs of one instant spread over the window."""

import signal
from pathlib import Path

import redis

from app import clock
from app.core.jitter import offset_ms
from app.store.keys import Keys
from app.store.tasks import TaskStore
from tests.support.scheduler import create, once_at, runs_of, spawn_scheduler, wake_subscribers
from tests.support.waiting import wait_for

TASKS = 40
JITTER = 4


def test_two_schedulers_fire_each_occurrence_once_at_its_jittered_instant(
    r: redis.Redis, keys: Keys, store: TaskStore, redis_url: str, tmp_path: Path
) -> None:
    procs = [spawn_scheduler(redis_url, tmp_path / f"s{i}.log") for i in range(2)]
    try:
        wait_for(lambda: wake_subscribers(r, keys) == 2)
        at = (clock.now_ms() // 1000 + 3) * 1000
        tasks = [
            create(store, schedule_kind="once", schedule_expr=once_at(at), jitter_seconds=JITTER)
            for _ in range(TASKS)
        ]
        assert clock.now_ms() < at, "creating the tasks took longer than planned"
        for task in tasks:
            assert task.next_run_at == at + offset_ms(task.id, at, JITTER)
        wait_for(lambda: all(runs_of(r, keys, t.id) for t in tasks), timeout=60)
    finally:
        for proc in procs:
            proc.send_signal(signal.SIGTERM)
        codes = [proc.wait(20) for proc in procs]
    assert codes == [0, 0]
    offsets = []
    for task in tasks:
        (run,) = runs_of(r, keys, task.id)
        assert run.scheduled_for == at
        offset = offset_ms(task.id, at, JITTER)
        assert run.created_at >= at + offset, (run.created_at - at, offset)
        offsets.append(offset)
    # the instants of one occurrence spread over the window, not all at its start
    assert max(offsets) - min(offsets) > JITTER * 1000 // 2
    assert r.zcard(keys.claims) == 0
