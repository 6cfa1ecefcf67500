"""POST /tasks: defaults, every bad input a 400 naming its field, 413, Idempotency-Key."""

from typing import Any

import pytest
import redis
from litestar.testing import TestClient

from app import clock
from app.store.keys import Keys
from tests.support.agents import ADMIN, AGENT_A, AGENT_B, A, B
from tests.support.api import assert_400, create, task_body

STEP = {"name": "s", "action": "log", "params": {"message": "m"}}


def test_create_returns_the_task_with_every_default(api: TestClient[Any]) -> None:
    before = clock.now_ms()
    resp = api.post("/tasks", json=task_body(), headers=A)
    assert resp.status_code == 201
    task = resp.json()
    assert resp.headers["location"] == f"/tasks/{task['id']}"
    assert task["title"] == "hourly report"
    assert task["created_by"] == AGENT_A
    assert task["status"] == "active"
    expected_defaults = {
        "timezone": "UTC",
        "priority": 5,
        "max_retries": 3,
        "backoff_strategy": "exponential_jitter",
        "dedupe_key": None,
        "dedupe_window_seconds": None,
        "concurrency_key": None,
        "concurrency_limit": 1,
        "retry_delay_seconds": 10,
        "retry_max_delay_seconds": 3600,
        "misfire_policy": "run_once",
        "overlap_policy": "allow",
        "jitter_seconds": 0,
        "last_run_at": None,
        "snoozed_until": None,
        "snooze_reason": None,
        "pause_reason": None,
        "run_count": 0,
    }
    for name, value in expected_defaults.items():
        assert task[name] == value, name
    assert task["payload"]["steps"][0]["timeout_seconds"] == 30
    assert task["created_at"] == task["updated_at"]
    assert task["created_at"].endswith("Z") and task["next_run_at"].endswith("Z")
    # the next full hour after creation
    next_ms = clock.to_ms(_parse(task["next_run_at"]))
    assert next_ms % 3_600_000 == 0 and before < next_ms <= before + 3_600_000
    assert set(task) == {
        *task_body(),
        *expected_defaults,
        "id",
        "status",
        "next_run_at",
        "created_at",
        "updated_at",
    }


def test_created_task_is_in_due_at_its_next_run(api: TestClient[Any], r: redis.Redis) -> None:
    task = create(api)
    assert r.zscore(Keys().due, task["id"]) == clock.to_ms(_parse(task["next_run_at"]))


def test_every_field_given_is_kept(api: TestClient[Any]) -> None:
    body = task_body(
        timezone="Europe/Paris",
        priority=1,
        max_retries=25,
        backoff_strategy="linear",
        dedupe_key="report",
        dedupe_window_seconds=604800,
        concurrency_key="mailer",
        concurrency_limit=1000,
        retry_delay_seconds=0.5,
        retry_max_delay_seconds=1.5,
        misfire_policy="run_all",
    )
    task = api.post("/tasks", json=body, headers=A).json()
    for name, value in body.items():
        if name != "payload":
            assert task[name] == value, name


def test_a_dedupe_key_gets_the_default_window(api: TestClient[Any]) -> None:
    assert create(api, dedupe_key="k")["dedupe_window_seconds"] == 3600


BAD_BODIES = [
    ({"title": ...}, "title"),
    ({"title": ""}, "title"),
    ({"title": "x" * 201}, "title"),
    ({"title": 7}, "title"),
    ({"description": ...}, "description"),
    ({"description": "x" * 10_001}, "description"),
    ({"schedule_kind": ...}, "schedule_kind"),
    ({"schedule_kind": "weekly"}, "schedule_kind"),
    ({"schedule_expr": ...}, "schedule_expr"),
    ({"schedule_expr": None}, "schedule_expr"),
    ({"schedule_expr": 5}, "schedule_expr"),
    ({"timezone": "Mars/Olympus"}, "timezone"),
    ({"timezone": ""}, "timezone"),
    ({"payload": ...}, "payload"),
    ({"payload": []}, "payload"),
    ({"payload": {"steps": []}}, "payload.steps"),
    ({"payload": {"steps": [{**STEP, "action": "rm -rf"}]}}, "payload.steps[0].action"),
    ({"payload": {"steps": [STEP, STEP]}}, "payload.steps[1].name"),
    ({"payload": {"steps": [{**STEP, "params": {"nope": 1}}]}}, "payload.steps[0].params.nope"),
    ({"created_by": ...}, "created_by"),
    ({"created_by": "not-a-uuid"}, "created_by"),
    ({"priority": 0}, "priority"),
    ({"priority": 10}, "priority"),
    ({"priority": "5"}, "priority"),
    ({"priority": 5.5}, "priority"),
    ({"priority": True}, "priority"),
    ({"max_retries": -1}, "max_retries"),
    ({"max_retries": 26}, "max_retries"),
    ({"backoff_strategy": "random"}, "backoff_strategy"),
    ({"dedupe_key": ""}, "dedupe_key"),
    ({"dedupe_key": "k" * 201}, "dedupe_key"),
    ({"dedupe_key": "k", "dedupe_window_seconds": 0}, "dedupe_window_seconds"),
    ({"dedupe_key": "k", "dedupe_window_seconds": 604801}, "dedupe_window_seconds"),
    ({"dedupe_window_seconds": 60}, "dedupe_window_seconds"),
    ({"concurrency_key": "c" * 201}, "concurrency_key"),
    ({"concurrency_limit": 0}, "concurrency_limit"),
    ({"concurrency_limit": 1001}, "concurrency_limit"),
    ({"retry_delay_seconds": -1}, "retry_delay_seconds"),
    ({"retry_delay_seconds": 86401}, "retry_delay_seconds"),
    ({"retry_delay_seconds": "10"}, "retry_delay_seconds"),
    ({"retry_delay_seconds": 20, "retry_max_delay_seconds": 10}, "retry_max_delay_seconds"),
    ({"retry_max_delay_seconds": 604801}, "retry_max_delay_seconds"),
    ({"misfire_policy": "sometimes"}, "misfire_policy"),
    ({"surprise": 1}, "surprise"),
]


