"""``overlap_policy`` live: per-second tasks whose runs last longer than a second, on two
workers, fired by two racing scheduler processes. ``allow`` overlaps (the control); ``skip`` and
``buffer_one`` never have two runs of the task at the sink at once; ``cancel_running`` cuts
the earlier run's request when the next occurrence fires."""

import signal
import time
from collections import Counter
from pathlib import Path
from typing import Any

import redis

from app.core.task import Task
from app.service.backend import Backend
from app.service.runs import cancel_run
from app.settings import Settings
from app.store.keys import Keys
from app.store.tasks import TaskStore
from tests.support.agents import AGENT
from tests.support.scheduler import runs_of, spawn_scheduler, wake_subscribers
from tests.support.waiting import wait_for
from tests.support.workers import Workers
from tests.support.workers import worker_task as make_task
from tests.workers.sink import AsyncSink

HOLD_MS = 2500


def hold(sink: AsyncSink, group: str) -> list[dict[str, Any]]:
    url = f"{sink.url}/hold/{{{{ run.id }}}}?ms={HOLD_MS}&group={group}"
    return [{"name": "hold", "action": "http.request", "params": {"url": url}}]


def hang(sink: AsyncSink) -> list[dict[str, Any]]:
    url = f"{sink.url}/hang/{{{{ run.id }}}}"
    return [{"name": "hang", "action": "http.request", "params": {"url": url}}]


def per_second(store: TaskStore, steps: list[dict[str, Any]], policy: str) -> Task:
    task, _ = store.create(
        make_task(steps, schedule_kind="cron", schedule_expr="* * * * * *", overlap_policy=policy)
    )
    return task


def test_each_policy_with_runs_still_running_when_the_next_occurrence_fires(
    redis_url: str,
    r: redis.Redis,
    keys: Keys,
    store: TaskStore,
    workers: Workers,
    sink: AsyncSink,
    tmp_path: Path,
    rq_client: redis.Redis,
    settings: Settings,
) -> None:
    for _ in range(2):
        workers.start()
    schedulers = [spawn_scheduler(redis_url, tmp_path / f"s{i}.log") for i in range(2)]
    try:
        wait_for(lambda: wake_subscribers(r, keys) == 2)
        tasks = {
            "allow": per_second(store, hold(sink, "allow"), "allow"),
            "skip": per_second(store, hold(sink, "skip"), "skip"),
            "buffer_one": per_second(store, hold(sink, "buffer_one"), "buffer_one"),
            "cancel_running": per_second(store, hang(sink), "cancel_running"),
        }
        time.sleep(7)
        for task in tasks.values():
            store.pause(task.id, AGENT)
        # what is still in progress ends (the last cancel_running run hangs: cancel it)
        for run in runs_of(r, keys, tasks["cancel_running"].id):
            if run.status in ("queued", "running", "pending"):
                cancel_run(Backend(r, rq_client, keys, settings), run.id, AGENT)

        def settled() -> bool:
            return all(
                run.status not in ("pending", "queued", "running")
                for task in tasks.values()
                for run in runs_of(r, keys, task.id)
            )

        wait_for(settled, timeout=60, every=0.2)
    finally:
        for proc in schedulers:
            proc.send_signal(signal.SIGTERM)
        codes = [proc.wait(20) for proc in schedulers]
    assert codes == [0, 0]
    statuses = {
        policy: Counter(run.status for run in runs_of(r, keys, task.id))
        for policy, task in tasks.items()
    }
    peak = sink.record.peak
    assert peak["allow"] >= 2, (peak, statuses)  # the control: runs do overlap here
    assert peak["skip"] == 1 and peak["buffer_one"] == 1, (peak, statuses)

    assert set(statuses["skip"]) == {"succeeded", "skipped"}, statuses
    assert statuses["skip"]["skipped"] >= 2

    assert set(statuses["buffer_one"]) == {"succeeded", "skipped"}, statuses
    assert statuses["buffer_one"]["succeeded"] >= 2  # the buffered run went after the first
    for run in runs_of(r, keys, tasks["skip"].id) + runs_of(r, keys, tasks["buffer_one"].id):
        if run.status == "skipped":
            assert run.error is not None and run.error.startswith("skipped: run ")

    replaced = runs_of(r, keys, tasks["cancel_running"].id)
    # each replaced by the next; the last one canceled above
    assert statuses["cancel_running"]["canceled"] == len(replaced) >= 3, statuses
    cut = [run for run in replaced if run.started_at is not None]
    assert len(cut) >= 2
    assert all(run.attempt == 1 for run in replaced)  # none retried
    wait_for(lambda: {run.id for run in cut} <= sink.record.disconnected, timeout=20)
    assert all(sink.record.arrivals.count(run.id) == 1 for run in cut)
