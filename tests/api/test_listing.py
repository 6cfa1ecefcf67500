"""GET /tasks: filters alone and combined, paging edges, 400s, and a page read from an index."""

import uuid
from typing import Any

import pytest
import redis
from litestar.testing import TestClient

from app import clock
from app.core.task import Task
from app.store.tasks import TaskStore
from tests.support.agents import ADMIN, AGENT_A, AGENT_B, A, B
from tests.support.api import assert_400, create
from tests.support.records import LOG_PIPELINE


def ids(resp: Any) -> list[str]:
    assert resp.status_code == 200, resp.text
    return [t["id"] for t in resp.json()["items"]]


@pytest.fixture
def tasks(api: TestClient[Any]) -> dict[str, dict[str, Any]]:
    """Six tasks of A and one of B, created a millisecond apart (newest last)."""
    made: dict[str, dict[str, Any]] = {}
    for name, kind, expr, headers in [
        ("cron1", "cron", "@hourly", A),
        ("cron2", "cron", "@daily", A),
        ("once", "once", "2030-01-01T00:00:00Z", A),
        ("event", "event", "x.*", A),
        ("rrule", "rrule", "RRULE:FREQ=WEEKLY", A),
        ("done", "rrule", "DTSTART:20200101T000000Z\nRRULE:FREQ=DAILY;COUNT=1", A),
        ("theirs", "cron", "@hourly", B),
    ]:
        clock.shift(2)
        made[name] = create(api, headers, title=name, schedule_kind=kind, schedule_expr=expr)
    api.post(f"/tasks/{made['cron2']['id']}/pause", headers=A)
    api.post(f"/tasks/{made['once']['id']}/cancel", headers=A)
    return made


def test_an_agent_lists_its_own_tasks_newest_first(
    api: TestClient[Any], tasks: dict[str, dict[str, Any]]
) -> None:
    resp = api.get("/tasks", headers=A)
    names = ["done", "rrule", "event", "once", "cron2", "cron1"]
    assert ids(resp) == [tasks[n]["id"] for n in names]
    assert resp.json()["total"] == 6
    assert resp.json()["limit"] == 50 and resp.json()["offset"] == 0
    assert ids(api.get("/tasks", headers=B)) == [tasks["theirs"]["id"]]
    assert len(ids(api.get("/tasks", headers=ADMIN))) == 7


@pytest.mark.parametrize(
    ("query", "names"),
    [
        ("status=active", ["rrule", "event", "cron1"]),
        ("status=paused", ["cron2"]),
        ("status=canceled", ["once"]),
        ("status=completed", ["done"]),
        ("schedule_kind=cron", ["cron2", "cron1"]),
        ("schedule_kind=rrule", ["done", "rrule"]),
        ("schedule_kind=event", ["event"]),
        (f"created_by={AGENT_A}", ["done", "rrule", "event", "once", "cron2", "cron1"]),
        ("status=active&schedule_kind=cron", ["cron1"]),
        ("status=paused&schedule_kind=rrule", []),
        (f"status=completed&schedule_kind=rrule&created_by={AGENT_A}", ["done"]),
        (f"created_by={AGENT_B}", []),
    ],
)
def test_filters_alone_and_combined(
    api: TestClient[Any], tasks: dict[str, dict[str, Any]], query: str, names: list[str]
) -> None:
    resp = api.get(f"/tasks?{query}", headers=A)
    assert ids(resp) == [tasks[n]["id"] for n in names]
    assert resp.json()["total"] == len(names)


def test_the_admin_filters_by_agent(api: TestClient[Any], tasks: dict[str, dict[str, Any]]) -> None:
    assert ids(api.get(f"/tasks?created_by={AGENT_B}", headers=ADMIN)) == [tasks["theirs"]["id"]]
    both = api.get(f"/tasks?created_by={AGENT_A}&status=active&schedule_kind=cron", headers=ADMIN)
    assert ids(both) == [tasks["cron1"]["id"]]
    assert api.get("/tasks?schedule_kind=cron", headers=ADMIN).json()["total"] == 3


