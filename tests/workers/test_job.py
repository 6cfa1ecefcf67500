"""The job function in this process against the real Redis: start, record, retry, park, lose.

Runs are created through the task store (``run_now`` applies dedupe as any trigger does);
retries are released by a pass of the real scheduler (``release_due``).
"""

import logging
import random
import threading
import time
from typing import Any

import pytest
import redis
from rq import Queue

from app import clock
from app.core.backoff import retry_delay
from app.settings import Settings
from app.store.enqueue import enqueue_runs
from app.store.keys import Keys, queue_name
from app.store.runs import load_run
from app.store.semaphore import holders, waiting
from app.store.tasks import TaskStore
from tests.support.agents import AGENT, OTHER_AGENT
from tests.support.workers import LocalServer, release_due, worker_task
from workers.job import JobDeps, run_job


@pytest.fixture
def store(r: redis.Redis, keys: Keys, settings: Settings) -> TaskStore:
    return TaskStore(r, keys, settings)


@pytest.fixture
def deps(r: redis.Redis, rq_client: redis.Redis, keys: Keys, settings: Settings) -> JobDeps:
    return JobDeps(settings=settings, client=r, rq=rq_client, keys=keys)


def hit(server: LocalServer, path: str, **params: Any) -> dict[str, Any]:
    return {
        "name": "call",
        "action": "http.request",
        "params": {"url": f"{server.url}{path}", **params},
    }


def test_a_run_goes_from_queued_to_succeeded_with_its_steps(
    store: TaskStore,
    deps: JobDeps,
    http_server: LocalServer,
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.INFO, "chime.worker")
    task, _ = store.create(worker_task([hit(http_server, "/json")]))
    run = store.run_now(task.id, AGENT)
    assert run_job(run.id, deps) == "succeeded"
    done = load_run(deps.client, deps.keys, run.id)
    assert done is not None
    assert done.status == "succeeded" and done.attempt == 1
    assert done.started_at is not None and done.finished_at is not None
    assert done.steps[0]["output"]["body"]["items"] == [{"id": 7}]
    lines = [r.__dict__ for r in caplog.records if r.getMessage() == "run.transition"]
    assert [(x["status"], x["attempt"], x["run_id"], x["task_id"]) for x in lines] == [
        ("running", 1, run.id, task.id),
        ("succeeded", 1, run.id, task.id),
    ]
    assert deps.client.zscore(deps.keys.running, run.id) is None


def test_a_duplicate_job_and_a_canceled_run_are_left_alone(
    store: TaskStore, deps: JobDeps, http_server: LocalServer
) -> None:
    task, _ = store.create(worker_task([hit(http_server, "/json")]))
    run = store.run_now(task.id, AGENT)
    assert run_job(run.id, deps) == "succeeded"
    assert run_job(run.id, deps) is None
    assert len(http_server.recorder.requests) == 1
    other = store.run_now(task.id, AGENT)
    store.cancel(task.id, AGENT)
    assert run_job(other.id, deps) is None
    canceled = load_run(deps.client, deps.keys, other.id)
    assert canceled is not None and canceled.status == "canceled"
    assert len(http_server.recorder.requests) == 1
    assert run_job("no-such-run", deps) is None


