"""Event runs end to end: matching tasks' runs reach RQ at once, a snoozed task's runs wait in
delayed and the scheduler releases them when the snooze ends (or later, if it is extended)."""

from collections.abc import Callable

import redis

from app import clock
from app.service.backend import Backend
from app.service.events import emit_event
from app.settings import Settings
from app.store.keys import Keys
from app.store.tasks import TaskStore
from tests.support.agents import AGENT, OTHER_AGENT
from tests.support.scheduler import create, rq_job_ids, runs_of
from workers.scheduler import Scheduler


def test_event_runs_of_active_tasks_go_to_rq_and_snoozed_ones_wait_for_the_scheduler(
    r: redis.Redis,
    rq: redis.Redis,
    keys: Keys,
    settings: Settings,
    store: TaskStore,
    make_scheduler: Callable[..., Scheduler],
) -> None:
    live = create(store, schedule_kind="event", schedule_expr="build.*")
    snoozed = create(store, schedule_kind="event", schedule_expr="build.done")
    paused = create(store, schedule_kind="event", schedule_expr="build.done")
    theirs = create(
        store, schedule_kind="event", schedule_expr="build.done", created_by=OTHER_AGENT
    )
    store.pause(paused.id, AGENT)
    until = store.snooze(snoozed.id, 600, None, AGENT).snoozed_until
    assert until is not None
    scheduler = make_scheduler()

    _, runs = emit_event(Backend(r, rq, keys, settings), AGENT, "build.done", {"ok": True})

    by_task = {run.task_id: run for run in runs}
    assert set(by_task) == {live.id, snoozed.id}
    assert rq_job_ids(rq) == [by_task[live.id].id]
    held = by_task[snoozed.id]
    assert scheduler.run_once().released == {}

    # extended while held: the run waits for the new end
    store.snooze(snoozed.id, 900, None, AGENT)
    extended = store.get(snoozed.id).snoozed_until
    assert extended is not None and extended > until
    clock.shift(until - clock.now_ms())
    assert scheduler.run_once().released == {"delayed": 1}
    assert r.zscore(keys.delayed, held.id) == extended

    clock.shift(extended - clock.now_ms())
    assert scheduler.run_once().released == {"queued": 1}
    assert sorted(rq_job_ids(rq)) == sorted([by_task[live.id].id, held.id])
    assert r.hget(keys.run(held.id), "status") == "queued"
    assert runs_of(r, keys, paused.id) == runs_of(r, keys, theirs.id) == []
