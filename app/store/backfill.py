"""Backfill runs of a task (``POST /tasks/{id}/backfill``): one script,
``lua/backfill_runs.lua``, creates the run of every occurrence at once (the use case,
``app/service/tasks.py``, then puts the queued ones on RQ)."""

from dataclasses import dataclass
from typing import Any

import redis

from app import clock
from app.core.backfill import backfill_run_id, occurrences
from app.core.errors import Conflict
from app.core.task import Run
from app.settings import Settings
from app.store import history, scripts
from app.store.keys import Keys
from app.store.scripts import ErrorCode, ScriptError
from app.store.tasks import TaskStore


@dataclass(frozen=True)
class Backfilled:
    """The runs of the occurrences, oldest first, and which of them this call made."""

    runs: list[Run]
    #: per run: True when this call made it (False: an earlier backfill did)
    made: list[bool]


def backfill(
    store: TaskStore, task_id: str, start_ms: int, end_ms: int, agent: str | None
) -> Backfilled:
    """The runs of the task's occurrences in ``[start_ms, end_ms)``: made now, or made by an
    earlier backfill of the same occurrence."""
    client, keys, settings = store.r, store.keys, store.settings
    task = store.get(task_id, agent)
    if task.status == "canceled":
        raise Conflict("backfill", task.status)
    found = occurrences(task, start_ms, end_ms, clock.now_ms())
    if not found:
        return Backfilled([], [])
    reply = _call(client, keys, settings, task.id, found)
    try:
        scripts.check(reply)
    except ScriptError as exc:
        if exc.code is ErrorCode.CONFLICT:
            raise Conflict("backfill", exc.detail) from None
        raise
    made = [(str(reply[i]), str(reply[i + 1])) for i in range(1, len(reply), 2)]
    runs = history.load_runs(client, keys, [run_id for run_id, _ in made])
    return Backfilled(runs, [status != "exists" for _, status in made])


def _call(
    client: redis.Redis, keys: Keys, settings: Settings, task_id: str, found: list[int]
) -> Any:
    ids = [backfill_run_id(task_id, at) for at in found]
    args: list[Any] = [
        clock.now_ms(),
        keys.run(""),
        settings.run_history,
        clock.ms(settings.enqueue_grace_seconds),
    ]
    for run_id, at in zip(ids, found, strict=True):
        args += [run_id, at]
    return scripts.script(client, "backfill_runs")(
        keys=[
            keys.task(task_id),
            keys.task_runs(task_id),
            keys.outbox,
            keys.delayed,
            *(keys.run(run_id) for run_id in ids),
        ],
        args=args,
    )
