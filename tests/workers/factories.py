"""Task and run records for worker tests, and a way to store them as the API would."""

import uuid
from collections import Counter
from typing import Any

import redis

from app import clock
from app.core.pipeline import parse_pipeline, pipeline_payload
from app.core.task import Run, Task
from app.store.codec import to_hash
from app.store.keys import Keys

AGENT = "0b7e7f34-51c6-4bd1-9d4e-4b0d6d6d0a11"
OTHER_AGENT = "1c3f1f7a-6f0b-4f38-8d0e-9a0b1c2d3e4f"


def make_task(steps: list[dict[str, Any]] | None = None, **kw: Any) -> Task:
    now = clock.now_ms()
    payload = pipeline_payload(
        parse_pipeline(
            {"steps": steps or [{"name": "s", "action": "log", "params": {"message": "hi"}}]}
        )
    )
    fields: dict[str, Any] = {
        "id": str(uuid.uuid4()),
        "title": "t",
        "description": "",
        "schedule_kind": "event",
        "payload": payload,
        "created_by": AGENT,
        "created_at": now,
        "updated_at": now,
        "retry_delay_seconds": 0.0,
    }
    fields.update(kw)
    return Task(**fields)


def make_run(task: Task, **kw: Any) -> Run:
    fields: dict[str, Any] = {
        "id": str(uuid.uuid4()),
        "task_id": task.id,
        "agent_id": task.created_by,
        "trigger": "run_now",
        "scheduled_for": clock.now_ms(),
        "created_at": clock.now_ms(),
        "max_attempts": task.max_retries + 1,
        "priority": task.priority,
        "status": "queued",
    }
    fields.update(kw)
    return Run(**fields)


def store_task(r: redis.Redis, keys: Keys, task: Task) -> Task:
    """Write the task hash and its listing indexes, as the task store does."""
    r.hset(keys.task(task.id), mapping=to_hash(task))
    for index in keys.indexes(task.created_by, task.status, task.schedule_kind):
        r.zadd(index, {task.id: task.created_at})
    return task


def store_run(r: redis.Redis, keys: Keys, run: Run) -> Run:
    r.hset(keys.run(run.id), mapping=to_hash(run))
    r.zadd(keys.task_runs(run.task_id), {run.id: run.created_at})
    return run


def release_due(r: redis.Redis, rq: redis.Redis, settings: Any) -> Counter[str]:
    """One scheduler pass: delayed runs that are due are released (dedupe applies) and
    enqueued. Returns the released runs counted by outcome."""
    from workers.scheduler import Scheduler

    return Scheduler(settings, client=r, rq=rq).run_once().released
