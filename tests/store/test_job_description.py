"""What rq-dashboard shows for a run's job: the task's title, the task, its agent, the trigger
and the run, so an operator can tell which task a job belongs to."""

import pytest
import redis
from rq.job import Job

from app.settings import Settings
from app.store.enqueue import enqueue_runs
from app.store.keys import Keys
from app.store.tasks import TaskStore
from tests.support.agents import AGENT
from tests.support.scheduler import create


@pytest.fixture
def store(r: redis.Redis, keys: Keys, settings: Settings) -> TaskStore:
    return TaskStore(r, keys, settings)


def test_a_run_now_job_names_its_task(
    r: redis.Redis, rq: redis.Redis, keys: Keys, store: TaskStore
) -> None:
    task = create(store, title="nightly  report\nfor billing")
    run = store.run_now(task.id, AGENT)
    enqueue_runs(rq, keys, [(run.id, run.priority)])

    job = Job.fetch(run.id, connection=rq)
    assert job.description == (
        f"nightly report for billing · task {task.id} · agent {AGENT} · run_now · run {run.id}"
    )


def test_a_long_title_is_cut(r: redis.Redis, rq: redis.Redis, keys: Keys, store: TaskStore) -> None:
    task = create(store, title="x" * 200)
    run = store.run_now(task.id, AGENT)
    enqueue_runs(rq, keys, [(run.id, run.priority)])

    description = Job.fetch(run.id, connection=rq).description or ""
    assert description.startswith("x" * 79 + "… · task ")


def test_descriptions_given_by_the_caller_are_used_and_the_others_read(
    r: redis.Redis, rq: redis.Redis, keys: Keys, store: TaskStore
) -> None:
    task = create(store, title="weekly")
    given, read = store.run_now(task.id, AGENT), store.run_now(task.id, AGENT)
    enqueue_runs(
        rq,
        keys,
        [(given.id, given.priority), (read.id, read.priority)],
        descriptions={given.id: "as the caller describes it"},
    )

    assert Job.fetch(given.id, connection=rq).description == "as the caller describes it"
    assert (Job.fetch(read.id, connection=rq).description or "").startswith("weekly · task ")
