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
from tests.support.workers import Workers
from tests.support.workers import worker_task as make_task

TOKEN = "token-of-the-wait-test"


def test_wait_answers_right_after_the_worker_ends_the_run(
    redis_url: str, store: TaskStore, rq_client: redis.Redis, keys: Keys, workers: Workers
) -> None:
    settings = Settings.from_env({"REDIS_URL": redis_url, "CHIME_AGENT_TOKENS": f"{AGENT}:{TOKEN}"})
    workers.start()
    task, _ = store.create(
        make_task([{"name": "nap", "action": "sleep", "params": {"seconds": 1.0}}])
    )
    latencies: list[float] = []
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
            answered_ms = time.time() * 1000
            body: dict[str, Any] = resp.json()
            assert resp.status_code == 200
            assert body["status"] == "succeeded", body
            assert time.monotonic() - started < 45
            finished = store.r.hget(keys.run(run.id), "finished_at")
            latencies.append(answered_ms - int(str(finished)))
    # the answer follows the run's end by the time a message takes, not a poll interval
    print(f"wait answered {sorted(round(x) for x in latencies)} ms after the runs ended")
    assert sorted(latencies)[len(latencies) // 2] < 100, latencies
