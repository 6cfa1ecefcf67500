"""Task statuses: every transition between active, paused, canceled and completed, the 409s,
and the idempotent repeats."""

from datetime import UTC, datetime
from typing import Any

import pytest
import redis
from litestar.testing import TestClient

from app import clock
from app.store.keys import Keys
from tests.support.agents import A
from tests.support.api import create

USED_UP = "DTSTART:20200101T000000Z\nRRULE:FREQ=DAILY;COUNT=2"
CHANGES: list[tuple[str, str, dict[str, Any] | None]] = [
    ("put", "", {"title": "x"}),
    ("post", "/pause", None),
    ("post", "/resume", None),
    ("post", "/snooze", {"delay_seconds": 60}),
    ("post", "/run_now", None),
]


@pytest.fixture(autouse=True)
def _at_fixed_time() -> None:
    clock.shift(clock.to_ms(datetime(2026, 11, 28, 13, 37, tzinfo=UTC)) - clock.now_ms())


def post(api: TestClient[Any], task: dict[str, Any], action: str, **kw: Any) -> Any:
    return api.post(f"/tasks/{task['id']}/{action}", headers=A, **kw)


def statuses(api: TestClient[Any]) -> dict[str, int]:
    return {
        s: api.get(f"/tasks?status={s}", headers=A).json()["total"]
        for s in ("active", "paused", "canceled", "completed")
    }


def test_pause_and_resume(api: TestClient[Any], r: redis.Redis) -> None:
    task = create(api)
    due = Keys().due

    paused = post(api, task, "pause")
    assert paused.status_code == 200
    assert paused.json()["status"] == "paused" and paused.json()["next_run_at"] is None
    assert r.zscore(due, task["id"]) is None
    assert statuses(api) == {"active": 0, "paused": 1, "canceled": 0, "completed": 0}

    again = post(api, task, "pause")
    assert again.status_code == 200 and again.json() == paused.json()

    resumed = post(api, task, "resume")
    assert resumed.status_code == 200
    assert resumed.json()["status"] == "active"
    assert resumed.json()["next_run_at"] == "2026-11-28T14:00:00.000Z"
    assert r.zscore(due, task["id"]) is not None
    assert statuses(api) == {"active": 1, "paused": 0, "canceled": 0, "completed": 0}

    again = post(api, task, "resume")
    assert again.status_code == 200 and again.json() == resumed.json()


def test_resume_starts_from_now_without_catching_up(api: TestClient[Any]) -> None:
    task = create(api)
    post(api, task, "pause")
    clock.shift(3 * 3_600_000)  # 16:37: the 14:00, 15:00 and 16:00 occurrences were missed
    resumed = post(api, task, "resume").json()
    assert resumed["next_run_at"] == "2026-11-28T17:00:00.000Z"


def test_resume_of_a_paused_once_task_whose_time_passed_runs_it(api: TestClient[Any]) -> None:
    task = create(api, schedule_kind="once", schedule_expr="2026-11-28T14:00:00Z")
    post(api, task, "pause")
    clock.shift(3 * 3_600_000)
    assert post(api, task, "resume").json()["next_run_at"] == "2026-11-28T14:00:00.000Z"


@pytest.mark.parametrize("start", ["active", "paused", "completed"])
def test_cancel_from_every_status_and_again(
    api: TestClient[Any], r: redis.Redis, start: str
) -> None:
    task = create(
        api,
        **({"schedule_kind": "rrule", "schedule_expr": USED_UP} if start == "completed" else {}),
    )
    if start == "paused":
        post(api, task, "pause")
    assert api.get(f"/tasks/{task['id']}", headers=A).json()["status"] == start

    canceled = post(api, task, "cancel")
    assert canceled.status_code == 200
    assert canceled.json()["status"] == "canceled" and canceled.json()["next_run_at"] is None
    assert r.zscore(Keys().due, task["id"]) is None
    assert statuses(api) == {"active": 0, "paused": 0, "canceled": 1, "completed": 0}

    again = post(api, task, "cancel")
    assert again.status_code == 200 and again.json() == canceled.json()


@pytest.mark.parametrize(("method", "suffix", "body"), CHANGES)
def test_every_change_of_a_canceled_task_is_a_409(
    api: TestClient[Any], r: redis.Redis, method: str, suffix: str, body: dict[str, Any] | None
) -> None:
    task = create(api)
    post(api, task, "cancel")
    before = {k: r.dump(k) for k in r.keys("*")}
    resp = api.request(method, f"/tasks/{task['id']}{suffix}", headers=A, json=body)
    assert resp.status_code == 409, resp.text
    assert resp.json()["status_code"] == 409
    assert "canceled" in resp.json()["detail"]
    assert {k: r.dump(k) for k in r.keys("*")} == before


@pytest.mark.parametrize(
    ("method", "suffix", "body", "expected"),
    [
        ("post", "/pause", None, 409),
        ("post", "/resume", None, 409),
        ("post", "/snooze", {"delay_seconds": 60}, 409),
        ("post", "/run_now", None, 409),
    ],
)
def test_a_completed_task_takes_no_transition_but_cancel(
    api: TestClient[Any],
    r: redis.Redis,
    method: str,
    suffix: str,
    body: dict[str, Any] | None,
    expected: int,
) -> None:
    task = create(api, schedule_kind="rrule", schedule_expr=USED_UP)
    assert task["status"] == "completed"
    before = {k: r.dump(k) for k in r.keys("*")}
    resp = api.request(method, f"/tasks/{task['id']}{suffix}", headers=A, json=body)
    assert resp.status_code == expected, resp.text
    assert "completed" in resp.json()["detail"]
    assert {k: r.dump(k) for k in r.keys("*")} == before


def test_a_paused_task_can_run_now_and_be_snoozed(api: TestClient[Any]) -> None:
    task = create(api)
    post(api, task, "pause")
    run = post(api, task, "run_now")
    assert run.status_code == 202 and run.json()["status"] == "queued"
    before = clock.now_ms()
    snoozed = post(api, task, "snooze", json={"delay_seconds": 7200})
    assert snoozed.status_code == 200
    assert snoozed.json()["status"] == "paused"
    # no next run to move: the snooze counts from now
    until = snoozed.json()["snoozed_until"]
    assert clock.iso(before + 7_200_000) <= until <= clock.iso(clock.now_ms() + 7_200_000)
    # resuming inside the snooze waits for it
    assert post(api, task, "resume").json()["next_run_at"] == until


def test_cancel_ends_the_runs_that_had_not_started(api: TestClient[Any], r: redis.Redis) -> None:
    task = create(api)
    run = post(api, task, "run_now").json()
    assert r.lrange("rq:queue:chime-p5", 0, -1) == [run["id"]]
    post(api, task, "cancel")
    after = api.get(f"/runs/{run['id']}", headers=A).json()
    assert after["status"] == "canceled"
    assert after["finished_at"] is not None
    assert r.lrange("rq:queue:chime-p5", 0, -1) == []