@pytest.mark.parametrize("strategy", ["fixed", "linear", "exponential_jitter"])
def test_retry_schedules_follow_the_backoff_strategy(
    store: TaskStore, deps: JobDeps, strategy: str
) -> None:
    task, _ = store.create(
        worker_task(
            [{"name": "f", "action": "fail", "params": {"message": "nope"}}],
            max_retries=3,
            backoff_strategy=strategy,
            retry_delay_seconds=2.0,
            retry_max_delay_seconds=5.0,
        )
    )
    deps.rand = random.Random(1234).random
    expected_rand = random.Random(1234).random
    run = store.run_now(task.id, AGENT)
    delays = []
    for attempt in (1, 2, 3):
        before = clock.now_ms()
        assert run_job(run.id, deps) == "pending"
        after = clock.now_ms()
        # no retry waits less than the floor, whatever the strategy draws
        floor = deps.settings.retry_min_delay_seconds
        expected = round(max(retry_delay(strategy, attempt, 2.0, 5.0, expected_rand), floor) * 1000)
        pending = load_run(deps.client, deps.keys, run.id)
        assert pending is not None and pending.next_attempt_at is not None
        assert before + expected <= pending.next_attempt_at <= after + expected
        assert pending.attempt == attempt + 1
        assert deps.client.zscore(deps.keys.delayed, run.id) == pending.next_attempt_at
        delays.append(expected)
        # not due yet: nothing is released; due after the delay
        if expected > 0:
            assert sum(release_due(deps.client, deps.rq, deps.settings).values()) == 0
        clock.shift(expected + 1)
        assert release_due(deps.client, deps.rq, deps.settings) == {"queued": 1}
    assert run_job(run.id, deps) == "failed"
    final = load_run(deps.client, deps.keys, run.id)
    assert final is not None
    assert (final.status, final.attempt, final.error) == ("failed", 4, "step f (fail): nope")
    if strategy == "fixed":
        assert delays == [2000, 2000, 2000]
    elif strategy == "linear":
        assert delays == [2000, 4000, 5000]
    else:
        bounds = [2000, 4000, 5000]
        assert all(0 <= d <= b for d, b in zip(delays, bounds, strict=True))
        assert len(set(delays)) == 3


def past_retry_floor(deps: JobDeps) -> int:
    """Milliseconds that take the clock past the shortest retry delay there is."""
    return round(deps.settings.retry_min_delay_seconds * 1000) + 1


def test_a_pipeline_that_fails_twice_then_passes_succeeds_on_attempt_three(
    store: TaskStore, deps: JobDeps, http_server: LocalServer
) -> None:
    task, _ = store.create(
        worker_task([hit(http_server, "/flaky/k?n=2")], max_retries=3, backoff_strategy="fixed")
    )
    run = store.run_now(task.id, AGENT)
    outcomes = []
    for _ in range(3):
        outcomes.append(run_job(run.id, deps))
        clock.shift(past_retry_floor(deps))
        release_due(deps.client, deps.rq, deps.settings)
    assert outcomes == ["pending", "pending", "succeeded"]
    done = load_run(deps.client, deps.keys, run.id)
    assert done is not None
    assert (done.status, done.attempt, done.error) == ("succeeded", 3, None)
    assert done.steps[0]["output"]["body"] == {"call": 3}
    # each retry went back on its priority queue as the same RQ job id
    assert Queue(queue_name(5), connection=deps.rq).job_ids.count(run.id) >= 1


def test_no_free_slot_parks_the_run_and_the_release_enqueues_it(
    store: TaskStore, deps: JobDeps, http_server: LocalServer
) -> None:
    task, _ = store.create(
        worker_task([hit(http_server, "/hold/x?ms=400")], concurrency_key="k", concurrency_limit=1)
    )
    first = store.run_now(task.id, AGENT)
    second = store.run_now(task.id, AGENT)
    queue = Queue(queue_name(5), connection=deps.rq)
    queue.empty()
    outcome: list[str | None] = []
    worker = threading.Thread(target=lambda: outcome.append(run_job(first.id, deps)))
    worker.start()
    deadline = time.monotonic() + 5
    while not http_server.recorder.requests and time.monotonic() < deadline:
        time.sleep(0.01)
    assert run_job(second.id, deps) == "pending"  # returns at once, holding no job
    assert waiting(deps.client, deps.keys, AGENT, "k") == [second.id]
    worker.join()
    assert outcome == ["succeeded"]
    handed = load_run(deps.client, deps.keys, second.id)
    assert handed is not None and handed.status == "queued"
    assert list(holders(deps.client, deps.keys, AGENT, "k")) == [second.id]
    assert queue.job_ids == [second.id]  # enqueued by the job that freed the slot
    assert deps.client.zscore(deps.keys.outbox, second.id) is not None  # queued: in the ledger
    assert run_job(second.id, deps) == "succeeded"
    assert deps.client.zscore(deps.keys.outbox, second.id) is None
    assert holders(deps.client, deps.keys, AGENT, "k") == {}


