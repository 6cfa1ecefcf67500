"""Event bounds over HTTP: ``data`` up to 64 KiB, and an event matching more than 1,000 tasks
refused whole with 409 (no run created), while another agent's events go on."""

import dataclasses
from collections.abc import Iterator
from typing import Any

import pytest
import redis
from litestar.testing import TestClient

from app.api.app import create_app
from app.core.task import Task
from app.settings import Settings
from app.store.keys import Keys
from app.store.tasks import TaskStore
from tests.support.agents import AGENT_A, AGENT_B, A, B
from tests.support.api import assert_400, create
from tests.support.records import LOG_PIPELINE
from tests.support.workers import worker_task as make_task


@pytest.fixture
def roomy_api(api_settings: Settings) -> Iterator[TestClient[Any]]:
    """The API with the default body limit (1 MiB), above the event data limit."""
    settings = dataclasses.replace(api_settings, max_body_bytes=1024 * 1024)
    with TestClient(create_app(settings)) as client:
        yield client


def test_event_data_over_64_kib_is_a_400_naming_data(roomy_api: TestClient[Any]) -> None:
    api = roomy_api
    create(api, schedule_kind="event", schedule_expr="big.*")
    resp = api.post("/events", json={"name": "big.one", "data": {"x": "a" * 66_000}}, headers=A)
    assert_400(resp, "data")
    resp = api.post("/events", json={"name": "big.one", "data": {"x": "a" * 65_000}}, headers=A)
    assert resp.status_code == 202, resp.text
    assert len(resp.json()["runs"]) == 1


def _event_tasks(store: TaskStore, agent: str, n: int, pattern: str) -> list[Task]:
    out = []
    for _ in range(n):
        task, _ = store.create(
            make_task(created_by=agent, schedule_kind="event", schedule_expr=pattern)
        )
        out.append(task)
    return out


def test_an_event_matching_over_1000_tasks_is_refused_whole(
    api: TestClient[Any], store: TaskStore, r: redis.Redis
) -> None:
    tasks = _event_tasks(store, AGENT_A, 1001, "fan.*")
    _event_tasks(store, AGENT_A, 5, "other")  # candidates that do not match do not count
    keys = Keys()
    resp = api.post("/events", json={"name": "fan.out"}, headers=A)
    assert resp.status_code == 409, resp.text
    body = resp.json()
    assert "1001" in body["detail"] and "1000" in body["detail"]
    assert all(r.zcard(keys.task_runs(t.id)) == 0 for t in tasks)
    assert r.zcard(keys.outbox) == 0
    # another agent's event is not held by it
    create(api, B, schedule_kind="event", schedule_expr="fan.*", created_by=AGENT_B)
    resp = api.post("/events", json={"name": "fan.out"}, headers=B)
    assert resp.status_code == 202 and len(resp.json()["runs"]) == 1
    # at 1000 it goes through
    assert api.post(f"/tasks/{tasks[0].id}/pause", headers=A).status_code == 200
    resp = api.post("/events", json={"name": "fan.out"}, headers=A)
    assert resp.status_code == 202, resp.text
    assert len(resp.json()["runs"]) == 1000
    assert LOG_PIPELINE  # the API's pipeline, for the tasks made over HTTP
