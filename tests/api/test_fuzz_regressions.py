"""Inputs found by fuzzing the running API that once gave a 500; each must stay a 4xx or succeed.

The rule: bad input is a 4xx naming the field, never a 500, and a valid input that was accepted
must never leave a task behind that later breaks reading or listing.
"""

import logging
from typing import Any

import pytest
from litestar.testing import TestClient

from app.store.tasks import AsyncTaskStore
from tests.support.agents import ADMIN, AGENT_A, A
from tests.support.api import assert_400, create, task_body

#: The last representable instant, given with nanoseconds: rounding it to milliseconds through a
#: float once gave 10000-01-01, which could be stored but not shown (500 on every later read).
LAST_INSTANT = "9999-12-31T23:59:59.999999999Z"


def test_a_once_time_at_the_end_of_year_9999_is_stored_and_shown(api: TestClient[Any]) -> None:
    resp = api.post(
        "/tasks", json=task_body(schedule_kind="once", schedule_expr=LAST_INSTANT), headers=A
    )
    assert resp.status_code == 201, resp.text
    task = resp.json()
    assert task["next_run_at"] == "9999-12-31T23:59:59.999Z"
    assert api.get(f"/tasks/{task['id']}", headers=A).status_code == 200
    listing = api.get("/tasks", headers=ADMIN)
    assert listing.status_code == 200, listing.text


def test_a_put_to_the_last_instant_is_not_a_500(api: TestClient[Any]) -> None:
    task = create(api)
    resp = api.put(
        f"/tasks/{task['id']}",
        json={"schedule_kind": "once", "schedule_expr": LAST_INSTANT},
        headers=A,
    )
    assert resp.status_code == 200, resp.text
    assert resp.json()["next_run_at"] == "9999-12-31T23:59:59.999Z"


@pytest.mark.parametrize("tz", ["Pacific/Kiritimati", "Australia/Lord_Howe", "Asia/Tokyo"])
def test_an_rrule_until_past_the_local_calendar_is_accepted(api: TestClient[Any], tz: str) -> None:
    """UNTIL=9999-12-31T23:59:59Z is in year 10000 on the wall clock of a zone east of UTC:
    no wall time lies beyond it, so it bounds nothing (it once overflowed into a 500)."""
    resp = api.post(
        "/tasks",
        json=task_body(
            schedule_kind="rrule", schedule_expr="FREQ=DAILY;UNTIL=99991231T235959Z", timezone=tz
        ),
        headers=A,
    )
    assert resp.status_code == 201, resp.text
    assert resp.json()["next_run_at"] is not None


def test_an_rrule_until_before_the_local_calendar_ends_the_rule(api: TestClient[Any]) -> None:
    """UNTIL=0001-01-01T00:00:00Z is still in year 0 in New York: the rule is used up at once,
    like any rule whose UNTIL has passed (it once underflowed into a 500)."""
    resp = api.post(
        "/tasks",
        json=task_body(
            schedule_kind="rrule",
            schedule_expr="FREQ=DAILY;UNTIL=00010101T000000Z",
            timezone="America/New_York",
        ),
        headers=A,
    )
    assert resp.status_code == 201, resp.text
    assert resp.json()["status"] == "completed"
    assert resp.json()["next_run_at"] is None


def test_a_snooze_past_year_9999_is_a_400_and_leaves_the_task_readable(
    api: TestClient[Any],
) -> None:
    task = create(api, schedule_kind="once", schedule_expr="9999-12-31T23:00:00Z")
    resp = api.post(f"/tasks/{task['id']}/snooze", json={"delay_seconds": 604_800}, headers=A)
    assert_400(resp, "delay_seconds")
    again = api.get(f"/tasks/{task['id']}", headers=A)
    assert again.status_code == 200, again.text
    assert again.json()["snoozed_until"] is None
    ok = api.post(f"/tasks/{task['id']}/snooze", json={"delay_seconds": 3599}, headers=A)
    assert ok.status_code == 200, ok.text
    assert ok.json()["next_run_at"] == "9999-12-31T23:59:59.000Z"


@pytest.mark.parametrize("start", ["99991231T230000", "99991231T150000"])
def test_an_rrule_whose_wall_times_run_past_year_9999_in_utc_is_not_a_500(
    api: TestClient[Any], start: str
) -> None:
    """11 p.m. on 9999-12-31 in New York is in year 10000 in UTC: no instant, no occurrence."""
    resp = api.post(
        "/tasks",
        json=task_body(
            schedule_kind="rrule",
            schedule_expr=f"DTSTART:{start}\nRRULE:FREQ=HOURLY",
            timezone="America/New_York",
        ),
        headers=A,
    )
    assert resp.status_code == 201, resp.text
    listing = api.get("/tasks", headers=A)
    assert listing.status_code == 200, listing.text


def test_an_unexpected_fault_is_logged_with_its_traceback(
    api: TestClient[Any], monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    """The 500s above left nothing in the server log; the next one must say where it came from."""

    def broken(*args: Any, **kwargs: Any) -> Any:
        raise ZeroDivisionError("deliberately broken")

    monkeypatch.setattr(AsyncTaskStore, "get", broken)
    with caplog.at_level(logging.ERROR, logger="chime.api"):
        resp = api.get(f"/tasks/{AGENT_A}", headers=A)
    assert resp.status_code == 500
    assert resp.json() == {"status_code": 500, "detail": "Internal Server Error"}
    failed = [rec for rec in caplog.records if rec.getMessage() == "request.failed"]
    assert failed, caplog.records
    assert failed[0].exc_info is not None
    assert failed[0].exc_info[0] is ZeroDivisionError
