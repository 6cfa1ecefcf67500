"""``POST /runs/{id}/cancel`` against real workers: a running run's request in flight is cut,
the run ends ``canceled`` and is not retried, and a worker that dies while stopping it does
not bring it back."""

import signal
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
from tests.support.waiting import wait_for as wait_until
from tests.support.workers import Workers, status_of
from tests.support.workers import worker_task as make_task
from tests.workers.sink import AsyncSink

TOKEN = "token-of-the-cancel-test"
AUTH = {"Authorization": f"Bearer {TOKEN}"}


def hang(sink: AsyncSink) -> list[dict[str, Any]]:
    return [
        {
            "name": "call",
            "action": "http.request",
            "params": {"url": f"{sink.url}/hang/{{{{ run.id }}}}"},
            "timeout_seconds": 300,
        },
        {"name": "after", "action": "log", "params": {"message": "never"}},
    ]


def api_for(redis_url: str) -> TestClient[Any]:
    settings = Settings.from_env({"REDIS_URL": redis_url, "CHIME_AGENT_TOKENS": f"{AGENT}:{TOKEN}"})
    return TestClient(create_app(settings))


def start_hanging_run(
    store: TaskStore, rq: redis.Redis, keys: Keys, sink: AsyncSink, r: redis.Redis
) -> str:
    task, _ = store.create(make_task(hang(sink), max_retries=3))
    run = store.run_now(task.id, AGENT)
    enqueue_runs(rq, keys, [(run.id, run.priority)])
    wait_until(lambda: run.id in sink.record.arrivals, timeout=30, what="the request in flight")
    assert status_of(r, keys, run.id) == "running"
    return run.id


def test_cancel_cuts_the_request_in_flight_and_ends_the_run_canceled(
    redis_url: str,
    store: TaskStore,
    rq_client: redis.Redis,
    keys: Keys,
    workers: Workers,
    sink: AsyncSink,
    r: redis.Redis,
) -> None:
    workers.start()
    run_id = start_hanging_run(store, rq_client, keys, sink, r)
    with api_for(redis_url) as api:
        resp = api.post(f"/runs/{run_id}/cancel", headers=AUTH)
        assert resp.status_code == 200, resp.text
        started = time.monotonic()
        ended = api.get(f"/runs/{run_id}", params={"wait": 30}, headers=AUTH).json()
        took = time.monotonic() - started
        assert ended["status"] == "canceled", ended
        assert took < 20
        wait_until(lambda: run_id in sink.record.disconnected, what="the sink to see the close")
        assert [s["status"] for s in ended["steps"]] == ["failed", "skipped"]
        assert "canceled" in ended["steps"][0]["error"]
        assert ended["attempt"] == 1 and ended["next_attempt_at"] is None
        assert r.zscore(keys.delayed, run_id) is None
        assert r.zscore(keys.running, run_id) is None
        again = api.post(f"/runs/{run_id}/cancel", headers=AUTH)
        assert again.status_code == 409
        assert again.json()["extra"] == {"status": "canceled"}
    time.sleep(1)
    assert sink.record.arrivals.count(run_id) == 1  # not retried
    assert status_of(r, keys, run_id) == "canceled"


def test_a_worker_killed_while_stopping_a_run_does_not_bring_it_back(
    redis_url: str,
    store: TaskStore,
    rq_client: redis.Redis,
    keys: Keys,
    workers: Workers,
    sink: AsyncSink,
    r: redis.Redis,
) -> None:
    doomed = workers.start(CHIME_SEMAPHORE_LEASE_SECONDS="2")
    run_id = start_hanging_run(store, rq_client, keys, sink, r)
    # the worker is frozen: it can neither hear the cancel nor record anything
    doomed.send_signal(signal.SIGSTOP)
    with api_for(redis_url) as api:
        assert api.post(f"/runs/{run_id}/cancel", headers=AUTH).status_code == 200
        assert status_of(r, keys, run_id) == "running"
        doomed.send_signal(signal.SIGKILL)
        doomed.wait(10)
        # another worker recovers the lapsed attempt: canceled, not retried
        workers.start(CHIME_SEMAPHORE_LEASE_SECONDS="2")
        ended = api.get(f"/runs/{run_id}", params={"wait": 60}, headers=AUTH).json()
        assert ended["status"] == "canceled", ended
        assert ended["attempt"] == 1
    time.sleep(2)
    assert status_of(r, keys, run_id) == "canceled"
    assert sink.record.arrivals.count(run_id) == 1  # not retried
