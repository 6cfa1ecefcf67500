"""Helpers of the API tests: a valid POST body, creating a task, checking a 400."""

from typing import Any

from litestar.testing import TestClient

from tests.support.agents import AGENT_A, AGENT_B, A, B
from tests.support.records import LOG_PIPELINE


def task_body(**overrides: Any) -> dict[str, Any]:
    """A valid ``POST /tasks`` body: an hourly cron task of agent A; ``...`` drops a field."""
    body: dict[str, Any] = {
        "title": "hourly report",
        "description": "send the report",
        "schedule_kind": "cron",
        "schedule_expr": "0 * * * *",
        "payload": LOG_PIPELINE,
        "created_by": AGENT_A,
    }
    body.update(overrides)
    return {k: v for k, v in body.items() if v is not ...}


def create(api: TestClient[Any], headers: dict[str, str] = A, **overrides: Any) -> dict[str, Any]:
    """Create a task through the API; its JSON (asserts 201)."""
    if headers is B and "created_by" not in overrides:
        overrides["created_by"] = AGENT_B
    resp = api.post("/tasks", json=task_body(**overrides), headers=headers)
    assert resp.status_code == 201, resp.text
    task: dict[str, Any] = resp.json()
    return task


def assert_400(resp: Any, field: str) -> None:
    """A 400 whose detail and extra both name ``field``."""
    assert resp.status_code == 400, resp.text
    body = resp.json()
    assert body["status_code"] == 400
    assert field in body["detail"], body
    assert any(item.get("key") == field for item in body["extra"]), body
