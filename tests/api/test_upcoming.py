"""``GET /tasks/{id}/upcoming`` and ``POST /schedules/preview``: what they show is what the
scheduler fires (its own pass fires the occurrences here), and a bad schedule is refused exactly
as ``POST /tasks`` refuses it."""

from datetime import UTC, datetime
from typing import Any

import pytest
import redis
from litestar.testing import TestClient

from app import clock
from app.settings import Settings
from tests.support.agents import A, B
from tests.support.api import assert_400, create, task_body
from workers.scheduler import Scheduler

T0 = datetime(2026, 11, 28, 13, 37, tzinfo=UTC)


@pytest.fixture(autouse=True)
def _at_fixed_time() -> None:
    clock.shift(clock.to_ms(T0) - clock.now_ms())


def fire(api_settings: Settings, r: redis.Redis, stamp: str) -> None:
    """Move the clock just past ``stamp`` and run one scheduler pass there."""
    target = clock.to_ms(datetime.fromisoformat(stamp.replace("Z", "+00:00")))
    clock.shift(target + 500 - clock.now_ms())
    Scheduler(api_settings, client=r).run_once()


def upcoming(api: TestClient[Any], task: dict[str, Any], count: int = 10) -> list[str]:
    resp = api.get(f"/tasks/{task['id']}/upcoming", params={"count": count}, headers=A)
    assert resp.status_code == 200, resp.text
    items: list[str] = resp.json()["items"]
    return items


def fired(api: TestClient[Any], task: dict[str, Any]) -> list[str]:
    items = api.get(f"/tasks/{task['id']}/runs", headers=A).json()["items"]
    return sorted(run["scheduled_for"] for run in items if run["trigger"] == "schedule")


def preview(api: TestClient[Any], **body: Any) -> Any:
    return api.post("/schedules/preview", json=body, headers=A)


def test_upcoming_is_what_the_scheduler_fires_snooze_included(
    api: TestClient[Any], r: redis.Redis, api_settings: Settings
) -> None:
    task = create(api)
    assert upcoming(api, task, 3) == [
        "2026-11-28T14:00:00.000Z",
        "2026-11-28T15:00:00.000Z",
        "2026-11-28T16:00:00.000Z",
    ]
    api.post(f"/tasks/{task['id']}/snooze", json={"delay_seconds": 1800}, headers=A)
    shown = upcoming(api, task, 4)
    assert shown == [
        "2026-11-28T14:30:00.000Z",
        "2026-11-28T15:00:00.000Z",
        "2026-11-28T16:00:00.000Z",
        "2026-11-28T17:00:00.000Z",
    ]
    for stamp in shown:
        fire(api_settings, r, stamp)
    assert fired(api, task) == shown


def test_upcoming_stops_where_the_rule_ends(api: TestClient[Any]) -> None:
    task = create(
        api,
        schedule_kind="rrule",
        schedule_expr="DTSTART:20261129T090000Z\nRRULE:FREQ=DAILY;COUNT=3",
    )
    assert upcoming(api, task) == [
        "2026-11-29T09:00:00.000Z",
        "2026-11-30T09:00:00.000Z",
        "2026-12-01T09:00:00.000Z",
    ]
    once = create(api, schedule_kind="once", schedule_expr="2026-12-24T18:00:00Z")
    assert upcoming(api, once) == ["2026-12-24T18:00:00.000Z"]


def test_a_task_that_is_not_active_has_none(api: TestClient[Any]) -> None:
    paused = create(api)
    api.post(f"/tasks/{paused['id']}/pause", headers=A)
    assert upcoming(api, paused) == []
    canceled = create(api)
    api.post(f"/tasks/{canceled['id']}/cancel", headers=A)
    assert upcoming(api, canceled) == []
    event = create(api, schedule_kind="event", schedule_expr="invoice.*")
    assert upcoming(api, event) == []


def test_upcoming_of_a_missed_occurrence_follows_the_misfire_policy(
    api: TestClient[Any], r: redis.Redis, api_settings: Settings
) -> None:
    task = create(api, misfire_policy="skip")
    clock.shift(3 * 3600 * 1000)  # 16:37: 14:00, 15:00 and 16:00 were missed
    shown = upcoming(api, task, 2)
    assert shown == ["2026-11-28T17:00:00.000Z", "2026-11-28T18:00:00.000Z"]
    Scheduler(api_settings, client=r).run_once()
    assert fired(api, task) == []
    for stamp in shown:
        fire(api_settings, r, stamp)
    assert fired(api, task) == shown