def test_created_by_accepts_any_uuid_spelling(
    api: TestClient[Any], tasks: dict[str, dict[str, Any]]
) -> None:
    resp = api.get(f"/tasks?created_by={AGENT_A.upper()}", headers=A)
    assert resp.json()["total"] == 6


@pytest.mark.parametrize(
    ("query", "expected", "total"),
    [
        ("limit=2", ["done", "rrule"], 6),
        ("limit=2&offset=2", ["event", "once"], 6),
        ("limit=2&offset=4", ["cron2", "cron1"], 6),
        ("limit=2&offset=5", ["cron1"], 6),
        ("offset=6", [], 6),
        ("offset=1000", [], 6),
        ("limit=1", ["done"], 6),
        ("limit=500", ["done", "rrule", "event", "once", "cron2", "cron1"], 6),
        ("limit=1&offset=0&status=active", ["rrule"], 3),
        ("limit=1&offset=2&status=active", ["cron1"], 3),
    ],
)
def test_limit_and_offset(
    api: TestClient[Any],
    tasks: dict[str, dict[str, Any]],
    query: str,
    expected: list[str],
    total: int,
) -> None:
    resp = api.get(f"/tasks?{query}", headers=A)
    assert ids(resp) == [tasks[n]["id"] for n in expected]
    assert resp.json()["total"] == total


@pytest.mark.parametrize(
    ("query", "field"),
    [
        ("limit=0", "limit"),
        ("limit=501", "limit"),
        ("limit=-1", "limit"),
        ("limit=ten", "limit"),
        ("limit=", "limit"),
        ("offset=-1", "offset"),
        ("offset=1.5", "offset"),
        ("offset=99999999999999999999", "offset"),
        ("status=sleeping", "status"),
        ("status=ACTIVE", "status"),
        ("schedule_kind=hourly", "schedule_kind"),
        ("created_by=me", "created_by"),
    ],
)
def test_bad_query_values_are_400(api: TestClient[Any], query: str, field: str) -> None:
    assert_400(api.get(f"/tasks?{query}", headers=A), field)


def test_a_filtered_page_of_10000_tasks_reads_only_that_page(
    api: TestClient[Any], store: TaskStore, r: redis.Redis
) -> None:
    """The listing indexes serve a filtered page with one ZREVRANGE and ``limit`` HGETALLs,
    however many tasks there are: the Redis command counts show it."""
    now = clock.now_ms()
    for i in range(10_000):
        agent = AGENT_A if i % 2 else AGENT_B
        kind = "event" if i % 5 == 0 else "cron"
        task = Task(
            id=str(uuid.uuid4()),
            title=f"t{i}",
            description="",
            schedule_kind=kind,
            schedule_expr="@hourly" if kind == "cron" else "e",
            payload=LOG_PIPELINE,
            created_by=agent,
            created_at=now + i,
            updated_at=now + i,
        )
        store.create(task)

    r.config_resetstat()
    resp = api.get("/tasks?schedule_kind=event&limit=20&offset=100", headers=A)
    stats = r.info("commandstats")
    page = resp.json()
    assert resp.status_code == 200
    assert page["total"] == 1000  # A owns the odd i; event for i % 5 == 0: 1,000 of them
    assert len(page["items"]) == 20
    assert all(t["schedule_kind"] == "event" for t in page["items"])
    titles = [int(t["title"][1:]) for t in page["items"]]
    assert titles == sorted(titles, reverse=True)
    assert stats["cmdstat_hgetall"]["calls"] == 20
    assert stats["cmdstat_zrevrange"]["calls"] == 1
    for scan in ("cmdstat_scan", "cmdstat_keys", "cmdstat_zrange", "cmdstat_smembers"):
        assert scan not in stats