@pytest.mark.parametrize(("overrides", "field"), BAD_BODIES)
def test_bad_input_is_a_400_naming_the_field(
    api: TestClient[Any], r: redis.Redis, overrides: dict[str, Any], field: str
) -> None:
    resp = api.post("/tasks", json=task_body(**overrides), headers=A)
    assert_400(resp, field)
    assert r.dbsize() == 0


@pytest.mark.parametrize(
    "content",
    [
        b"{not json",
        b"",
        b"[]",
        b'"a string"',
        b"null",
        b'{"title": "x",}',
        b"\xff\xfe",
        b'{"retry_delay_seconds": 1e400}',
        b'{"title": "\\ud800"}',
        b"[" * 5000 + b"]" * 5000,
        b'{"payload": ' + b"[" * 5000 + b"]" * 5000 + b"}",
    ],
)
def test_a_body_that_is_not_a_json_object_is_a_400(api: TestClient[Any], content: bytes) -> None:
    resp = api.post("/tasks", content=content, headers={**A, "Content-Type": "application/json"})
    assert_400(resp, "body")


def test_a_body_over_the_limit_is_a_413(api: TestClient[Any], r: redis.Redis) -> None:
    body = task_body(description="x" * 70_000)  # CHIME_MAX_BODY_BYTES is 64 KiB here
    resp = api.post("/tasks", json=body, headers=A)
    assert resp.status_code == 413
    assert resp.json()["status_code"] == 413
    assert r.dbsize() == 0
    # just under the limit is judged on its content instead
    assert_400(
        api.post("/tasks", json=task_body(description="x" * 60_000), headers=A), "description"
    )


def test_idempotency_key_returns_the_first_task(api: TestClient[Any]) -> None:
    headers = {**A, "Idempotency-Key": "create-report-1"}
    first = api.post("/tasks", json=task_body(), headers=headers)
    assert first.status_code == 201
    again = api.post("/tasks", json=task_body(title="changed"), headers=headers)
    assert again.status_code == 200
    assert again.json() == first.json()
    assert api.get("/tasks", headers=A).json()["total"] == 1

    other_key = api.post("/tasks", json=task_body(), headers={**A, "Idempotency-Key": "k2"})
    assert other_key.status_code == 201
    assert other_key.json()["id"] != first.json()["id"]


def test_idempotency_keys_are_per_agent(api: TestClient[Any]) -> None:
    a = api.post("/tasks", json=task_body(), headers={**A, "Idempotency-Key": "same"})
    b = api.post(
        "/tasks", json=task_body(created_by=AGENT_B), headers={**B, "Idempotency-Key": "same"}
    )
    assert a.status_code == b.status_code == 201
    assert a.json()["id"] != b.json()["id"]
    assert b.json()["created_by"] == AGENT_B


def test_idempotency_key_lasts_24_hours(api: TestClient[Any], r: redis.Redis) -> None:
    api.post("/tasks", json=task_body(), headers={**A, "Idempotency-Key": "day"})
    ttl = r.pttl(Keys().idempotency(AGENT_A, "day"))
    assert 24 * 3600 * 1000 - 60_000 < ttl <= 24 * 3600 * 1000


def test_admin_idempotency_is_scoped_to_the_tasks_agent(api: TestClient[Any]) -> None:
    headers = {**ADMIN, "Idempotency-Key": "k"}
    first = api.post("/tasks", json=task_body(created_by=AGENT_B), headers=headers)
    repeat = api.post(
        "/tasks", json=task_body(created_by=AGENT_B), headers={**B, "Idempotency-Key": "k"}
    )
    assert (first.status_code, repeat.status_code) == (201, 200)
    assert repeat.json()["id"] == first.json()["id"]


@pytest.mark.parametrize("key", ["", "k" * 201])
def test_a_bad_idempotency_key_is_a_400(api: TestClient[Any], key: str) -> None:
    resp = api.post("/tasks", json=task_body(), headers={**A, "Idempotency-Key": key})
    assert resp.status_code == 400
    assert "Idempotency-Key" in resp.text


def test_an_invalid_body_with_a_seen_key_is_still_a_400(api: TestClient[Any]) -> None:
    headers = {**A, "Idempotency-Key": "k"}
    assert api.post("/tasks", json=task_body(), headers=headers).status_code == 201
    assert_400(api.post("/tasks", json=task_body(priority=0), headers=headers), "priority")


def _parse(stamp: str) -> Any:
    from datetime import datetime

    return datetime.fromisoformat(stamp.replace("Z", "+00:00"))
