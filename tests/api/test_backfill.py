"""``POST /tasks/{id}/backfill``: one run per occurrence of a past range, the schedule's own
occurrences (DST included), ids fixed per occurrence so a repeat creates nothing."""

from typing import Any

import pytest
import redis
from litestar.testing import TestClient

from tests.support.agents import A, B
from tests.support.api import assert_400, create


def backfill(api: TestClient[Any], task: dict[str, Any], start: str, end: str) -> Any:
    return api.post(f"/tasks/{task['id']}/backfill", json={"start": start, "end": end}, headers=A)


def queued_ids(r: redis.Redis) -> list[str]:
    return [x for p in range(1, 10) for x in r.lrange(f"rq:queue:chime-p{p}", 0, -1)]


def test_an_hourly_task_over_the_fall_back_night_and_its_repeat(
    api: TestClient[Any], r: redis.Redis
) -> None:
    task = create(api, schedule_expr="0 * * * *", timezone="Europe/Paris")
    # the local day of 25 October 2026: 25 hours, 02:00 twice (fires at the first only)
    resp = backfill(api, task, "2026-10-24T22:00:00Z", "2026-10-25T23:00:00Z")
    assert resp.status_code == 202, resp.text
    runs = resp.json()["runs"]
    times = [run["scheduled_for"] for run in runs]
    assert len(runs) == 24
    assert times[0] == "2026-10-24T22:00:00.000Z" and times[-1] == "2026-10-25T22:00:00.000Z"
    assert "2026-10-25T00:00:00.000Z" in times  # 02:00 CEST
    assert "2026-10-25T01:00:00.000Z" not in times  # 02:00 CET, the repeat
    assert {run["trigger"] for run in runs} == {"backfill"}
    assert {run["status"] for run in runs} == {"queued"}
    assert set(queued_ids(r)) == {run["id"] for run in runs}

    again = backfill(api, task, "2026-10-24T22:00:00Z", "2026-10-25T23:00:00Z").json()["runs"]
    assert [run["id"] for run in again] == [run["id"] for run in runs]
    assert api.get(f"/tasks/{task['id']}", headers=A).json()["run_count"] == 24
    assert len(queued_ids(r)) == 24
    # an overlapping range makes only the occurrences not made yet
    wider = backfill(api, task, "2026-10-24T20:00:00Z", "2026-10-24T23:00:00Z").json()["runs"]
    assert len(wider) == 3
    assert api.get(f"/tasks/{task['id']}", headers=A).json()["run_count"] == 26


def test_a_missing_local_time_is_backfilled_as_the_scheduler_fires_it(
    api: TestClient[Any],
) -> None:
    task = create(api, schedule_expr="30 2 * * *", timezone="Europe/Paris")
    runs = backfill(api, task, "2026-03-28T00:00:00Z", "2026-03-31T00:00:00Z").json()["runs"]
    assert [run["scheduled_for"] for run in runs] == [
        "2026-03-28T01:30:00.000Z",
        "2026-03-29T01:00:00.000Z",  # 02:30 does not exist: 03:00 CEST
        "2026-03-30T00:30:00.000Z",
    ]


def test_the_range_is_start_included_end_excluded(api: TestClient[Any]) -> None:
    task = create(api)
    runs = backfill(api, task, "2026-11-01T10:00:00Z", "2026-11-01T12:00:00Z").json()["runs"]
    assert [run["scheduled_for"] for run in runs] == [
        "2026-11-01T10:00:00.000Z",
        "2026-11-01T11:00:00.000Z",
    ]
    assert backfill(api, task, "2026-11-01T10:30:00Z", "2026-11-01T10:59:00Z").json() == {
        "runs": []
    }


def test_overlap_and_dedupe_apply(api: TestClient[Any]) -> None:
    task = create(api, overlap_policy="skip")
    runs = backfill(api, task, "2026-11-01T10:00:00Z", "2026-11-01T13:00:00Z").json()["runs"]
    assert [run["status"] for run in runs] == ["queued", "skipped", "skipped"]
    deduped = create(api, dedupe_key="one-report")
    runs = backfill(api, deduped, "2026-11-01T10:00:00Z", "2026-11-01T12:00:00Z").json()["runs"]
    assert [run["status"] for run in runs] == ["queued", "deduped"]


def test_refusals(api: TestClient[Any]) -> None:
    task = create(api)
    assert_400(backfill(api, task, "2026-11-01T10:00:00Z", "2099-01-01T00:00:00Z"), "end")
    assert_400(backfill(api, task, "2026-11-01T10:00:00Z", "2026-11-01T10:00:00Z"), "start")
    assert_400(backfill(api, task, "2026-11-01T10:00:00", "2026-11-01T11:00:00Z"), "start")
    per_second = create(api, schedule_expr="* * * * * *")
    assert_400(backfill(api, per_second, "2026-11-01T10:00:00Z", "2026-11-01T11:00:00Z"), "end")
    ok = backfill(api, per_second, "2026-11-01T10:00:00Z", "2026-11-01T10:16:40Z")
    assert len(ok.json()["runs"]) == 1000
    once = create(api, schedule_kind="once", schedule_expr="2026-12-24T18:00:00Z")
    assert_400(backfill(api, once, "2026-11-01T10:00:00Z", "2026-11-01T11:00:00Z"), "schedule_kind")
    event = create(api, schedule_kind="event", schedule_expr="e")
    assert_400(
        backfill(api, event, "2026-11-01T10:00:00Z", "2026-11-01T11:00:00Z"), "schedule_kind"
    )
    other = api.post(
        f"/tasks/{task['id']}/backfill",
        json={"start": "2026-11-01T10:00:00Z", "end": "2026-11-01T11:00:00Z"},
        headers=B,
    )
    assert other.status_code == 404


@pytest.mark.parametrize("state", ["pause", "cancel"])
def test_paused_works_canceled_is_409(api: TestClient[Any], state: str) -> None:
    task = create(api)
    api.post(f"/tasks/{task['id']}/{state}", headers=A)
    resp = backfill(api, task, "2026-11-01T10:00:00Z", "2026-11-01T11:00:00Z")
    if state == "pause":
        assert resp.status_code == 202 and len(resp.json()["runs"]) == 1
    else:
        assert resp.status_code == 409
        assert resp.json()["extra"] == {"status": "canceled"}
