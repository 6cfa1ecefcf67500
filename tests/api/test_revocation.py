"""Revoking an agent stops its tasks as well as its token, for minted and static agents: tasks
paused with ``pause_reason: "agent revoked"``, pending and queued runs canceled and off RQ, no
further scheduled run; only the admin resumes; another agent's tasks go on."""

import dataclasses
from typing import Any

import redis
from litestar.testing import TestClient
from rq import Queue

from app import clock
from app.service.backend import Backend
from app.service.revocation import sync_static_agents
from app.settings import Settings
from app.store.connection import rq_client
from app.store.keys import Keys, queue_name
from app.store.limits import set_overrides
from tests.support.agents import ADMIN, AGENT_A, AGENT_B, B
from tests.support.api import task_body
from workers.scheduler import Scheduler

EVERY_SECOND = {"schedule_kind": "cron", "schedule_expr": "* * * * * *"}


def post_task(api: TestClient[Any], headers: dict[str, str], agent: str) -> dict[str, Any]:
    resp = api.post("/tasks", json=task_body(created_by=agent, **EVERY_SECOND), headers=headers)
    assert resp.status_code == 201, resp.text
    task: dict[str, Any] = resp.json()
    return task


def runs(api: TestClient[Any], task_id: str) -> list[dict[str, Any]]:
    items: list[dict[str, Any]] = api.get(f"/tasks/{task_id}/runs", headers=ADMIN).json()["items"]
    return items


def test_revoking_a_minted_agent_stops_its_tasks_and_only_the_admin_resumes(
    api: TestClient[Any], api_settings: Settings, r: redis.Redis
) -> None:
    made = api.post("/agents", json={"name": "looper"}, headers=ADMIN).json()
    agent, mine = made["agent_id"], {"Authorization": f"Bearer {made['token']}"}
    set_overrides(r, Keys(), agent, {"max_running": 2})
    task = post_task(api, mine, agent)
    paused_already = post_task(api, mine, agent)
    assert api.post(f"/tasks/{paused_already['id']}/pause", headers=mine).status_code == 200
    made_runs = [api.post(f"/tasks/{task['id']}/run_now", headers=mine).json() for _ in range(3)]
    assert [run["status"] for run in made_runs] == ["queued", "queued", "pending"]
    other = post_task(api, B, AGENT_B)
    rq = rq_client(api_settings.redis_url)
    assert len(Queue(queue_name(5), connection=rq).job_ids) == 2

    assert api.delete(f"/agents/{agent}", headers=ADMIN).status_code == 204
    assert api.get("/agents/me", headers=mine).status_code == 401
    for t in (task, paused_already):
        got = api.get(f"/tasks/{t['id']}", headers=ADMIN).json()
        assert (got["status"], got["pause_reason"], got["next_run_at"]) == (
            "paused",
            "agent revoked",
            None,
        )
    ended = runs(api, task["id"])
    assert {run["status"] for run in ended} == {"canceled"}
    assert all("revoked" in run["error"] for run in ended)
    assert Queue(queue_name(5), connection=rq).job_ids == []

    # the schedulers make no further run of it; the other agent's task goes on
    clock.shift(3000)
    Scheduler(api_settings, client=r, rq=rq).run_once()
    assert len(runs(api, task["id"])) == 3
    assert len(runs(api, other["id"])) == 1
    resp = api.post(f"/tasks/{task['id']}/resume", headers=ADMIN)
    assert resp.status_code == 200
    assert (resp.json()["status"], resp.json()["pause_reason"]) == ("active", None)
    rq.close()


def test_a_static_agent_taken_out_of_the_setting_is_revoked_at_the_web_s_start(
    api: TestClient[Any], api_settings: Settings, r: redis.Redis
) -> None:
    rq = rq_client(api_settings.redis_url)
    keys = Keys()
    assert sync_static_agents(Backend(r, rq, keys, api_settings)) == []
    task = post_task(api, B, AGENT_B)
    queued = api.post(f"/tasks/{task['id']}/run_now", headers=B).json()
    kept = api.post("/tasks", json=task_body(created_by=AGENT_A, **EVERY_SECOND), headers=ADMIN)
    # the next web process starts without agent B
    without_b = dataclasses.replace(
        api_settings,
        agent_tokens={t: a for t, a in api_settings.agent_tokens.items() if a == AGENT_A},
    )
    assert sync_static_agents(Backend(r, rq, keys, without_b)) == [AGENT_B]
    got = api.get(f"/tasks/{task['id']}", headers=ADMIN).json()
    assert (got["status"], got["pause_reason"]) == ("paused", "agent revoked")
    assert api.get(f"/runs/{queued['id']}", headers=ADMIN).json()["status"] == "canceled"
    assert api.get(f"/tasks/{kept.json()['id']}", headers=ADMIN).json()["status"] == "active"
    # put back in the setting, the agent still cannot resume what its revocation paused
    assert sync_static_agents(Backend(r, rq, keys, api_settings)) == []
    resp = api.post(f"/tasks/{task['id']}/resume", headers=B)
    assert resp.status_code == 403
    assert "admin" in resp.json()["detail"]
    assert api.post(f"/tasks/{task['id']}/resume", headers=ADMIN).status_code == 200
    rq.close()
