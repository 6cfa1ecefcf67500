"""run_now, GET /runs/{id}, GET /tasks/{id}/runs, POST /events."""

from typing import Any

import pytest
import redis
from litestar.testing import TestClient
from rq import Queue
from rq.job import Job

from app import clock
from app.store.enqueue import JOB_FUNC
from app.store.keys import Keys
from tests.support.agents import ADMIN, A, B
from tests.support.api import assert_400, create

RUN_FIELDS = {
    "id",
    "task_id",
    "status",
    "trigger",
    "scheduled_for",
    "enqueued_at",
    "started_at",
    "finished_at",
    "attempt",
    "max_attempts",
    "next_attempt_at",
    "error",
    "steps",
    "event",
    # the records of payload.on_failure steps (Pipelines: "recorded in on_failure_steps")
    "on_failure_steps",
}


@pytest.fixture
def rq_conn(redis_url: str) -> Any:
    conn = redis.Redis.from_url(redis_url)
    yield conn
    conn.close()


def run_now(api: TestClient[Any], task: dict[str, Any], headers: dict[str, str] = A) -> Any:
    return api.post(f"/tasks/{task['id']}/run_now", headers=headers)


def test_run_now_queues_a_run_on_its_priority_queue(api: TestClient[Any], rq_conn: Any) -> None:
    task = create(api, priority=2, max_retries=4)
    resp = run_now(api, task)
    assert resp.status_code == 202
    run = resp.json()
    assert set(run) == RUN_FIELDS
    assert run["task_id"] == task["id"]
    assert run["status"] == "queued" and run["trigger"] == "run_now"
    assert run["attempt"] == 1 and run["max_attempts"] == 5
    assert run["steps"] == [] and run["error"] is None and run["event"] is None
    assert run["scheduled_for"] == run["enqueued_at"]

    queue = Queue("chime-p2", connection=rq_conn)
    assert queue.job_ids == [run["id"]]
    job = Job.fetch(run["id"], connection=rq_conn)
    assert job.func_name == JOB_FUNC and job.args == (run["id"],)
    assert all(Queue(f"chime-p{p}", connection=rq_conn).count == 0 for p in (1, 3, 4, 5))
    # the run stays in the outbox, the ledger of queued runs, until a worker starts it
    assert rq_conn.zrange(Keys().outbox, 0, -1) == [run["id"].encode()]


def test_run_now_leaves_the_schedule_alone(api: TestClient[Any]) -> None:
    task = create(api)
    run_now(api, task)
    after = api.get(f"/tasks/{task['id']}", headers=A).json()
    assert after["next_run_at"] == task["next_run_at"]
    assert after["run_count"] == 1
    assert after["last_run_at"] is not None


def test_run_now_inside_the_dedupe_window_is_deduped(
    api: TestClient[Any], rq_conn: Any, r: redis.Redis
) -> None:
    task = create(api, dedupe_key="nightly", dedupe_window_seconds=600)
    first = run_now(api, task).json()
    second = run_now(api, task)
    assert second.status_code == 202
    assert second.json()["status"] == "deduped"
    assert first["id"] in second.json()["error"]
    assert Queue("chime-p5", connection=rq_conn).job_ids == [first["id"]]
    stats = r.hgetall(Keys().stats)
    assert stats["runs:queued:run_now"] == "1"
    assert stats["runs:deduped:run_now"] == "1"
    assert stats["dedupe_suppressed"] == "1"

    # the window is a Redis TTL (Redis's clock, not ours): check it, then let it lapse
    dedupe = Keys().dedupe(task["created_by"], "nightly")
    assert r.get(dedupe) == first["id"]
    assert 590_000 < r.pttl(dedupe) <= 600_000
    r.delete(dedupe)
    assert run_now(api, task).json()["status"] == "queued"


def test_get_run(api: TestClient[Any]) -> None:
    task = create(api)
    run = run_now(api, task).json()
    assert api.get(f"/runs/{run['id']}", headers=A).json() == run
    assert api.get(f"/runs/{run['id']}", headers=ADMIN).json() == run


@pytest.mark.parametrize("run_id", ["00000000-0000-4000-8000-000000000000", "x", "y" * 300])
def test_an_unknown_run_is_a_404(api: TestClient[Any], run_id: str) -> None:
    resp = api.get(f"/runs/{run_id}", headers=A)
    assert resp.status_code == 404
    assert resp.json()["status_code"] == 404


def test_another_agents_run_is_a_404(api: TestClient[Any]) -> None:
    run = run_now(api, create(api)).json()
    theirs = api.get(f"/runs/{run['id']}", headers=B)
    assert theirs.status_code == 404
    assert theirs.json()["detail"] == f"run {run['id']} not found"


