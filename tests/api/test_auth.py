"""Bearer tokens: static, minted and admin; 401 with a challenge; ownership; admin-only routes."""

from typing import Any

import pytest
import redis
from litestar.testing import TestClient

from app.store.agents import create_agent
from app.store.keys import Keys
from tests.support.agents import ADMIN, AGENT_A, AGENT_B, A, B
from tests.support.api import create, task_body

TASK = "00000000-0000-4000-8000-000000000000"
PROTECTED = [
    ("post", "/tasks"),
    ("get", "/tasks"),
    ("get", f"/tasks/{TASK}"),
    ("put", f"/tasks/{TASK}"),
    ("post", f"/tasks/{TASK}/run_now"),
    ("post", f"/tasks/{TASK}/snooze"),
    ("post", f"/tasks/{TASK}/pause"),
    ("post", f"/tasks/{TASK}/resume"),
    ("post", f"/tasks/{TASK}/cancel"),
    ("get", f"/tasks/{TASK}/runs"),
    ("get", f"/runs/{TASK}"),
    ("post", "/events"),
    ("post", "/agents"),
    ("get", "/agents"),
    ("delete", f"/agents/{TASK}"),
]


@pytest.mark.parametrize(("method", "path"), PROTECTED)
@pytest.mark.parametrize(
    "headers",
    [
        {},
        {"Authorization": "Bearer nope"},
        {"Authorization": "Basic dXNlcjpwYXNz"},
        {"Authorization": "Bearer "},
        {"Authorization": "token-of-agent-a"},
    ],
)
def test_every_endpoint_needs_a_known_bearer_token(
    api: TestClient[Any], method: str, path: str, headers: dict[str, str]
) -> None:
    resp = api.request(method, path, headers=headers, json={})
    assert resp.status_code == 401, resp.text
    assert resp.headers["www-authenticate"] == "Bearer"
    assert resp.json()["status_code"] == 401


def test_health_metrics_and_schema_need_no_token(api: TestClient[Any]) -> None:
    assert api.get("/healthz").status_code == 200
    metrics = api.get("/metrics")
    assert metrics.status_code == 200
    assert "chime_tasks{" in metrics.text
    schema = api.get("/schema/openapi.json")
    assert schema.status_code == 200
    paths = schema.json()["paths"]
    for path in ("/tasks", "/tasks/{task_id}", "/tasks/{task_id}/run_now", "/runs/{run_id}"):
        assert path in paths


def test_the_scheme_is_case_insensitive(api: TestClient[Any]) -> None:
    assert (
        api.get("/tasks", headers={"Authorization": "bearer token-of-agent-a"}).status_code == 200
    )


def test_a_minted_token_works_until_revoked(api: TestClient[Any], r: redis.Redis) -> None:
    agent_id, token = create_agent(r, Keys(), "minted")
    headers = {"Authorization": f"Bearer {token}"}
    created = api.post("/tasks", json=task_body(created_by=agent_id), headers=headers)
    assert created.status_code == 201
    assert created.json()["created_by"] == agent_id

    assert api.delete(f"/agents/{agent_id}", headers=ADMIN).status_code == 204
    resp = api.get("/tasks", headers=headers)
    assert resp.status_code == 401
    assert resp.headers["www-authenticate"] == "Bearer"
    # the agent's tasks stay, for the admin to see
    assert api.get(f"/tasks/{created.json()['id']}", headers=ADMIN).status_code == 200


def test_created_by_must_be_the_callers_own_id(api: TestClient[Any]) -> None:
    resp = api.post("/tasks", json=task_body(created_by=AGENT_B), headers=A)
    assert resp.status_code == 403
    assert "created_by" in resp.json()["detail"]
    assert api.get("/tasks", headers=B).json()["total"] == 0


