"""``overlap_policy``, decided in the script that creates the run: what a new run does while an
earlier run of its task is still in progress (here: queued, as no worker runs)."""

from typing import Any

import pytest
import redis
from litestar.testing import TestClient

from tests.support.agents import A
from tests.support.api import assert_400, create


def run_now(api: TestClient[Any], task: dict[str, Any]) -> dict[str, Any]:
    resp = api.post(f"/tasks/{task['id']}/run_now", headers=A)
    assert resp.status_code == 202, resp.text
    run: dict[str, Any] = resp.json()
    return run


def status(api: TestClient[Any], run: dict[str, Any]) -> str:
    return str(api.get(f"/runs/{run['id']}", headers=A).json()["status"])


def queued_ids(r: redis.Redis) -> list[str]:
    return [x for p in range(1, 10) for x in r.lrange(f"rq:queue:chime-p{p}", 0, -1)]


def test_allow_runs_both(api: TestClient[Any]) -> None:
    task = create(api, schedule_kind="event", schedule_expr="e")
    assert task["overlap_policy"] == "allow"
    assert [run_now(api, task)["status"] for _ in range(3)] == ["queued"] * 3


def test_skip_ends_the_new_run_skipped_naming_the_run_in_progress(
    api: TestClient[Any], r: redis.Redis
) -> None:
    task = create(api, schedule_kind="event", schedule_expr="e", overlap_policy="skip")
    first = run_now(api, task)
    second = run_now(api, task)
    assert (first["status"], second["status"]) == ("queued", "skipped")
    assert second["error"] == f"skipped: run {first['id']} is in progress"
    assert second["finished_at"] is not None
    assert second["id"] not in queued_ids(r)
    # an event and a run_now are triggers like any other
    (third,) = api.post("/events", json={"name": "e"}, headers=A).json()["runs"]
    assert third["status"] == "skipped"
    api.post(f"/runs/{first['id']}/cancel", headers=A)
    assert run_now(api, task)["status"] == "queued"
    listed = api.get(f"/tasks/{task['id']}/runs", params={"status": "skipped"}, headers=A)
    assert listed.json()["total"] == 2


def test_buffer_one_waits_for_the_earlier_run_and_skips_a_third(
    api: TestClient[Any], r: redis.Redis
) -> None:
    task = create(api, schedule_kind="event", schedule_expr="e", overlap_policy="buffer_one")
    first, second, third = (run_now(api, task) for _ in range(3))
    assert (first["status"], second["status"], third["status"]) == ("queued", "pending", "skipped")
    assert third["error"] == f"skipped: run {first['id']} is in progress"
    assert second["id"] not in queued_ids(r)
    # the earlier run ends: the buffered one goes to RQ
    api.post(f"/runs/{first['id']}/cancel", headers=A)
    assert status(api, second) == "queued"
    assert second["id"] in queued_ids(r)
    fourth = run_now(api, task)
    assert fourth["status"] == "pending"
    # the buffered run canceled: the next one buffers again
    api.post(f"/runs/{fourth['id']}/cancel", headers=A)
    assert run_now(api, task)["status"] == "pending"


def test_cancel_running_cancels_the_earlier_run_and_starts_the_new_one(
    api: TestClient[Any], r: redis.Redis
) -> None:
    task = create(api, schedule_kind="event", schedule_expr="e", overlap_policy="cancel_running")
    first = run_now(api, task)
    second = run_now(api, task)
    assert second["status"] == "queued"
    ended = api.get(f"/runs/{first['id']}", headers=A).json()
    assert ended["status"] == "canceled"
    assert ended["error"] == f"canceled: replaced by run {second['id']}"
    assert second["id"] in queued_ids(r)


def test_a_policy_can_change_and_is_checked(api: TestClient[Any]) -> None:
    task = create(api, schedule_kind="event", schedule_expr="e")
    run_now(api, task)
    changed = api.put(f"/tasks/{task['id']}", json={"overlap_policy": "skip"}, headers=A)
    assert changed.json()["overlap_policy"] == "skip"
    assert run_now(api, task)["status"] == "skipped"


@pytest.mark.parametrize("bad", ["never", "", None, 1])
def test_bad_policies_are_400(api: TestClient[Any], bad: Any) -> None:
    task = create(api)
    resp = api.put(f"/tasks/{task['id']}", json={"overlap_policy": bad}, headers=A)
    assert_400(resp, "overlap_policy")
