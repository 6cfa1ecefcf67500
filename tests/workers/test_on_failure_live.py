"""``payload.on_failure`` against a real worker: its steps run once, after the last attempt
failed (not after a retried one), read ``run.error`` and ``run.failed_step``, are recorded in
``on_failure_steps``, and change neither the run's status nor its attempts."""

import signal
import time
from pathlib import Path
from typing import Any

import redis

from app.store.enqueue import enqueue_runs
from app.store.keys import Keys
from app.store.runs import load_run
from app.store.tasks import TaskStore
from tests.support.agents import AGENT
from tests.support.scheduler import spawn_scheduler
from tests.support.waiting import wait_for as wait_until
from tests.support.workers import Workers
from tests.support.workers import worker_task as make_task
from tests.workers.sink import AsyncSink


def failing_task(sink: AsyncSink, retries: int) -> Any:
    task = make_task(
        [
            {"name": "ok", "action": "log", "params": {"message": "first"}},
            {"name": "boom", "action": "fail", "params": {"message": "the disk is full"}},
        ],
        max_retries=retries,
        backoff_strategy="fixed",
    )
    task.payload["on_failure"] = [
        {
            "name": "alert",
            "action": "http.request",
            "params": {
                "method": "POST",
                "url": f"{sink.url}/alert/{{{{ run.id }}}}",
                "json": {"error": "{{ run.error }}", "step": "{{ run.failed_step }}"},
            },
            "timeout_seconds": 30.0,
        },
        {"name": "note", "action": "log", "params": {"message": "{{ run.failed_step }}"}},
    ]
    return task


def test_on_failure_runs_once_after_the_last_attempt(
    store: TaskStore,
    r: redis.Redis,
    rq_client: redis.Redis,
    keys: Keys,
    redis_url: str,
    workers: Workers,
    sink: AsyncSink,
    tmp_path: Path,
) -> None:
    workers.start()
    scheduler = spawn_scheduler(redis_url, tmp_path / "scheduler.log")  # releases the retries
    try:
        task, _ = store.create(failing_task(sink, retries=2))
        run = store.run_now(task.id, AGENT)
        enqueue_runs(rq_client, keys, [(run.id, run.priority)])
        done = wait_until(
            lambda: (found := load_run(r, keys, run.id)) and found.on_failure_steps and found,
            what="the on_failure steps",
        )
    finally:
        scheduler.send_signal(signal.SIGTERM)
        scheduler.wait(20)
    assert done.status == "failed" and done.attempt == 3
    assert done.error == "step boom (fail): the disk is full"
    assert [s["status"] for s in done.on_failure_steps] == ["succeeded", "succeeded"]
    assert done.on_failure_steps[0]["output"]["status"] == 200
    assert done.on_failure_steps[1]["output"] == "boom"
    time.sleep(1)
    # three attempts failed; only the last one ran the on_failure steps
    assert [p for p, _ in sink.record.requests] == [f"/alert/{run.id}"]
    after = load_run(r, keys, run.id)
    assert after is not None and (after.status, after.attempt) == ("failed", 3)
