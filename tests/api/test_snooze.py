"""Snooze: the next occurrence moves by the delay, the ones before it are skipped, and the
schedule goes on as before. The scheduler's own pass fires the occurrences here."""

from datetime import UTC, datetime
from typing import Any

import pytest
import redis
from litestar.testing import TestClient

from app import clock
from app.settings import Settings
from tests.support.agents import A
from tests.support.api import assert_400, create
from workers.scheduler import Scheduler

T0 = datetime(2026, 11, 28, 13, 37, tzinfo=UTC)


@pytest.fixture(autouse=True)
def _at_fixed_time() -> None:
    clock.shift(clock.to_ms(T0) - clock.now_ms())


def move_to(stamp: str) -> None:
    target = clock.to_ms(datetime.fromisoformat(stamp.replace("Z", "+00:00")))
    clock.shift(target - clock.now_ms())


def fire(api_settings: Settings, r: redis.Redis, stamp: str) -> None:
    """Move the clock just past ``stamp`` and run one scheduler pass there."""
    move_to(stamp)
    clock.shift(500)
    Scheduler(api_settings, client=r).run_once()


def scheduled_runs(api: TestClient[Any], task: dict[str, Any]) -> list[str]:
    items = api.get(f"/tasks/{task['id']}/runs", headers=A).json()["items"]
    return sorted(run["scheduled_for"] for run in items)


def snooze(api: TestClient[Any], task: dict[str, Any], **body: Any) -> Any:
    return api.post(f"/tasks/{task['id']}/snooze", json=body, headers=A)


def test_snoozed_30_minutes_runs_then_goes_back_on_the_hour(
    api: TestClient[Any], r: redis.Redis, api_settings: Settings
) -> None:
    task = create(api)
    assert task["next_run_at"] == "2026-11-28T14:00:00.000Z"
    resp = snooze(api, task, delay_seconds=1800, reason="maintenance")
    assert resp.status_code == 200
    snoozed = resp.json()
    assert snoozed["next_run_at"] == snoozed["snoozed_until"] == "2026-11-28T14:30:00.000Z"
    assert snoozed["snooze_reason"] == "maintenance"
    assert snoozed["status"] == "active"

    fire(api_settings, r, "2026-11-28T14:00:00Z")
    assert scheduled_runs(api, task) == []

    fire(api_settings, r, "2026-11-28T14:30:00Z")
    after = api.get(f"/tasks/{task['id']}", headers=A).json()
    assert scheduled_runs(api, task) == ["2026-11-28T14:30:00.000Z"]
    assert after["next_run_at"] == "2026-11-28T15:00:00.000Z"
    assert after["snoozed_until"] is None

    fire(api_settings, r, "2026-11-28T15:00:00Z")
    assert scheduled_runs(api, task) == ["2026-11-28T14:30:00.000Z", "2026-11-28T15:00:00.000Z"]
    assert api.get(f"/tasks/{task['id']}", headers=A).json()["next_run_at"] == (
        "2026-11-28T16:00:00.000Z"
    )


def test_snoozed_2_hours_skips_the_occurrence_in_between(
    api: TestClient[Any], r: redis.Redis, api_settings: Settings
) -> None:
    task = create(api)
    snoozed = snooze(api, task, delay_seconds=7200).json()
    assert snoozed["next_run_at"] == "2026-11-28T16:00:00.000Z"
    assert snoozed["snooze_reason"] is None

    for stamp in ("2026-11-28T14:00:00Z", "2026-11-28T15:00:00Z"):
        fire(api_settings, r, stamp)
    assert scheduled_runs(api, task) == []

    fire(api_settings, r, "2026-11-28T16:00:00Z")
    assert scheduled_runs(api, task) == ["2026-11-28T16:00:00.000Z"]
    assert api.get(f"/tasks/{task['id']}", headers=A).json()["next_run_at"] == (
        "2026-11-28T17:00:00.000Z"
    )


def test_a_second_snooze_adds_to_the_first(api: TestClient[Any]) -> None:
    task = create(api)
    snooze(api, task, delay_seconds=1800, reason="first")
    again = snooze(api, task, delay_seconds=600).json()
    assert again["next_run_at"] == "2026-11-28T14:40:00.000Z"
    assert again["snooze_reason"] is None


def test_the_largest_delay_is_a_week(api: TestClient[Any]) -> None:
    task = create(api)
    resp = snooze(api, task, delay_seconds=604800)
    assert resp.status_code == 200
    assert resp.json()["next_run_at"] == "2026-12-05T14:00:00.000Z"


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"delay_seconds": 0}, "delay_seconds"),
        ({"delay_seconds": 604801}, "delay_seconds"),
        ({"delay_seconds": -5}, "delay_seconds"),
        ({"delay_seconds": 1.5}, "delay_seconds"),
        ({"delay_seconds": "60"}, "delay_seconds"),
        ({}, "delay_seconds"),
        ({"delay_seconds": 60, "reason": "r" * 501}, "reason"),
        ({"delay_seconds": 60, "reason": 5}, "reason"),
        ({"delay_seconds": 60, "until": "tomorrow"}, "until"),
    ],
)
def test_bad_snoozes_are_400_and_change_nothing(
    api: TestClient[Any], r: redis.Redis, body: dict[str, Any], field: str
) -> None:
    task = create(api)
    before = {k: r.dump(k) for k in r.keys("*")}
    assert_400(snooze(api, task, **body), field)
    assert {k: r.dump(k) for k in r.keys("*")} == before


def test_snoozing_another_agents_task_is_a_404(api: TestClient[Any]) -> None:
    task = create(api)
    resp = api.post(
        f"/tasks/{task['id']}/snooze",
        json={"delay_seconds": 60},
        headers={"Authorization": "Bearer token-of-agent-b"},
    )
    assert resp.status_code == 404


def test_event_runs_wait_for_the_snooze(api: TestClient[Any]) -> None:
    task = create(api, schedule_kind="event", schedule_expr="invoice.*")
    snoozed = snooze(api, task, delay_seconds=600).json()
    assert snoozed["next_run_at"] is None
    until = snoozed["snoozed_until"]
    assert until is not None

    emitted = api.post("/events", json={"name": "invoice.paid"}, headers=A).json()
    [run] = emitted["runs"]
    assert run["status"] == "pending"
    assert run["next_attempt_at"] == until
