"""GET /tasks/{id} and PUT /tasks/{id}: only given fields change, validated as on create."""

from datetime import UTC, datetime
from typing import Any

import pytest
import redis
from litestar.testing import TestClient

from app import clock
from app.store.keys import Keys
from tests.support.agents import AGENT_A, AGENT_B, A, B
from tests.support.api import assert_400, create


def test_get_returns_the_task(api: TestClient[Any]) -> None:
    task = create(api)
    resp = api.get(f"/tasks/{task['id']}", headers=A)
    assert resp.status_code == 200
    assert resp.json() == task


@pytest.mark.parametrize(
    "task_id",
    ["nope", "12345", "00000000-0000-4000-8000-00000000000z", "x" * 300, "%7B%7D", "a:b"],
)
def test_a_malformed_or_unknown_id_is_a_404(api: TestClient[Any], task_id: str) -> None:
    for method, suffix in [("get", ""), ("post", "/pause"), ("get", "/runs")]:
        resp = api.request(method, f"/tasks/{task_id}{suffix}", headers=A)
        assert resp.status_code == 404, (task_id, suffix, resp.text)
        assert resp.json()["status_code"] == 404


def test_put_changes_only_the_given_fields(api: TestClient[Any]) -> None:
    task = create(api, dedupe_key="k", concurrency_key="c")
    clock.shift(5_000)
    resp = api.put(f"/tasks/{task['id']}", json={"title": "renamed", "priority": 2}, headers=A)
    assert resp.status_code == 200
    new = resp.json()
    assert new["title"] == "renamed" and new["priority"] == 2
    assert new["updated_at"] > task["updated_at"]
    for name in set(task) - {"title", "priority", "updated_at"}:
        assert new[name] == task[name], name
    assert api.get(f"/tasks/{task['id']}", headers=A).json() == new


def test_put_with_an_empty_body_changes_nothing_but_updated_at(api: TestClient[Any]) -> None:
    task = create(api)
    new = api.put(f"/tasks/{task['id']}", json={}, headers=A).json()
    assert {k: v for k, v in new.items() if k != "updated_at"} == {
        k: v for k, v in task.items() if k != "updated_at"
    }


def test_a_changed_schedule_recomputes_next_run_at(api: TestClient[Any], r: redis.Redis) -> None:
    clock.shift(clock.to_ms(datetime(2026, 11, 28, 13, 37, tzinfo=UTC)) - clock.now_ms())
    task = create(api)
    assert task["next_run_at"] == "2026-11-28T14:00:00.000Z"
    new = api.put(
        f"/tasks/{task['id']}",
        json={"schedule_expr": "0 9 * * *", "timezone": "Asia/Tokyo"},
        headers=A,
    ).json()
    assert new["next_run_at"] == "2026-11-29T00:00:00.000Z"
    assert r.zscore(Keys().due, task["id"]) == clock.to_ms(datetime(2026, 11, 29, tzinfo=UTC))

    event = api.put(
        f"/tasks/{task['id']}", json={"schedule_kind": "event", "schedule_expr": None}, headers=A
    ).json()
    assert event["schedule_kind"] == "event" and event["schedule_expr"] is None
    assert event["next_run_at"] is None and event["status"] == "active"
    assert r.zscore(Keys().due, task["id"]) is None


def test_a_new_schedule_reactivates_a_completed_task(api: TestClient[Any]) -> None:
    task = create(
        api,
        schedule_kind="rrule",
        schedule_expr="DTSTART:20200101T000000Z\nRRULE:FREQ=DAILY;COUNT=1",
    )
    assert task["status"] == "completed"
    new = api.put(
        f"/tasks/{task['id']}", json={"schedule_kind": "cron", "schedule_expr": "@daily"}, headers=A
    ).json()
    assert new["status"] == "active" and new["next_run_at"] is not None
    assert api.get("/tasks?status=completed", headers=A).json()["total"] == 0
    assert api.get("/tasks?status=active&schedule_kind=cron", headers=A).json()["total"] == 1