def test_the_admin_may_create_for_any_agent(api: TestClient[Any]) -> None:
    task = create(api, ADMIN, created_by=AGENT_B)
    assert task["created_by"] == AGENT_B
    assert api.get(f"/tasks/{task['id']}", headers=B).status_code == 200
    assert api.get(f"/tasks/{task['id']}", headers=A).status_code == 404


def test_another_agents_task_is_a_404_like_a_missing_one(api: TestClient[Any]) -> None:
    task = create(api, A)
    missing = "11111111-2222-4333-8444-555555555555"
    for method, suffix, body in [
        ("get", "", None),
        ("put", "", {"title": "mine now"}),
        ("post", "/run_now", None),
        ("post", "/snooze", {"delay_seconds": 60}),
        ("post", "/pause", None),
        ("post", "/resume", None),
        ("post", "/cancel", None),
        ("get", "/runs", None),
    ]:
        theirs = api.request(method, f"/tasks/{task['id']}{suffix}", headers=B, json=body)
        nobody = api.request(method, f"/tasks/{missing}{suffix}", headers=B, json=body)
        assert theirs.status_code == nobody.status_code == 404, (method, suffix)
        assert theirs.json()["detail"].replace(task["id"], "X") == nobody.json()["detail"].replace(
            missing, "X"
        )
    after = api.get(f"/tasks/{task['id']}", headers=A).json()
    assert after["status"] == "active" and after["title"] == task["title"]
    assert after["run_count"] == 0


def test_the_admin_sees_and_acts_on_every_agents_tasks(api: TestClient[Any]) -> None:
    a = create(api, A)
    b = create(api, B)
    page = api.get("/tasks", headers=ADMIN).json()
    assert {t["id"] for t in page["items"]} == {a["id"], b["id"]}
    assert api.post(f"/tasks/{b['id']}/pause", headers=ADMIN).json()["status"] == "paused"
    assert api.get(f"/tasks/{b['id']}", headers=B).json()["status"] == "paused"


def test_agents_endpoints_are_for_the_admin_only(api: TestClient[Any]) -> None:
    for headers in (A, B):
        assert api.post("/agents", json={"name": "x"}, headers=headers).status_code == 403
        assert api.get("/agents", headers=headers).status_code == 403
        assert api.delete(f"/agents/{AGENT_A}", headers=headers).status_code == 403


def test_admin_mints_lists_and_revokes_agents(api: TestClient[Any]) -> None:
    resp = api.post("/agents", json={"name": "billing"}, headers=ADMIN)
    assert resp.status_code == 201
    minted = resp.json()
    assert set(minted) == {"agent_id", "name", "token"}
    assert minted["name"] == "billing"
    listed = api.get("/agents", headers=ADMIN).json()["items"]
    assert [a["agent_id"] for a in listed] == [minted["agent_id"]]
    assert "token" not in listed[0]

    headers = {"Authorization": f"Bearer {minted['token']}"}
    assert api.get("/tasks", headers=headers).status_code == 200
    assert api.delete(f"/agents/{minted['agent_id']}", headers=ADMIN).status_code == 204
    assert api.get("/tasks", headers=headers).status_code == 401
    again = api.delete(f"/agents/{minted['agent_id']}", headers=ADMIN)
    assert again.status_code == 404


@pytest.mark.parametrize(
    ("body", "field"),
    [({}, "name"), ({"name": ""}, "name"), ({"name": "x" * 201}, "name"), ({"name": 5}, "name")],
)
def test_minting_refuses_a_bad_name(api: TestClient[Any], body: dict[str, Any], field: str) -> None:
    resp = api.post("/agents", json=body, headers=ADMIN)
    assert resp.status_code == 400
    assert field in resp.json()["detail"]


def test_static_agents_cannot_be_revoked_over_http(api: TestClient[Any]) -> None:
    assert api.delete(f"/agents/{AGENT_A}", headers=ADMIN).status_code == 404
    assert api.get("/tasks", headers=A).status_code == 200