def test_the_heartbeat_keeps_a_long_attempt_alive_past_its_lease(
    store: TaskStore, r: redis.Redis, rq_client: redis.Redis, keys: Keys, redis_url: str
) -> None:
    from workers.sweeper import Sweeper

    settings = Settings.from_env({"REDIS_URL": redis_url, "CHIME_SEMAPHORE_LEASE_SECONDS": "0.3"})
    deps = JobDeps(settings=settings, client=r, rq=rq_client, keys=keys)
    task, _ = store.create(
        worker_task(
            [{"name": "nap", "action": "sleep", "params": {"seconds": 1.0}}],
            concurrency_key="k",
        )
    )
    run = store.run_now(task.id, AGENT)
    sweeper = Sweeper(settings, interval=0.05)
    stop = threading.Event()

    def sweep() -> None:
        while not stop.wait(sweeper.interval):
            sweeper.sweep()

    sweeping = threading.Thread(target=sweep)
    sweeping.start()
    try:
        assert run_job(run.id, deps) == "succeeded"
    finally:
        stop.set()
        sweeping.join()
        sweeper.close()
    done = load_run(r, keys, run.id)
    assert done is not None and done.attempt == 1


def test_an_attempt_that_loses_its_lease_stops_and_is_retried(
    store: TaskStore, deps: JobDeps
) -> None:
    deps.heartbeat_seconds = 0.05
    task, _ = store.create(
        worker_task(
            [
                {"name": "nap", "action": "sleep", "params": {"seconds": 0.4}},
                {"name": "after", "action": "log", "params": {"message": "x"}},
            ],
            max_retries=1,
        )
    )
    run = store.run_now(task.id, AGENT)
    outcome: list[str | None] = []
    job = threading.Thread(target=lambda: outcome.append(run_job(run.id, deps)))
    job.start()
    time.sleep(0.1)
    clock.shift(int(deps.settings.semaphore_lease_seconds * 1000) + 1)  # the lease lapses
    job.join()
    assert outcome == ["pending"]
    retried = load_run(deps.client, deps.keys, run.id)
    assert retried is not None
    assert retried.attempt == 2
    assert retried.error is not None and "heartbeat lease was lost" in retried.error
    assert [s["status"] for s in retried.steps] == ["succeeded", "skipped"]


def test_event_emit_reaches_the_injected_emitter(store: TaskStore, deps: JobDeps) -> None:
    seen: list[tuple[str, str, dict[str, Any]]] = []

    def emitter(rt: Any, run: Any) -> Any:
        async def emit(name: str, data: dict[str, Any]) -> Any:
            seen.append((run.agent_id, name, data))
            return {"event_id": "e"}

        return emit

    deps.emitter = emitter
    task, _ = store.create(
        worker_task(
            [{"name": "e", "action": "event.emit", "params": {"name": "x.y", "data": {"a": 1}}}]
        )
    )
    run = store.run_now(task.id, AGENT)
    assert run_job(run.id, deps) == "succeeded"
    assert seen == [(AGENT, "x.y", {"a": 1})]


def test_event_emit_starts_the_agent_s_matching_event_tasks(
    store: TaskStore, deps: JobDeps
) -> None:
    listener, _ = store.create(
        worker_task(
            [{"name": "l", "action": "log", "params": {"message": "n={{ event.data.n }}"}}],
            schedule_expr="report.*",
        )
    )
    store.create(worker_task(schedule_expr="report.*", created_by=OTHER_AGENT))
    emitter, _ = store.create(
        worker_task(
            [
                {
                    "name": "e",
                    "action": "event.emit",
                    "params": {"name": "report.ready", "data": {"n": "{{ run.attempt }}"}},
                }
            ]
        )
    )
    run = store.run_now(emitter.id, AGENT)
    assert run_job(run.id, deps) == "succeeded"
    done = load_run(deps.client, deps.keys, run.id)
    assert done is not None
    (started,) = done.steps[0]["output"]["runs"]  # only this agent's task matched
    queued = load_run(deps.client, deps.keys, started)
    assert queued is not None
    assert (queued.task_id, queued.trigger, queued.status) == (listener.id, "event", "queued")
    assert Queue(queue_name(5), connection=deps.rq).job_ids == [started]
    assert run_job(started, deps) == "succeeded"
    finished = load_run(deps.client, deps.keys, started)
    assert finished is not None and finished.steps[0]["output"] == "n=1"


