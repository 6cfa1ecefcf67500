"""API test fixtures: an app on the session's Redis with two static agents and an admin token.

``api`` is a TestClient without credentials; ``as_a``/``as_b``/``as_admin`` are the headers of
each caller. ``task_body`` builds a valid POST body (an hourly cron task of agent A by default).
"""

from collections.abc import Iterator
from typing import Any

import pytest
import redis
from litestar.testing import TestClient

from app.api.app import create_app
from app.settings import Settings
from app.store.keys import Keys
from app.store.tasks import TaskStore

AGENT_A = "aaaaaaaa-0000-4000-8000-000000000001"
AGENT_B = "bbbbbbbb-0000-4000-8000-000000000002"
TOKEN_A = "token-of-agent-a"
TOKEN_B = "token-of-agent-b"
ADMIN_TOKEN = "the-admin-token-of-tests"
SECRET_KEY = "the-secret-key-of-tests-0123456789abcdef"
A = {"Authorization": f"Bearer {TOKEN_A}"}
B = {"Authorization": f"Bearer {TOKEN_B}"}
ADMIN = {"Authorization": f"Bearer {ADMIN_TOKEN}"}
LOG_PIPELINE = {"steps": [{"name": "hello", "action": "log", "params": {"message": "hi"}}]}


@pytest.fixture
def api_settings(redis_url: str) -> Settings:
    return Settings.from_env(
        {
            "REDIS_URL": redis_url,
            "CHIME_AGENT_TOKENS": f"{AGENT_A}:{TOKEN_A},{AGENT_B}:{TOKEN_B}",
            "CHIME_ADMIN_TOKEN": ADMIN_TOKEN,
            "CHIME_MAX_BODY_BYTES": "65536",
        }
    )


@pytest.fixture
def api(api_settings: Settings) -> Iterator[TestClient[Any]]:
    with TestClient(create_app(api_settings)) as client:
        yield client


@pytest.fixture
def store(r: redis.Redis, api_settings: Settings) -> TaskStore:
    return TaskStore(r, Keys(api_settings.key_prefix), api_settings)


def task_body(**overrides: Any) -> dict[str, Any]:
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