def test_null_clears_an_optional_field_and_its_dependents(api: TestClient[Any]) -> None:
    task = create(api, dedupe_key="k", dedupe_window_seconds=60, concurrency_key="c")
    new = api.put(
        f"/tasks/{task['id']}", json={"dedupe_key": None, "concurrency_key": None}, headers=A
    ).json()
    assert new["dedupe_key"] is None and new["dedupe_window_seconds"] is None
    assert new["concurrency_key"] is None
    again = api.put(f"/tasks/{task['id']}", json={"dedupe_key": "k2"}, headers=A).json()
    assert again["dedupe_window_seconds"] == 3600


def test_the_payload_is_validated_and_replaced_whole(api: TestClient[Any]) -> None:
    task = create(api)
    steps = [
        {"name": "a", "action": "log", "params": {"message": "one"}},
        {"name": "b", "action": "sleep", "params": {"seconds": 1}, "timeout_seconds": 5},
    ]
    new = api.put(f"/tasks/{task['id']}", json={"payload": {"steps": steps}}, headers=A).json()
    assert [s["name"] for s in new["payload"]["steps"]] == ["a", "b"]
    bad = {"steps": [{"name": "a", "action": "teleport", "params": {}}]}
    assert_400(
        api.put(f"/tasks/{task['id']}", json={"payload": bad}, headers=A),
        "payload.steps[0].action",
    )


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"title": None}, "title"),
        ({"title": ""}, "title"),
        ({"priority": 0}, "priority"),
        ({"priority": "1"}, "priority"),
        ({"schedule_kind": "hourly"}, "schedule_kind"),
        ({"schedule_expr": "not cron"}, "schedule_expr"),
        ({"schedule_expr": None}, "schedule_expr"),
        ({"schedule_kind": "once"}, "schedule_expr"),
        ({"timezone": "Nowhere/Land"}, "timezone"),
        ({"timezone": None}, "timezone"),
        ({"retry_delay_seconds": 7200}, "retry_max_delay_seconds"),
        ({"dedupe_window_seconds": 10}, "dedupe_window_seconds"),
        ({"created_by": AGENT_B}, "created_by"),
        ({"created_by": "someone"}, "created_by"),
        ({"id": "00000000-0000-4000-8000-000000000000"}, "id"),
        ({"status": "paused"}, "status"),
        ({"next_run_at": "2030-01-01T00:00:00Z"}, "next_run_at"),
    ],
)
def test_put_validates_against_the_merged_task(
    api: TestClient[Any], r: redis.Redis, body: dict[str, Any], field: str
) -> None:
    task = create(api)
    before = {k: r.dump(k) for k in r.keys("*")}
    assert_400(api.put(f"/tasks/{task['id']}", json=body, headers=A), field)
    assert {k: r.dump(k) for k in r.keys("*")} == before


def test_repeating_created_by_unchanged_is_fine(api: TestClient[Any]) -> None:
    task = create(api)
    resp = api.put(f"/tasks/{task['id']}", json={"created_by": AGENT_A, "title": "t"}, headers=A)
    assert resp.status_code == 200
    assert resp.json()["created_by"] == AGENT_A


def test_put_on_a_canceled_task_is_a_409(api: TestClient[Any]) -> None:
    task = create(api)
    api.post(f"/tasks/{task['id']}/cancel", headers=A)
    resp = api.put(f"/tasks/{task['id']}", json={"title": "too late"}, headers=A)
    assert resp.status_code == 409
    assert resp.json()["extra"] == {"status": "canceled"}
    assert api.get(f"/tasks/{task['id']}", headers=A).json()["title"] == task["title"]


def test_put_on_a_paused_task_keeps_it_paused_off_due(api: TestClient[Any], r: redis.Redis) -> None:
    task = create(api)
    api.post(f"/tasks/{task['id']}/pause", headers=A)
    new = api.put(f"/tasks/{task['id']}", json={"schedule_expr": "@daily"}, headers=A).json()
    assert new["status"] == "paused" and new["next_run_at"] is None
    assert r.zscore(Keys().due, task["id"]) is None
    resumed = api.post(f"/tasks/{task['id']}/resume", headers=A).json()
    assert resumed["next_run_at"].endswith("T00:00:00.000Z")


def test_put_of_another_agents_task_is_a_404(api: TestClient[Any]) -> None:
    task = create(api)
    assert api.put(f"/tasks/{task['id']}", json={"title": "x"}, headers=B).status_code == 404
