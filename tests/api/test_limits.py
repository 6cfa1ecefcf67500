"""Per-agent limits over HTTP: ``GET /agents/me``, ``PUT /agents/{id}/limits``, ``max_tasks``
(429 naming it, checked in the create script) and ``min_interval_seconds`` (400 on create and
update), each with the other agent unaffected."""

from typing import Any

from litestar.testing import TestClient

from tests.support.agents import ADMIN, AGENT_A, A, B
from tests.support.api import assert_400, create, task_body


def set_limits(api: TestClient[Any], agent: str, **limits: Any) -> dict[str, Any]:
    resp = api.put(f"/agents/{agent}/limits", json=limits, headers=ADMIN)
    assert resp.status_code == 200, resp.text
    body: dict[str, Any] = resp.json()
    return body


def test_me_shows_the_default_limits_and_the_usage(api: TestClient[Any]) -> None:
    create(api)
    paused = create(api)
    assert api.post(f"/tasks/{paused['id']}/pause", headers=A).status_code == 200
    canceled = create(api)
    assert api.post(f"/tasks/{canceled['id']}/cancel", headers=A).status_code == 200
    resp = api.get("/agents/me", headers=A)
    assert resp.status_code == 200, resp.text
    body = resp.json()
    assert body["agent_id"] == AGENT_A
    assert body["name"] is None
    assert body["limits"] == {
        "max_tasks": 10_000,
        "max_running": 100,
        "max_runs_per_minute": 6_000,
        "min_interval_seconds": 1,
    }
    assert body["usage"] == {
        "tasks": 2,
        "active_tasks": 1,
        "running": 0,
        "in_flight": 0,
        "waiting": 0,
        "runs_last_minute": 0,
    }
    assert api.get("/agents/me", headers=B).json()["usage"]["tasks"] == 0


def test_me_is_for_agents_and_limits_for_the_admin(api: TestClient[Any]) -> None:
    assert api.get("/agents/me", headers=ADMIN).status_code == 403
    assert api.get("/agents/me").status_code == 401
    resp = api.put(f"/agents/{AGENT_A}/limits", json={"max_running": 1}, headers=A)
    assert resp.status_code == 403
    resp = api.put("/agents/not-an-agent/limits", json={"max_running": 1}, headers=ADMIN)
    assert resp.status_code == 404


def test_limit_overrides_are_checked_and_merge(api: TestClient[Any]) -> None:
    for body, field in (
        ({"max_running": 0}, "max_running"),
        ({"max_tasks": "5"}, "max_tasks"),
        ({"max_runs_per_minute": 1.5}, "max_runs_per_minute"),
        ({"min_interval_seconds": 86_401}, "min_interval_seconds"),
        ({"max_queued": 3}, "max_queued"),
    ):
        assert_400(api.put(f"/agents/{AGENT_A}/limits", json=body, headers=ADMIN), field)
    assert set_limits(api, AGENT_A, max_running=7)["limits"]["max_running"] == 7
    # naming none (or null) changes none
    assert set_limits(api, AGENT_A)["limits"]["max_running"] == 7
    assert set_limits(api, AGENT_A, max_running=None)["limits"]["max_running"] == 7
    out = set_limits(api, AGENT_A, max_tasks=3, max_running=None)
    assert out == {
        "agent_id": AGENT_A,
        "limits": {
            "max_tasks": 3,
            "max_running": 7,
            "max_runs_per_minute": 6_000,
            "min_interval_seconds": 1,
        },
    }
    assert api.get("/agents/me", headers=A).json()["limits"] == out["limits"]
    assert api.get("/agents/me", headers=B).json()["limits"]["max_running"] == 100


def test_max_tasks_is_a_429_naming_it_and_other_agents_still_create(
    api: TestClient[Any],
) -> None:
    set_limits(api, AGENT_A, max_tasks=2)
    first = create(api)
    second = create(api)
    assert api.post(f"/tasks/{second['id']}/pause", headers=A).status_code == 200
    resp = api.post("/tasks", json=task_body(), headers=A)
    assert resp.status_code == 429, resp.text
    body = resp.json()
    assert "max_tasks" in body["detail"]
    assert body["extra"] == {"limit": "max_tasks", "value": 2}
    # nothing of the refused task was kept
    assert api.get("/tasks", headers=A).json()["total"] == 2
    # the admin creating for the agent meets the same limit
    assert api.post("/tasks", json=task_body(), headers=ADMIN).status_code == 429
    create(api, B)
    # a canceled task no longer counts
    assert api.post(f"/tasks/{first['id']}/cancel", headers=A).status_code == 200
    create(api)


def test_max_tasks_holds_under_concurrent_creates(api: TestClient[Any]) -> None:
    from concurrent.futures import ThreadPoolExecutor

    set_limits(api, AGENT_A, max_tasks=5)
    with ThreadPoolExecutor(8) as pool:
        codes = list(
            pool.map(
                lambda _: api.post("/tasks", json=task_body(), headers=A).status_code, range(20)
            )
        )
    assert codes.count(201) == 5
    assert codes.count(429) == 15
    assert api.get("/tasks", headers=A).json()["total"] == 5


def test_min_interval_refuses_rules_firing_closer_on_create_and_update(
    api: TestClient[Any],
) -> None:
    set_limits(api, AGENT_A, min_interval_seconds=60)
    for kind, expr in (
        ("cron", "* * * * * */30"),
        ("cron", "0,30 * * * * *"),
        ("rrule", "RRULE:FREQ=SECONDLY;INTERVAL=10"),
        ("cron", "0 9 * * * 0,1"),
    ):
        resp = api.post("/tasks", json=task_body(schedule_kind=kind, schedule_expr=expr), headers=A)
        assert_400(resp, "schedule_expr")
        assert "min_interval_seconds of 60" in resp.json()["detail"]
    ok = create(api, schedule_kind="cron", schedule_expr="* * * * *")
    create(api, schedule_kind="rrule", schedule_expr="RRULE:FREQ=MINUTELY")
    resp = api.put(
        f"/tasks/{ok['id']}",
        json={"schedule_kind": "rrule", "schedule_expr": "RRULE:FREQ=SECONDLY"},
        headers=A,
    )
    assert_400(resp, "schedule_expr")
    assert api.get(f"/tasks/{ok['id']}", headers=A).json()["schedule_expr"] == "* * * * *"
    # the other agent keeps the default of 1 s
    create(api, B, schedule_kind="rrule", schedule_expr="RRULE:FREQ=SECONDLY")
