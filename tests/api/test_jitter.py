"""``jitter_seconds`` through the API and the scheduler's own passes: ``next_run_at`` shows the
jittered instant, nothing fires before it, the run is scheduled for the nominal occurrence, and
two schedulers make one run of it."""

from datetime import UTC, datetime
from typing import Any

import pytest
import redis
from litestar.testing import TestClient

from app import clock
from app.core.jitter import offset_ms
from app.settings import Settings
from tests.support.agents import A
from tests.support.api import assert_400, create
from workers.scheduler import Scheduler

T0 = datetime(2026, 11, 28, 13, 37, tzinfo=UTC)
HOUR = 3_600_000


@pytest.fixture(autouse=True)
def _at_fixed_time() -> None:
    clock.shift(clock.to_ms(T0) - clock.now_ms())


def ms(stamp: str) -> int:
    return clock.to_ms(datetime.fromisoformat(stamp.replace("Z", "+00:00")))


def runs_of(api: TestClient[Any], task: dict[str, Any]) -> list[dict[str, Any]]:
    items: list[dict[str, Any]] = api.get(f"/tasks/{task['id']}/runs", headers=A).json()["items"]
    return items


def pass_at(api_settings: Settings, r: redis.Redis, at_ms: int, schedulers: int = 1) -> None:
    clock.shift(at_ms - clock.now_ms())
    for _ in range(schedulers):
        Scheduler(api_settings, client=r).run_once()


def test_next_run_at_is_jittered_and_the_run_is_for_the_nominal_occurrence(
    api: TestClient[Any], r: redis.Redis, api_settings: Settings
) -> None:
    nominal = ms("2026-11-28T14:00:00Z")
    task = create(api, jitter_seconds=600)
    while offset_ms(task["id"], nominal, 600) < 6000:  # 1 in 100: too close to show anything
        task = create(api, jitter_seconds=600)
    fire = nominal + offset_ms(task["id"], nominal, 600)
    assert task["jitter_seconds"] == 600
    assert ms(task["next_run_at"]) == fire
    upcoming = api.get(f"/tasks/{task['id']}/upcoming", params={"count": 3}, headers=A).json()
    assert [ms(t) for t in upcoming["items"]] == [
        fire,
        nominal + HOUR + offset_ms(task["id"], nominal + HOUR, 600),
        nominal + 2 * HOUR + offset_ms(task["id"], nominal + 2 * HOUR, 600),
    ]

    pass_at(api_settings, r, fire - 1000)  # past the nominal time, before the jittered one
    assert runs_of(api, task) == []
    pass_at(api_settings, r, fire, schedulers=2)
    (run,) = runs_of(api, task)
    assert ms(run["scheduled_for"]) == nominal
    after = api.get(f"/tasks/{task['id']}", headers=A).json()
    assert [ms(after["next_run_at"])] == [ms(t) for t in upcoming["items"][1:2]]
    for stamp in upcoming["items"][1:]:
        pass_at(api_settings, r, ms(stamp), schedulers=2)
    assert sorted(ms(run["scheduled_for"]) for run in runs_of(api, task)) == [
        nominal,
        nominal + HOUR,
        nominal + 2 * HOUR,
    ]


def test_a_snoozed_occurrence_fires_exactly_then(
    api: TestClient[Any], r: redis.Redis, api_settings: Settings
) -> None:
    task = create(api, jitter_seconds=600)
    snoozed = api.post(
        f"/tasks/{task['id']}/snooze", json={"delay_seconds": 7200}, headers=A
    ).json()
    until = ms(snoozed["snoozed_until"])
    assert ms(snoozed["next_run_at"]) == until == ms(task["next_run_at"]) + 7200_000
    pass_at(api_settings, r, until)
    (run,) = runs_of(api, task)
    assert ms(run["scheduled_for"]) == until
    following = ms(api.get(f"/tasks/{task['id']}", headers=A).json()["next_run_at"])
    nominal = (until // HOUR + 1) * HOUR
    assert following == nominal + offset_ms(task["id"], nominal, 600)


def test_changing_jitter_places_the_next_occurrence_again(api: TestClient[Any]) -> None:
    task = create(api)
    assert task["next_run_at"] == "2026-11-28T14:00:00.000Z"
    changed = api.put(f"/tasks/{task['id']}", json={"jitter_seconds": 60}, headers=A).json()
    nominal = ms("2026-11-28T14:00:00Z")
    assert ms(changed["next_run_at"]) == nominal + offset_ms(task["id"], nominal, 60)
    back = api.put(f"/tasks/{task['id']}", json={"jitter_seconds": 0}, headers=A).json()
    assert back["next_run_at"] == "2026-11-28T14:00:00.000Z"
    paused = api.post(f"/tasks/{task['id']}/pause", headers=A).json()
    assert paused["next_run_at"] is None
    api.put(f"/tasks/{task['id']}", json={"jitter_seconds": 60}, headers=A)
    resumed = api.post(f"/tasks/{task['id']}/resume", headers=A).json()
    assert ms(resumed["next_run_at"]) == nominal + offset_ms(task["id"], nominal, 60)


@pytest.mark.parametrize("bad", [-1, 3601, 1.5, "60", None])
def test_jitter_bounds(api: TestClient[Any], bad: Any) -> None:
    resp = api.post(
        "/tasks",
        json={
            "title": "t",
            "description": "",
            "schedule_kind": "cron",
            "schedule_expr": "0 * * * *",
            "payload": {"steps": [{"name": "s", "action": "log", "params": {"message": "m"}}]},
            "created_by": "aaaaaaaa-0000-4000-8000-000000000001",
            "jitter_seconds": bad,
        },
        headers=A,
    )
    assert_400(resp, "jitter_seconds")
