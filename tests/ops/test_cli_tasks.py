"""Operator task commands: any agent's tasks, straight on Redis, with ``--json`` output."""

import json
import uuid

import pytest
import redis

from app import clock
from app.cli import main
from app.core.task import Task
from app.settings import Settings
from app.store.keys import Keys
from app.store.tasks import TaskStore


def _task(store: TaskStore, agent: str, kind: str = "cron", title: str = "t") -> Task:
    now = clock.now_ms()
    task = Task(
        id=str(uuid.uuid4()),
        title=title,
        description="",
        schedule_kind=kind,
        schedule_expr="0 * * * *" if kind == "cron" else None,
        payload={"steps": [{"name": "s", "action": "log", "params": {"message": "m"}}]},
        created_by=agent,
        created_at=now,
        updated_at=now,
    )
    return store.create(task)[0]


@pytest.fixture
def store(r: redis.Redis, keys: Keys, settings: Settings) -> TaskStore:
    return TaskStore(r, keys, settings)


def test_tasks_list_filters_across_agents(
    store: TaskStore, capsys: pytest.CaptureFixture[str]
) -> None:
    a, b = str(uuid.uuid4()), str(uuid.uuid4())
    t1 = _task(store, a, title="first")
    clock.shift(10)
    t2 = _task(store, b, kind="event", title="second")

    assert main(["tasks", "list", "--json"]) == 0
    page = json.loads(capsys.readouterr().out)
    assert [t["id"] for t in page["items"]] == [t2.id, t1.id]
    assert page["total"] == 2
    assert page["items"][0]["created_at"].endswith("Z")
    assert "sched_version" not in page["items"][0]
    assert "next_occurrence" not in page["items"][0]

    assert main(["tasks", "list", "--agent", a, "--json"]) == 0
    assert [t["id"] for t in json.loads(capsys.readouterr().out)["items"]] == [t1.id]
    assert main(["tasks", "list", "--kind", "event", "--limit", "1", "--json"]) == 0
    assert [t["id"] for t in json.loads(capsys.readouterr().out)["items"]] == [t2.id]

    assert main(["tasks", "list"]) == 0
    out = capsys.readouterr().out
    assert t1.id in out and "second" in out and "(2 of 2)" in out


def test_tasks_show_pause_resume_cancel(
    store: TaskStore, capsys: pytest.CaptureFixture[str]
) -> None:
    task = _task(store, str(uuid.uuid4()))

    assert main(["tasks", "show", task.id, "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["status"] == "active"
    assert main(["tasks", "pause", task.id, "--json"]) == 0
    shown = json.loads(capsys.readouterr().out)
    assert shown["status"] == "paused"
    assert store.get(task.id).status == "paused"
    assert main(["tasks", "resume", task.id, "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["status"] == "active"
    assert main(["tasks", "cancel", task.id]) == 0
    assert "canceled" in capsys.readouterr().out
    assert store.get(task.id).status == "canceled"

    assert main(["tasks", "resume", task.id]) == 1
    assert capsys.readouterr().err.startswith("chime: cannot resume")


def test_an_unknown_task_is_one_line_and_exit_1(
    store: TaskStore, capsys: pytest.CaptureFixture[str]
) -> None:
    missing = str(uuid.uuid4())

    assert main(["tasks", "show", missing]) == 1

    assert capsys.readouterr().err == f"chime: task {missing} not found\n"


def test_bad_list_arguments_are_usage_errors(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exit_:
        main(["tasks", "list", "--limit", "0"])
    assert exit_.value.code == 2
    assert "between 1 and 500" in capsys.readouterr().err


def test_tasks_upcoming_shows_what_the_api_shows(
    store: TaskStore, capsys: pytest.CaptureFixture[str]
) -> None:
    task = _task(store, str(uuid.uuid4()))
    assert main(["tasks", "upcoming", task.id, "--count", "3", "--json"]) == 0
    items = json.loads(capsys.readouterr().out)["items"]
    first = store.get(task.id).next_run_at
    assert first is not None
    assert items == [clock.iso(first + h * 3_600_000) for h in range(3)]
    assert main(["tasks", "upcoming", task.id]) == 0
    assert len(capsys.readouterr().out.splitlines()) == 10
    with pytest.raises(SystemExit):
        main(["tasks", "upcoming", task.id, "--count", "101"])