def test_list_runs_newest_first_with_filters_and_paging(api: TestClient[Any]) -> None:
    task = create(api, dedupe_key="k")
    made = []
    for _ in range(4):
        clock.shift(10)
        made.append(run_now(api, task).json())
    statuses = [m["status"] for m in made]
    assert statuses == ["queued", "deduped", "deduped", "deduped"]
    newest_first = [m["id"] for m in reversed(made)]

    page = api.get(f"/tasks/{task['id']}/runs", headers=A).json()
    assert [r["id"] for r in page["items"]] == newest_first
    assert (page["total"], page["limit"], page["offset"]) == (4, 50, 0)

    page = api.get(f"/tasks/{task['id']}/runs?limit=2&offset=1", headers=A).json()
    assert [r["id"] for r in page["items"]] == newest_first[1:3]
    assert page["total"] == 4

    deduped = api.get(f"/tasks/{task['id']}/runs?status=deduped&limit=2", headers=A).json()
    assert [r["id"] for r in deduped["items"]] == newest_first[:2]
    assert deduped["total"] == 3
    deduped = api.get(f"/tasks/{task['id']}/runs?status=deduped&offset=2", headers=A).json()
    assert [r["id"] for r in deduped["items"]] == newest_first[2:3]

    queued = api.get(f"/tasks/{task['id']}/runs?status=queued", headers=A).json()
    assert [r["id"] for r in queued["items"]] == [made[0]["id"]]
    assert api.get(f"/tasks/{task['id']}/runs?status=failed", headers=A).json() == {
        "items": [],
        "total": 0,
        "limit": 50,
        "offset": 0,
    }


@pytest.mark.parametrize(
    ("query", "field"),
    [
        ("status=done", "status"),
        ("limit=0", "limit"),
        ("limit=501", "limit"),
        ("offset=-1", "offset"),
    ],
)
def test_list_runs_refuses_bad_query_values(api: TestClient[Any], query: str, field: str) -> None:
    task = create(api)
    assert_400(api.get(f"/tasks/{task['id']}/runs?{query}", headers=A), field)


def test_events_start_the_callers_matching_active_event_tasks(
    api: TestClient[Any], rq_conn: Any
) -> None:
    exact = create(api, schedule_kind="event", schedule_expr="invoice.paid", priority=3)
    glob = create(api, schedule_kind="event", schedule_expr="invoice.*")
    create(api, schedule_kind="event", schedule_expr="order.*")
    create(api, schedule_kind="event", schedule_expr=...)
    paused = create(api, schedule_kind="event", schedule_expr="invoice.*")
    api.post(f"/tasks/{paused['id']}/pause", headers=A)
    create(api, B, schedule_kind="event", schedule_expr="invoice.*")

    resp = api.post("/events", json={"name": "invoice.paid", "data": {"n": 1}}, headers=A)
    assert resp.status_code == 202
    body = resp.json()
    assert set(body) == {"event_id", "runs"}
    runs = {r["task_id"]: r for r in body["runs"]}
    assert set(runs) == {exact["id"], glob["id"]}
    for run in runs.values():
        assert set(run) == RUN_FIELDS
        assert run["trigger"] == "event" and run["status"] == "queued"
        assert run["event"] == {"id": body["event_id"], "name": "invoice.paid", "data": {"n": 1}}
    assert Queue("chime-p3", connection=rq_conn).job_ids == [runs[exact["id"]]["id"]]
    assert Queue("chime-p5", connection=rq_conn).job_ids == [runs[glob["id"]]["id"]]
    assert api.get(f"/runs/{runs[exact['id']]['id']}", headers=A).json()["trigger"] == "event"

    nothing = api.post("/events", json={"name": "shipment.sent"}, headers=A).json()
    assert nothing["runs"] == [] and nothing["event_id"]


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({}, "name"),
        ({"name": ""}, "name"),
        ({"name": "n" * 201}, "name"),
        ({"name": 5}, "name"),
        ({"name": "x", "data": [1]}, "data"),
        ({"name": "x", "data": "text"}, "data"),
        ({"name": "x", "extra": 1}, "extra"),
    ],
)
def test_bad_events_are_400(api: TestClient[Any], body: dict[str, Any], field: str) -> None:
    assert_400(api.post("/events", json=body, headers=A), field)


def test_the_admin_token_emits_no_events(api: TestClient[Any]) -> None:
    resp = api.post("/events", json={"name": "x"}, headers=ADMIN)
    assert resp.status_code == 403
