"""Run history per task is capped at CHIME_RUN_HISTORY: older finished runs are deleted as new
ones are created, whatever created them; a run that has not finished is never deleted."""

import uuid

import redis

from app import clock
from app.core.task import Task
from app.settings import Settings
from app.store.keys import Keys
from app.store.tasks import TaskStore
from tests.support.agents import AGENT


def capped_store(r: redis.Redis, redis_url: str, cap: int) -> TaskStore:
    settings = Settings.from_env({"REDIS_URL": redis_url, "CHIME_RUN_HISTORY": str(cap)})
    return TaskStore(r, Keys(settings.key_prefix), settings)


def new_task(store: TaskStore) -> Task:
    now = clock.now_ms()
    task, _ = store.create(
        Task(
            id=str(uuid.uuid4()),
            title="t",
            description="",
            schedule_kind="event",
            payload={"steps": [{"name": "a", "action": "log", "params": {"message": "m"}}]},
            created_by=AGENT,
            created_at=now,
            updated_at=now,
        )
    )
    return task


def test_history_keeps_the_newest_finished_runs(r: redis.Redis, redis_url: str) -> None:
    store = capped_store(r, redis_url, 3)
    keys = store.keys
    task = new_task(store)
    made = []
    for _ in range(6):
        run = store.run_now(task.id, AGENT)
        r.hset(keys.run(run.id), "status", "succeeded")
        made.append(run.id)
        clock.shift(5)

    kept = r.zrange(keys.task_runs(task.id), 0, -1)
    # the cap is applied as each run is created: the newest is created before the trim
    assert kept == made[-3:]
    for run_id in made[:-3]:
        assert not r.exists(keys.run(run_id))
    for run_id in made[-3:]:
        assert r.exists(keys.run(run_id))
    assert int(r.hget(keys.task(task.id), "run_count") or 0) == 6


def test_history_never_deletes_a_run_that_has_not_finished(r: redis.Redis, redis_url: str) -> None:
    store = capped_store(r, redis_url, 2)
    keys = store.keys
    task = new_task(store)
    unfinished = store.run_now(task.id, AGENT).id  # stays queued
    clock.shift(5)
    later = []
    for _ in range(3):
        run = store.run_now(task.id, AGENT)
        r.hset(keys.run(run.id), "status", "failed")
        later.append(run.id)
        clock.shift(5)

    kept = r.zrange(keys.task_runs(task.id), 0, -1)
    assert unfinished in kept and r.hget(keys.run(unfinished), "status") == "queued"
    assert later[-1] in kept
    assert not r.exists(keys.run(later[0]))