def test_upcoming_count_bounds_and_ownership(api: TestClient[Any]) -> None:
    task = create(api)
    assert len(upcoming(api, task)) == 10
    assert len(upcoming(api, task, 100)) == 100
    for bad in (0, 101, "x"):
        resp = api.get(f"/tasks/{task['id']}/upcoming", params={"count": bad}, headers=A)
        assert_400(resp, "count")
    assert api.get(f"/tasks/{task['id']}/upcoming", headers=B).status_code == 404
    assert api.get("/tasks/nope/upcoming", headers=A).status_code == 404


def test_preview_shows_a_dst_gap_as_the_scheduler_fires_it(api: TestClient[Any]) -> None:
    resp = preview(
        api,
        schedule_kind="cron",
        schedule_expr="30 2 * * *",
        timezone="Europe/Paris",
        after="2027-03-26T12:00:00Z",
        count=4,
    )
    assert resp.status_code == 200, resp.text
    assert resp.json()["items"] == [
        "2027-03-27T01:30:00.000Z",  # 02:30 CET
        "2027-03-28T01:00:00.000Z",  # 02:30 does not exist: 03:00 CEST, the end of the gap
        "2027-03-29T00:30:00.000Z",  # 02:30 CEST
        "2027-03-30T00:30:00.000Z",
    ]


def test_preview_matches_upcoming_of_the_same_task(api: TestClient[Any]) -> None:
    expr = "FREQ=WEEKLY;BYDAY=MO,WE;BYHOUR=9;BYMINUTE=0;COUNT=5"
    task = create(api, schedule_kind="rrule", schedule_expr=expr, timezone="America/New_York")
    shown = preview(
        api, schedule_kind="rrule", schedule_expr=expr, timezone="America/New_York", count=20
    )
    assert shown.status_code == 200, shown.text
    assert shown.json()["items"] == upcoming(api, task, 20)
    assert len(shown.json()["items"]) == 5


def test_preview_of_kinds_without_times(api: TestClient[Any]) -> None:
    assert preview(api, schedule_kind="event", schedule_expr="a.*").json() == {"items": []}
    done = preview(
        api,
        schedule_kind="rrule",
        schedule_expr="DTSTART:20200101T000000Z\nRRULE:COUNT=1;FREQ=DAILY",
    )
    assert done.json() == {"items": []}
    past = preview(api, schedule_kind="once", schedule_expr="2020-01-01T00:00:00Z")
    assert past.json() == {"items": ["2020-01-01T00:00:00.000Z"]}


BAD_SCHEDULES: list[dict[str, Any]] = [
    {"schedule_kind": "weekly", "schedule_expr": "* * * * *"},
    {"schedule_kind": "cron", "schedule_expr": "61 * * * *"},
    {"schedule_kind": "cron", "schedule_expr": "0 0 30 2 *"},
    {"schedule_kind": "cron"},
    {"schedule_kind": "cron", "schedule_expr": None},
    {"schedule_kind": "cron", "schedule_expr": "* * * * *", "timezone": "Mars/Olympus"},
    {"schedule_kind": "cron", "schedule_expr": "* * * * *", "timezone": ""},
    {"schedule_kind": "cron", "schedule_expr": "x" * 4097},
    {"schedule_kind": "rrule", "schedule_expr": "FREQ=SOMETIMES"},
    {"schedule_kind": "rrule", "schedule_expr": "FREQ=DAILY;UNTIL=someday"},
    {"schedule_kind": "once", "schedule_expr": "tomorrow"},
    {"schedule_kind": "event", "schedule_expr": "e" * 4097},
    {"schedule_kind": 3, "schedule_expr": "* * * * *"},
    {"schedule_expr": "* * * * *"},
]


@pytest.mark.parametrize("bad", BAD_SCHEDULES)
def test_preview_refuses_bad_input_exactly_as_create(
    api: TestClient[Any], bad: dict[str, Any]
) -> None:
    body = task_body(**{"schedule_kind": ..., "schedule_expr": ..., **bad})
    created = api.post("/tasks", json=body, headers=A)
    previewed = preview(api, **bad)
    assert created.status_code == 400, created.text
    assert previewed.status_code == 400
    assert previewed.json() == created.json()


def test_preview_refuses_its_own_bad_fields(api: TestClient[Any]) -> None:
    base = {"schedule_kind": "cron", "schedule_expr": "* * * * *"}
    assert_400(preview(api, **base, count=0), "count")
    assert_400(preview(api, **base, count=101), "count")
    assert_400(preview(api, **base, after="2026-12-01T00:00:00"), "after")
    assert_400(preview(api, **base, after="soon"), "after")
    assert_400(preview(api, **base, title="x"), "title")
    assert api.post("/schedules/preview", json=base).status_code == 401
