"""Backfill runs of a task (``POST /tasks/{id}/backfill``): one script,
``lua/backfill_runs.lua``, creates the run of every occurrence at once; the queued ones then
go to RQ."""

from typing import Any

import redis

from app import clock
from app.core.backfill import backfill_run_id, occurrences
from app.core.errors import Conflict
from app.core.status import RunStatus, Trigger
from app.core.task import Run
from app.settings import Settings
from app.store import history, scripts, stats
from app.store.enqueue import enqueue_runs
from app.store.keys import Keys
from app.store.scripts import ErrorCode, ScriptError
from app.store.tasks import TaskStore

_RETRIES = 20


def backfill(
    store: TaskStore,
    rq: redis.Redis,
    task_id: str,
    start_ms: int,
    end_ms: int,
    agent: str | None,
) -> list[Run]:
    """The runs of the task's occurrences in ``[start_ms, end_ms)``, oldest first: made now,
    or made by an earlier backfill of the same occurrence."""
    client, keys, settings = store.r, store.keys, store.settings
    for _ in range(_RETRIES):
        task = store.get(task_id, agent)
        if task.status == "canceled":
            raise Conflict("backfill", task.status)
        found = occurrences(task, start_ms, end_ms, clock.now_ms())
        if not found:
            return []
        reply = _call(client, keys, settings, task.id, task.created_by, task.dedupe_key, found)
        try:
            scripts.check(reply)
        except ScriptError as exc:
            if exc.code is ErrorCode.STALE:
                continue
            if exc.code is ErrorCode.CONFLICT:
                raise Conflict("backfill", exc.detail) from None
            raise
        made = [(str(reply[i]), str(reply[i + 1])) for i in range(1, len(reply), 2)]
        runs = history.load_runs(client, keys, [run_id for run_id, _ in made])
        pipe = client.pipeline(transaction=False)
        for _, status in made:
            if status != "exists":
                stats.count_run(pipe, keys, status, Trigger.BACKFILL)
        pipe.execute()
        enqueue_runs(
            rq,
            keys,
            [
                (run.id, run.priority)
                for run, (_, status) in zip(runs, made, strict=True)
                if status == RunStatus.QUEUED
            ],
        )
        return runs
    raise Conflict("backfill", "changing too fast to apply; try again")


def _call(
    client: redis.Redis,
    keys: Keys,
    settings: Settings,
    task_id: str,
    agent: str,
    dedupe_key: str | None,
    found: list[int],
) -> Any:
    ids = [backfill_run_id(task_id, at) for at in found]
    args: list[Any] = [
        clock.now_ms(),
        dedupe_key or "",
        keys.run(""),
        settings.run_history,
        round(settings.enqueue_grace_seconds * 1000),
    ]
    for run_id, at in zip(ids, found, strict=True):
        args += [run_id, at]
    return scripts.script(client, "backfill_runs")(
        keys=[
            keys.task(task_id),
            keys.task_runs(task_id),
            keys.outbox,
            keys.delayed,
            keys.dedupe(agent, dedupe_key) if dedupe_key else keys.task(task_id),
            *(keys.run(run_id) for run_id in ids),
        ],
        args=args,
    )
