"""Event loops are bounded, live: a task that emits its own event runs one hop deeper each time
and its ninth hop fails the step; ``event.emit`` data over 64 KiB fails its step; another
agent's run goes on meanwhile."""

from typing import Any

import redis

from app.core.task import Run
from app.service.backend import Backend
from app.service.events import emit_event
from app.settings import Settings
from app.store.enqueue import enqueue_runs
from app.store.events import MAX_DEPTH
from app.store.history import list_runs
from app.store.keys import Keys
from app.store.tasks import TaskStore
from tests.support.agents import AGENT, OTHER_AGENT
from tests.support.waiting import wait_for
from tests.support.workers import Workers, status_of
from tests.support.workers import worker_task as make_task


def runs_of(r: redis.Redis, keys: Keys, task_id: str) -> list[Run]:
    return list_runs(r, keys, task_id, None, 500, 0)[0]


def test_a_task_emitting_its_own_event_stops_past_depth_eight(
    settings: Settings,
    store: TaskStore,
    r: redis.Redis,
    rq_client: redis.Redis,
    keys: Keys,
    workers: Workers,
) -> None:
    step: dict[str, Any] = {"name": "again", "action": "event.emit", "params": {"name": "loop"}}
    task, _ = store.create(
        make_task([step], schedule_kind="event", schedule_expr="loop", max_retries=0)
    )
    other, _ = store.create(make_task(created_by=OTHER_AGENT))
    workers.start("--concurrency", "10")
    emit_event(Backend(r, rq_client, keys, settings), AGENT, "loop", {})

    def failed_one() -> list[Run]:
        return [run for run in runs_of(r, keys, task.id) if run.status == "failed"]

    (last,) = wait_for(failed_one, timeout=60, what="the hop past the limit")
    assert last.error is not None and f"past the limit of {MAX_DEPTH}" in last.error
    assert last.event is not None and last.event.get("depth") == MAX_DEPTH
    runs = runs_of(r, keys, task.id)
    assert len(runs) == MAX_DEPTH + 1
    assert sorted(int((run.event or {}).get("depth") or 0) for run in runs) == list(range(9))
    assert sum(1 for run in runs if run.status == "succeeded") == MAX_DEPTH
    # another agent's run is unaffected
    other_run = store.run_now(other.id, OTHER_AGENT)
    enqueue_runs(rq_client, keys, [(other_run.id, other_run.priority)])
    wait_for(lambda: status_of(r, keys, other_run.id) == "succeeded", what="the other run")


def test_event_emit_data_over_64_kib_fails_the_step(
    settings: Settings,
    store: TaskStore,
    r: redis.Redis,
    rq_client: redis.Redis,
    keys: Keys,
    workers: Workers,
) -> None:
    step: dict[str, Any] = {
        "name": "big",
        "action": "event.emit",
        "params": {"name": "big", "data": {"x": "a" * 70_000}},
    }
    task, _ = store.create(make_task([step], max_retries=0))
    listener, _ = store.create(make_task(schedule_kind="event", schedule_expr="big"))
    run = store.run_now(task.id, AGENT)
    enqueue_runs(rq_client, keys, [(run.id, run.priority)])
    workers.start("--concurrency", "10")
    wait_for(lambda: status_of(r, keys, run.id) == "failed", what="the failed step")
    (done,) = runs_of(r, keys, task.id)
    assert done.error is not None and "data" in done.error and "65536" in done.error
    assert runs_of(r, keys, listener.id) == []
