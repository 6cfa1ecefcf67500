"""``POST /runs/{id}/cancel`` for runs that have not started, and the cancel_run script's
refusals: a pending or queued run ends ``canceled`` at once and leaves RQ and every waiting
set; a terminal run is a 409 that changes nothing."""

from typing import Any

import redis
from litestar.testing import TestClient
from rq.job import Job

from app.settings import Settings
from app.store.keys import Keys
from tests.support.agents import A, B
from tests.support.api import create


def snapshot(r: redis.Redis) -> dict[Any, Any]:
    """Every key and its serialized value (RQ's binary job hashes included)."""
    raw = redis.Redis(
        connection_pool=redis.ConnectionPool(
            **r.connection_pool.connection_kwargs | {"decode_responses": False}
        )
    )
    try:
        return {key: raw.dump(key) for key in sorted(raw.keys("*"))}
    finally:
        raw.close()


def run_now(api: TestClient[Any], task: dict[str, Any]) -> dict[str, Any]:
    resp = api.post(f"/tasks/{task['id']}/run_now", headers=A)
    assert resp.status_code == 202, resp.text
    run: dict[str, Any] = resp.json()
    return run


def queued_ids(r: redis.Redis) -> list[str]:
    return [x for p in range(1, 10) for x in r.lrange(f"rq:queue:chime-p{p}", 0, -1)]


def test_a_queued_run_is_canceled_at_once_and_leaves_rq(
    api: TestClient[Any], r: redis.Redis, api_settings: Settings
) -> None:
    keys = Keys(api_settings.key_prefix)
    task = create(api)
    run = run_now(api, task)
    assert run["id"] in queued_ids(r)
    resp = api.post(f"/runs/{run['id']}/cancel", headers=A)
    assert resp.status_code == 200, resp.text
    body = resp.json()
    assert body["status"] == "canceled" and body["finished_at"] is not None
    assert body["error"] == "canceled"
    assert run["id"] not in queued_ids(r)
    assert not r.exists(Job.key_for(run["id"]))
    assert r.zscore(keys.outbox, run["id"]) is None
    # the task goes on
    assert api.get(f"/tasks/{task['id']}", headers=A).json()["status"] == "active"


def test_a_pending_run_waiting_for_a_snooze_is_canceled(
    api: TestClient[Any], r: redis.Redis, api_settings: Settings
) -> None:
    keys = Keys(api_settings.key_prefix)
    task = create(api, schedule_kind="event", schedule_expr="go")
    api.post(f"/tasks/{task['id']}/snooze", json={"delay_seconds": 3600}, headers=A)
    (run,) = api.post("/events", json={"name": "go"}, headers=A).json()["runs"]
    assert run["status"] == "pending"
    assert r.zscore(keys.delayed, run["id"]) is not None
    body = api.post(f"/runs/{run['id']}/cancel", headers=A).json()
    assert body["status"] == "canceled" and body["next_attempt_at"] is None
    assert r.zscore(keys.delayed, run["id"]) is None


def test_a_run_waiting_for_a_concurrency_slot_leaves_the_line(
    api: TestClient[Any], r: redis.Redis, api_settings: Settings
) -> None:
    """A run parked in the FIFO of its key is canceled and dropped from it; one handed a slot
    (queued, not started) gives the slot to the next in line."""
    keys = Keys(api_settings.key_prefix)
    task = create(api, concurrency_key="k", concurrency_limit=1)
    first, second, third = (run_now(api, task) for _ in range(3))
    sem, fifo = (
        keys.semaphore(task["created_by"], "k"),
        keys.semaphore_queue(task["created_by"], "k"),
    )
    # as a worker would leave them: the first holds the slot, handed over and not yet started;
    # the other two wait in line
    r.zadd(sem, {first["id"]: 10**15})
    for run in (second, third):
        r.hset(keys.run(run["id"]), "status", "pending")
        r.rpush(fifo, run["id"])
    api.post(f"/runs/{second['id']}/cancel", headers=A)
    assert r.lrange(fifo, 0, -1) == [third["id"]]
    api.post(f"/runs/{first['id']}/cancel", headers=A)
    assert r.zrange(sem, 0, -1) == [third["id"]]
    assert api.get(f"/runs/{third['id']}", headers=A).json()["status"] == "queued"
    assert third["id"] in queued_ids(r)


def test_a_terminal_run_is_a_409_that_changes_nothing(api: TestClient[Any], r: redis.Redis) -> None:
    task = create(api)
    run = run_now(api, task)
    api.post(f"/runs/{run['id']}/cancel", headers=A)
    before = snapshot(r)
    resp = api.post(f"/runs/{run['id']}/cancel", headers=A)
    assert resp.status_code == 409
    assert resp.json()["extra"] == {"status": "canceled"}
    assert "run" in resp.json()["detail"]
    assert snapshot(r) == before


def test_another_agent_s_run_is_a_404(api: TestClient[Any], r: redis.Redis) -> None:
    run = run_now(api, create(api))
    before = snapshot(r)
    assert api.post(f"/runs/{run['id']}/cancel", headers=B).status_code == 404
    assert api.post("/runs/nope/cancel", headers=A).status_code == 404
    assert snapshot(r) == before
