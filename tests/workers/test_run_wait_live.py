"""``GET /runs/{id}?wait=S`` against a real worker: the answer leaves as soon as the worker
records the end of the run, not at the deadline."""

import time
from typing import Any

import redis
from litestar.testing import TestClient

from app.api.app import create_app
from app.settings import Settings
from app.store.enqueue import enqueue_runs
from app.store.keys import Keys
from app.store.tasks import TaskStore
from tests.support.agents import AGENT
from tests.support.waiting import wait_for
from tests.support.workers import Workers
from tests.support.workers import worker_task as make_task

TOKEN = "token-of-the-wait-test"


def test_wait_answers_right_after_the_worker_ends_the_run(
    r: redis.Redis,
    redis_url: str,
    store: TaskStore,
    rq_client: redis.Redis,
    keys: Keys,
    workers: Workers,
) -> None:
    settings = Settings.from_env({"REDIS_URL": redis_url, "CHIME_AGENT_TOKENS": f"{AGENT}:{TOKEN}"})
    # the end of each run as this process hears it: the announcement the waiter sleeps on, on
    # this process's own clock like the answer (the worker's timestamps are on another clock)
    ended: dict[str, float] = {}
    pubsub = r.pubsub(ignore_subscribe_messages=True)
    prefix = keys.run("")
    pubsub.psubscribe(
        **{prefix + "*": lambda m: ended.setdefault(m["channel"][len(prefix) :], time.monotonic())}
    )
    listener = pubsub.run_in_thread(sleep_time=0.1, daemon=True)
    workers.start()
    task, _ = store.create(
        make_task([{"name": "nap", "action": "sleep", "params": {"seconds": 1.0}}])
    )
    latencies: list[float] = []
    try:
        with TestClient(create_app(settings)) as api:
            for _ in range(5):
                run = store.run_now(task.id, AGENT)
                enqueue_runs(rq_client, keys, [(run.id, run.priority)])
                started = time.monotonic()
                resp = api.get(
                    f"/runs/{run.id}",
                    params={"wait": 60},
                    headers={"Authorization": f"Bearer {TOKEN}"},
                )
                answered = time.monotonic()
                body: dict[str, Any] = resp.json()
                assert resp.status_code == 200
                assert body["status"] == "succeeded", body
                assert answered - started < 45
                heard = wait_for(lambda run_id=run.id: ended.get(run_id), 5, "the end announced")
                latencies.append(1000 * (answered - heard))
    finally:
        listener.stop()
        listener.join(5)
    # the answer follows the run's end by the time a message takes, not a poll interval
    print(f"wait answered {sorted(round(x) for x in latencies)} ms after the runs ended")
    assert sorted(latencies)[len(latencies) // 2] < 100, latencies
