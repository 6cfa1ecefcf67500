"""The use cases (``app/service``) against the real Redis: each runs its script, then puts its
runs on RQ or takes them off, then counts them, with one counting rule for every trigger."""

from app import clock
from app.service import tasks
from app.service.backend import Backend
from app.store import stats
from tests.support.agents import AGENT
from tests.support.scheduler import create, rq_job_ids

HOUR_MS = 3_600_000


def test_run_now_enqueues_the_queued_run_and_counts_a_deduped_one_as_suppressed(
    backend: Backend,
) -> None:
    task = create(backend.store, dedupe_key="k", dedupe_window_seconds=600)

    first = tasks.run_now(backend, task.id, AGENT)
    second = tasks.run_now(backend, task.id, AGENT)

    assert (first.status, second.status) == ("queued", "deduped")
    assert rq_job_ids(backend.rq) == [first.id]
    assert stats.read(backend.client, backend.keys) == {
        "runs:queued:run_now": 1,
        "runs:deduped:run_now": 1,
        "dedupe_suppressed": 1,
    }


def test_backfill_counts_as_every_trigger_does_and_a_repeat_makes_and_counts_nothing(
    backend: Backend,
) -> None:
    task = create(backend.store, schedule_expr="0 * * * *", dedupe_key="one-report")
    end = clock.now_ms() // HOUR_MS * HOUR_MS
    start = end - 2 * HOUR_MS

    runs = tasks.backfill(backend, task.id, start, end, AGENT)
    again = tasks.backfill(backend, task.id, start, end, AGENT)

    assert [r.status for r in runs] == ["queued", "deduped"]
    assert [r.id for r in again] == [r.id for r in runs]
    assert rq_job_ids(backend.rq) == [runs[0].id]
    assert stats.read(backend.client, backend.keys) == {
        "runs:queued:backfill": 1,
        "runs:deduped:backfill": 1,
        "dedupe_suppressed": 1,
    }


def test_cancel_takes_the_task_s_queued_runs_off_rq(backend: Backend) -> None:
    task = create(backend.store)
    other = create(backend.store)
    runs = [tasks.run_now(backend, task.id, AGENT) for _ in range(3)]
    kept = tasks.run_now(backend, other.id, AGENT)

    canceled = tasks.cancel_task(backend, task.id, AGENT)

    assert canceled.status == "canceled"
    assert rq_job_ids(backend.rq) == [kept.id]
    for run in runs:
        assert backend.client.hget(backend.keys.run(run.id), "status") == "canceled"
