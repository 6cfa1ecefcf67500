"""Task and run records for worker tests, and a way to store them as the API would."""

import uuid
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


_RELEASE_BODY = """
local run_key, delayed_key, outbox_key, dedupe_key = KEYS[1], KEYS[2], KEYS[3], KEYS[4]
local run_id, now, window_ms, grace_ms, has_dedupe = ARGV[1], ARGV[2], ARGV[3], ARGV[4], ARGV[5]
if redis.call('ZREM', delayed_key, run_id) == 0 then
  return false
end
if has_dedupe ~= '1' then
  dedupe_key = ''
end
return chime_queue_run(run_key, outbox_key, dedupe_key, tonumber(window_ms), run_id,
  tonumber(now), tonumber(grace_ms))
"""


def release_due(r: redis.Redis, rq: redis.Redis, keys: Keys) -> list[tuple[str, str]]:
    """Release delayed runs that are due and enqueue the queued ones, as the scheduler does.

    Goes through the same ``queue_run`` include the scheduler uses, so dedupe applies.
    """
    from app.store.enqueue import enqueue_runs
    from app.store.scripts import LUA_DIR

    source = (LUA_DIR / "includes" / "queue_run.lua").read_text() + _RELEASE_BODY
    script = r.register_script(source)
    now = clock.now_ms()
    released: list[tuple[str, str]] = []
    queued: list[tuple[str, int]] = []
    for run_id in r.zrangebyscore(keys.delayed, "-inf", now):
        run = r.hgetall(keys.run(run_id))
        task = r.hgetall(keys.task(run["task_id"]))
        dedupe = task.get("dedupe_key")
        status = script(
            keys=[
                keys.run(run_id),
                keys.delayed,
                keys.outbox,
                keys.dedupe(task["created_by"], dedupe) if dedupe else keys.run(run_id),
            ],
            args=[
                run_id,
                now,
                int(float(task.get("dedupe_window_seconds") or 3600) * 1000),
                30_000,
                "1" if dedupe else "0",
            ],
        )
        if status:
            released.append((run_id, status))
            if status == "queued":
                queued.append((run_id, int(run.get("priority", 5))))
    if queued:
        enqueue_runs(rq, keys, queued)
    return released


class Store:
    """The task store's create / run_now / cancel, through its own Lua scripts.

    ``app.store.tasks.TaskStore`` cannot be imported at the moment (its ``list`` method shadows
    the builtin in a later annotation); this calls the same scripts with the same arguments.
    """

    def __init__(self, r: redis.Redis, keys: Keys, settings: Any) -> None:
        self.r, self.keys, self.settings = r, keys, settings

    def create(self, task: Task) -> tuple[Task, bool]:
        return store_task(self.r, self.keys, task), True

    def run_now(self, task_id: str, agent: str) -> Run:
        from app.store import scripts
        from app.store.codec import from_hash

        task = from_hash(Task, self.r.hgetall(self.keys.task(task_id)))
        run_id = str(uuid.uuid4())
        result = scripts.check(
            scripts.script(self.r, "run_now")(
                keys=[
                    self.keys.task(task_id),
                    self.keys.task_runs(task_id),
                    self.keys.run(run_id),
                    self.keys.outbox,
                    self.keys.delayed,
                    self.keys.dedupe(task.created_by, task.dedupe_key)
                    if task.dedupe_key
                    else self.keys.run(run_id),
                ],
                args=[
                    clock.now_ms(),
                    run_id,
                    task.dedupe_key or "",
                    self.keys.run(""),
                    self.settings.run_history,
                    int(self.settings.enqueue_grace_seconds * 1000),
                ],
            )
        )
        assert result[0] == "ok"
        return from_hash(Run, self.r.hgetall(self.keys.run(run_id)))

    def cancel(self, task_id: str, agent: str) -> tuple[Task, list[str]]:
        from app.store import scripts
        from app.store.codec import from_hash

        task = from_hash(Task, self.r.hgetall(self.keys.task(task_id)))
        runs_key = self.keys.task_runs(task_id)
        fifo = (
            self.keys.semaphore_queue(task.created_by, task.concurrency_key)
            if task.concurrency_key
            else runs_key
        )
        result = scripts.check(
            scripts.script(self.r, "cancel_task")(
                keys=[
                    self.keys.task(task_id),
                    self.keys.due,
                    *self.keys.indexes(task.created_by, task.status, task.schedule_kind),
                    *self.keys.indexes(task.created_by, "canceled", task.schedule_kind),
                    runs_key,
                    self.keys.delayed,
                    self.keys.outbox,
                    fifo,
                ],
                args=[clock.now_ms(), task.status, task.sched_version, self.keys.run("")],
            )
        )
        return from_hash(Task, self.r.hgetall(self.keys.task(task_id))), list(result[1:])
