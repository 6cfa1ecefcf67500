"""The last step of every use case (``app/service/dispatch.py``) against the real Redis: what it
counts, what it puts on RQ and what it takes off."""

from rq.job import Job

from app.service.backend import Backend
from app.service.dispatch import Made, dispatch, enqueue_handed, withdraw
from app.store import stats
from tests.support.scheduler import rq_job_ids


def test_each_run_is_counted_once_by_status_and_trigger_and_only_queued_ones_go_to_rq(
    backend: Backend,
) -> None:
    made = [
        Made("q1", "queued", 3, "schedule"),
        Made("q2", "queued", 5, "schedule"),
        Made("d1", "deduped", 5, "schedule"),
        Made("d2", "deduped", 5, "event"),
        Made("p1", "pending", 5, "run_now"),
        Made("s1", "skipped", 5, "schedule"),
    ]

    assert sorted(dispatch(backend, made)) == ["q1", "q2"]

    assert sorted(rq_job_ids(backend.rq)) == ["q1", "q2"]
    counted = stats.read(backend.client, backend.keys)
    assert counted == {
        "runs:queued:schedule": 2,
        "runs:deduped:schedule": 1,
        "runs:deduped:event": 1,
        "runs:pending:run_now": 1,
        "runs:skipped:schedule": 1,
        # a deduped run is also a dedupe suppressed, whatever its trigger
        "dedupe_suppressed": 2,
    }


def test_a_run_without_a_recorded_trigger_is_enqueued_but_not_counted(backend: Backend) -> None:
    assert dispatch(backend, [Made("old", "queued", 5, "")]) == ["old"]
    assert rq_job_ids(backend.rq) == ["old"]
    assert stats.read(backend.client, backend.keys) == {}


def test_runs_handed_a_slot_are_enqueued_without_a_second_count(backend: Backend) -> None:
    assert enqueue_handed(backend, [("h1", 2), ("h2", 9)]) == ["h1", "h2"]
    assert sorted(rq_job_ids(backend.rq)) == ["h1", "h2"]
    assert stats.read(backend.client, backend.keys) == {}


def test_nothing_made_writes_nothing(backend: Backend) -> None:
    assert dispatch(backend, []) == []
    enqueue_handed(backend, [])
    withdraw(backend, [])
    assert backend.client.dbsize() == 0


def test_withdrawn_runs_leave_their_queues_and_their_jobs_are_deleted(backend: Backend) -> None:
    dispatch(backend, [Made(f"r{i}", "queued", i, "run_now") for i in (1, 5, 9)])

    withdraw(backend, ["r1", "r9"])

    assert rq_job_ids(backend.rq) == ["r5"]
    assert not backend.rq.exists(Job.key_for("r1"))
    assert not backend.rq.exists(Job.key_for("r9"))
    assert backend.rq.exists(Job.key_for("r5"))


def test_a_callers_pipeline_carries_the_counts_with_its_own_and_is_sent_before_the_enqueue(
    backend: Backend,
) -> None:
    pipe = backend.client.pipeline(transaction=False)
    stats.incr(pipe, backend.keys, stats.MISFIRES_SKIPPED, 2)

    assert dispatch(backend, [Made("q1", "queued", 5, "schedule")], pipe=pipe) == ["q1"]

    assert len(pipe) == 0  # sent
    assert rq_job_ids(backend.rq) == ["q1"]
    assert stats.read(backend.client, backend.keys) == {
        "runs:queued:schedule": 1,
        "misfires_skipped": 2,
    }


def test_a_callers_pipeline_is_sent_even_when_nothing_was_made(backend: Backend) -> None:
    pipe = backend.client.pipeline(transaction=False)
    stats.incr(pipe, backend.keys, stats.MISFIRES_SKIPPED, 1)

    assert dispatch(backend, [], pipe=pipe) == []

    assert stats.read(backend.client, backend.keys) == {"misfires_skipped": 1}