def test_dedupe_inside_and_after_the_window_across_tasks_and_agents(
    store: TaskStore, deps: JobDeps, http_server: LocalServer
) -> None:
    steps = [hit(http_server, "/json")]
    a, _ = store.create(worker_task(steps, dedupe_key="nightly", dedupe_window_seconds=1))
    b, _ = store.create(worker_task(steps, dedupe_key="nightly", dedupe_window_seconds=1))
    other, _ = store.create(
        worker_task(steps, dedupe_key="nightly", dedupe_window_seconds=1, created_by=OTHER_AGENT)
    )
    first = store.run_now(a.id, AGENT)
    same_task = store.run_now(a.id, AGENT)
    same_agent = store.run_now(b.id, AGENT)
    other_agent = store.run_now(other.id, OTHER_AGENT)
    assert first.status == "queued" and other_agent.status == "queued"
    for deduped in (same_task, same_agent):
        assert deduped.status == "deduped"
        assert deduped.error is not None and first.id in deduped.error
    for run in (first, same_task, same_agent, other_agent):
        run_job(run.id, deps)
    assert len(http_server.recorder.requests) == 2  # only the two holders ran
    finished = load_run(deps.client, deps.keys, first.id)
    assert finished is not None and finished.status == "succeeded"
    time.sleep(1.05)  # the window lives in Redis (PX), which the test clock does not move
    after = store.run_now(b.id, AGENT)
    assert after.status == "queued"
    assert run_job(after.id, deps) == "succeeded"


def test_a_retry_inside_the_window_is_not_deduped_by_itself(
    store: TaskStore, deps: JobDeps, http_server: LocalServer
) -> None:
    task, _ = store.create(
        worker_task(
            [hit(http_server, "/flaky/d?n=1")],
            dedupe_key="k",
            dedupe_window_seconds=600,
            max_retries=1,
        )
    )
    run = store.run_now(task.id, AGENT)
    assert run_job(run.id, deps) == "pending"
    clock.shift(past_retry_floor(deps))
    assert release_due(deps.client, deps.rq, deps.settings) == {"queued": 1}
    assert run_job(run.id, deps) == "succeeded"


def test_a_running_run_of_a_canceled_task_finishes(
    store: TaskStore, deps: JobDeps, http_server: LocalServer
) -> None:
    task, _ = store.create(worker_task([hit(http_server, "/hold/c?ms=300")]))
    running = store.run_now(task.id, AGENT)
    waiting_run = store.run_now(task.id, AGENT)
    outcome: list[str | None] = []
    job = threading.Thread(target=lambda: outcome.append(run_job(running.id, deps)))
    job.start()
    deadline = time.monotonic() + 5
    while not http_server.recorder.requests and time.monotonic() < deadline:
        time.sleep(0.01)
    _, dequeued = store.cancel(task.id, AGENT)
    assert dequeued == [waiting_run.id]
    job.join()
    assert outcome == ["succeeded"]
    assert run_job(waiting_run.id, deps) is None
    canceled = load_run(deps.client, deps.keys, waiting_run.id)
    assert canceled is not None and canceled.status == "canceled"


def test_a_plain_rq_worker_still_runs_jobs_by_their_function_name(
    store: TaskStore,
    rq_client: redis.Redis,
    keys: Keys,
    settings: Settings,
    sink: Any,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from rq import SimpleWorker
    from rq.job import Job, JobStatus

    from workers import job as job_module

    task, _ = store.create(
        worker_task([{"name": "c", "action": "http.request", "params": {"url": f"{sink.url}/x"}}])
    )
    run = store.run_now(task.id, AGENT)
    enqueue_runs(rq_client, keys, [(run.id, run.priority)])
    assert Job.fetch(run.id, connection=rq_client).func_name == "workers.job.execute_run"
    monkeypatch.setattr(job_module, "_configured", settings)
    worker = SimpleWorker([Queue(queue_name(5), connection=rq_client)], connection=rq_client)
    assert worker.work(burst=True)
    done = load_run(store.r, keys, run.id)
    assert done is not None and done.status == "succeeded"
    assert sink.record.calls["x"] == 1
    assert Job.fetch(run.id, connection=rq_client).get_status() == JobStatus.FINISHED
