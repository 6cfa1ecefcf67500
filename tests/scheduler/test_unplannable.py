"""The scheduler never stalls on one task: a task whose next occurrence cannot be computed is
paused alone, with a ``pause_reason`` saying why, while the other tasks (the same agent's and
another agent's) keep firing; a live ``chime scheduler`` process."""

from pathlib import Path

import redis

from app.store.keys import Keys
from app.store.tasks import TaskStore
from tests.support.agents import OTHER_AGENT
from tests.support.scheduler import create, runs_of, spawn_scheduler
from tests.support.waiting import wait_for

EVERY_SECOND = "* * * * * *"


def test_a_task_whose_schedule_fails_is_paused_alone_and_the_others_go_on(
    r: redis.Redis, keys: Keys, redis_url: str, store: TaskStore, tmp_path: Path
) -> None:
    broken = create(store, schedule_expr=EVERY_SECOND)
    # a rule stored by an older version that this one cannot compute any more
    r.hset(keys.task(broken.id), "schedule_expr", "61 * * * * *")
    mine = create(store, schedule_expr=EVERY_SECOND)
    theirs = create(store, schedule_expr=EVERY_SECOND, created_by=OTHER_AGENT)
    proc = spawn_scheduler(redis_url, tmp_path / "scheduler.log")
    try:
        wait_for(lambda: r.hget(keys.task(broken.id), "status") == "paused", timeout=30)
        reason = r.hget(keys.task(broken.id), "pause_reason")
        assert reason is not None and reason.startswith("schedule: ")
        assert "61" in reason
        wait_for(lambda: len(runs_of(r, keys, mine.id)) >= 3, timeout=30)
        wait_for(lambda: len(runs_of(r, keys, theirs.id)) >= 3, timeout=30)
    finally:
        proc.terminate()
        proc.wait(10)
    assert runs_of(r, keys, broken.id) == []
    assert r.zscore(keys.due, broken.id) is None
    assert r.zscore(keys.claims, broken.id) is None
    assert "task_paused" in (tmp_path / "scheduler.log").read_text()
