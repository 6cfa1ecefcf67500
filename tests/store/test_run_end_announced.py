"""Every script that ends a run announces it on the channel named like the run's key (what
``GET /runs/{id}?wait=`` sleeps on); a retry, which does not end the run, announces nothing."""

from typing import Any

import redis

from app.settings import Settings
from app.store.keys import Keys
from app.store.runs import finish_run, load_run, start_run
from app.store.tasks import TaskStore
from tests.support.agents import AGENT
from tests.support.workers import queued_run, store_task
from tests.support.workers import worker_task as make_task


def start(r: redis.Redis, keys: Keys, settings: Settings, run_id: str) -> Any:
    run = load_run(r, keys, run_id)
    assert run is not None
    return start_run(r, keys, settings, run)


def listen(r: redis.Redis, channel: str) -> Any:
    pubsub = r.pubsub()
    pubsub.subscribe(channel)
    assert pubsub.get_message(timeout=1)["type"] == "subscribe"
    return pubsub


def announced(pubsub: Any) -> list[str]:
    out = []
    while (message := pubsub.get_message(timeout=0.2)) is not None:
        out.append(message["data"])
    pubsub.close()
    return out


def test_finish_announces_the_final_status_only(
    r: redis.Redis, keys: Keys, settings: Settings
) -> None:
    task = store_task(r, keys, make_task(max_retries=1))
    run_id = queued_run(r, keys, task, max_attempts=2)
    start(r, keys, settings, run_id)
    pubsub = listen(r, keys.run(run_id))
    assert finish_run(r, keys, settings, run_id, 1, succeeded=False, steps=[]).status == "pending"
    r.hset(keys.run(run_id), "status", "queued")
    start(r, keys, settings, run_id)
    assert finish_run(r, keys, settings, run_id, 2, succeeded=False, steps=[]).status == "failed"
    assert announced(pubsub) == ["failed"]

    ok = queued_run(r, keys, task)
    start(r, keys, settings, ok)
    pubsub = listen(r, keys.run(ok))
    finish_run(r, keys, settings, ok, 1, succeeded=True, steps=[])
    assert announced(pubsub) == ["succeeded"]


def test_cancel_task_announces_the_runs_it_ends(
    r: redis.Redis, keys: Keys, settings: Settings
) -> None:
    store = TaskStore(r, keys, settings)
    task, _ = store.create(make_task(dedupe_key="k", dedupe_window_seconds=60))
    first = store.run_now(task.id, AGENT)
    # the second ends deduped as it is created (a waiter reads it terminal at once); the
    # first ends canceled with its task
    pubsub = listen(r, keys.run(first.id))
    second = store.run_now(task.id, AGENT)
    assert second.status == "deduped"
    store.cancel(task.id, AGENT)
    assert announced(pubsub) == ["canceled"]
