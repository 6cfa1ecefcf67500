"""``chime worker`` processes running many runs at once, against the asyncio sink: runs in flight
together, RQ's view of them (read through RQ's own classes), kill -9, SIGTERM, priorities,
concurrency keys, and cancel."""

import signal
import time
from typing import Any

import redis
from rq import Queue, Worker
from rq.job import Job, JobStatus
from rq.registry import FailedJobRegistry, FinishedJobRegistry, StartedJobRegistry

from app.core.task import Run, Task
from app.dashboard import create_dashboard
from app.settings import Settings
from app.store.enqueue import dequeue_runs, enqueue_runs
from app.store.keys import Keys, queue_name
from app.store.runs import load_run
from app.store.tasks import TaskStore
from tests.support.agents import AGENT
from tests.support.waiting import wait_for
from tests.support.workers import Workers, release_due, status_of, worker_task
from tests.workers.sink import AsyncSink

P5 = queue_name(5)


def hold(sink: AsyncSink, ms: int, group: str = "", **step: Any) -> list[dict[str, Any]]:
    query = f"ms={ms}" + (f"&group={group}" if group else "")
    return [
        {
            "name": "hold",
            "action": "http.request",
            "params": {"url": f"{sink.url}/hold/{{{{ run.id }}}}?{query}"},
            **step,
        }
    ]


def queue_many(store: TaskStore, rq: redis.Redis, keys: Keys, task: Task, n: int) -> list[Run]:
    runs = [store.run_now(task.id, AGENT) for _ in range(n)]
    enqueue_runs(rq, keys, [(r.id, r.priority) for r in runs])
    return runs


def all_status(r: redis.Redis, keys: Keys, runs: list[Run], status: str) -> bool:
    return all(status_of(r, keys, run.id) == status for run in runs)


def test_two_hundred_runs_on_one_worker_are_in_flight_together(
    store: TaskStore,
    r: redis.Redis,
    rq_client: redis.Redis,
    keys: Keys,
    workers: Workers,
    sink: AsyncSink,
) -> None:
    task, _ = store.create(worker_task(hold(sink, 300)))
    runs = queue_many(store, rq_client, keys, task, 200)
    workers.start("--concurrency", "100")
    wait_for(lambda: all_status(r, keys, runs, "succeeded"), timeout=120, what="200 runs")
    assert sink.record.peak[""] >= 50
    assert sink.record.peak[""] <= 100
    assert all(sink.record.calls[run.id] == 1 for run in runs)


def test_rq_sees_every_run_in_flight_on_one_worker_and_then_finished(
    redis_url: str,
    store: TaskStore,
    r: redis.Redis,
    rq_client: redis.Redis,
    keys: Keys,
    workers: Workers,
    sink: AsyncSink,
) -> None:
    task, _ = store.create(worker_task(hold(sink, 3500)))
    runs = queue_many(store, rq_client, keys, task, 20)
    ids = {run.id for run in runs}
    proc = workers.start("--concurrency", "50", CHIME_SEMAPHORE_LEASE_SECONDS="1.5")
    wait_for(lambda: sink.record.in_flight[""] == 20, timeout=60, what="20 runs in flight")
    started = StartedJobRegistry(P5, connection=rq_client)
    (worker,) = Worker.all(connection=rq_client)
    assert worker.pid == proc.pid
    assert worker.get_state() == "busy"
    assert set(started.get_job_ids(cleanup=False)) == ids
    assert len(worker.get_current_executions()) == 20
    for job in Job.fetch_many(list(ids), connection=rq_client):
        assert job is not None
        assert job.get_status() == JobStatus.STARTED
        assert job.worker_name == worker.name
    # rq-dashboard's own pages: one busy worker, twenty started jobs on the queue
    dashboard = create_dashboard(redis_url).test_client()
    (shown,) = dashboard.get("/0/data/workers.json").get_json()["workers"]
    assert (shown["name"], shown["state"]) == (worker.name, "busy")
    page = dashboard.get(f"/0/data/jobs/{P5}/started/50/asc/1.json").get_json()
    assert {j["id"] for j in page["jobs"]} == ids
    # the heartbeat pushes the entries' expiry on: where the first ones would have lapsed,
    # RQ's own maintenance (any RQ worker's) finds nothing abandoned
    first = min(score for _, score in rq_client.zrange(started.key, 0, -1, withscores=True))
    wait_for(
        lambda: min(s for _, s in rq_client.zrange(started.key, 0, -1, withscores=True)) > first,
        timeout=20,
        what="a heartbeat",
    )
    started.cleanup(timestamp=first)
    Worker([Queue(P5, connection=rq_client)], connection=rq_client).clean_registries()
    assert set(started.get_job_ids(cleanup=False)) == ids
    assert FailedJobRegistry(P5, connection=rq_client).get_job_ids(cleanup=False) == []
    wait_for(lambda: all_status(r, keys, runs, "succeeded"), timeout=60, what="the runs")
    wait_for(lambda: started.get_job_ids(cleanup=False) == [], timeout=10, what="RQ's end")
    finished = FinishedJobRegistry(P5, connection=rq_client)
    assert set(finished.get_job_ids(cleanup=False)) == ids
    for job in Job.fetch_many(list(ids), connection=rq_client):
        assert job is not None
        assert job.get_status() == JobStatus.FINISHED
        result = job.latest_result()
        assert result is not None and result.type == result.Type.SUCCESSFUL
        assert 0 < rq_client.ttl(job.key) <= 24 * 3600
    worker.refresh()
    assert worker.successful_job_count == 20
    assert worker.get_current_executions(refresh=True) == []


def test_a_killed_worker_s_fifty_runs_are_each_retried_once(
    settings: Settings,
    store: TaskStore,
    r: redis.Redis,
    rq_client: redis.Redis,
    keys: Keys,
    workers: Workers,
    sink: AsyncSink,
) -> None:
    env = {"CHIME_SEMAPHORE_LEASE_SECONDS": "2"}
    step = {
        "name": "stall",
        "action": "http.request",
        # each run's first call stalls: the one the killed worker makes
        "params": {"url": f"{sink.url}/stall/{{{{ run.id }}}}?s=120"},
        "timeout_seconds": 300,
    }
    task, _ = store.create(
        worker_task([step], max_retries=1, backoff_strategy="fixed", retry_delay_seconds=0.0)
    )
    runs = queue_many(store, rq_client, keys, task, 50)
    doomed = workers.start("--concurrency", "100", **env)
    wait_for(lambda: len(sink.record.arrivals) == 50, timeout=60, what="50 runs in flight")
    assert all_status(r, keys, runs, "running")
    doomed.send_signal(signal.SIGKILL)
    doomed.wait(10)
    workers.start("--concurrency", "100", **env)

    def retried() -> bool:
        release_due(r, rq_client, settings)
        return all_status(r, keys, runs, "succeeded")

    wait_for(retried, timeout=120, what="every run retried")
    time.sleep(1)
    assert all(sink.record.calls[run.id] == 2 for run in runs)
    for run in runs:
        done = load_run(r, keys, run.id)
        assert done is not None and (done.attempt, done.error) == (2, None)
    assert r.zcard(keys.running) == 0


def test_sigterm_stops_taking_jobs_and_lets_the_runs_in_flight_finish(
    store: TaskStore,
    r: redis.Redis,
    rq_client: redis.Redis,
    keys: Keys,
    workers: Workers,
    sink: AsyncSink,
) -> None:
    task, _ = store.create(worker_task(hold(sink, 1500)))
    flying = queue_many(store, rq_client, keys, task, 10)
    proc = workers.start("--concurrency", "10")
    wait_for(lambda: sink.record.in_flight[""] == 10, timeout=60, what="10 runs in flight")
    waiting = queue_many(store, rq_client, keys, task, 5)
    proc.send_signal(signal.SIGTERM)
    assert proc.wait(60) == 0
    assert all_status(r, keys, flying, "succeeded")
    assert all_status(r, keys, waiting, "queued")
    assert Queue(P5, connection=rq_client).count == 5
    finished = FinishedJobRegistry(P5, connection=rq_client).get_job_ids(cleanup=False)
    assert set(finished) == {run.id for run in flying}
    assert Worker.all(connection=rq_client) == []


def test_a_second_signal_stops_at_once_and_leaves_the_run_to_its_lease(
    store: TaskStore,
    r: redis.Redis,
    rq_client: redis.Redis,
    keys: Keys,
    workers: Workers,
    sink: AsyncSink,
) -> None:
    task, _ = store.create(worker_task(hold(sink, 60_000, timeout_seconds=120)))
    (run,) = queue_many(store, rq_client, keys, task, 1)
    proc = workers.start()
    wait_for(lambda: sink.record.in_flight[""] == 1, timeout=60, what="the run in flight")
    proc.send_signal(signal.SIGTERM)
    time.sleep(0.5)
    assert proc.poll() is None  # still letting its run finish
    proc.send_signal(signal.SIGTERM)
    proc.wait(15)
    assert status_of(r, keys, run.id) == "running"  # its lease lapses; a sweep retries it
    assert r.zscore(keys.running, run.id) is not None


def test_a_queued_priority_one_run_takes_the_next_free_slot(
    store: TaskStore,
    r: redis.Redis,
    rq_client: redis.Redis,
    keys: Keys,
    workers: Workers,
    sink: AsyncSink,
) -> None:
    blocker, _ = store.create(worker_task(hold(sink, 1500)))
    low, _ = store.create(worker_task(hold(sink, 10), priority=5))
    high, _ = store.create(worker_task(hold(sink, 10), priority=1))
    (first,) = queue_many(store, rq_client, keys, blocker, 1)
    workers.start("--concurrency", "1")
    wait_for(lambda: sink.record.in_flight[""] == 1, timeout=60, what="the blocker")
    lows = queue_many(store, rq_client, keys, low, 3)
    (urgent,) = queue_many(store, rq_client, keys, high, 1)
    wait_for(lambda: all_status(r, keys, [*lows, urgent], "succeeded"), what="the rest")
    assert sink.record.arrivals == [first.id, urgent.id, *(run.id for run in lows)]


def test_a_concurrency_limit_of_three_holds_across_two_hundred_slots(
    store: TaskStore,
    r: redis.Redis,
    rq_client: redis.Redis,
    keys: Keys,
    workers: Workers,
    sink: AsyncSink,
) -> None:
    task, _ = store.create(
        worker_task(hold(sink, 200, group="k"), concurrency_key="k", concurrency_limit=3)
    )
    runs = queue_many(store, rq_client, keys, task, 30)
    workers.start("--concurrency", "100")
    workers.start("--concurrency", "100")
    wait_for(lambda: all_status(r, keys, runs, "succeeded"), timeout=120, what="30 runs")
    assert sink.record.peak["k"] == 3
    assert all(sink.record.calls[run.id] == 1 for run in runs)


def test_cancel_deletes_the_rq_jobs_of_runs_that_had_not_started(
    store: TaskStore, r: redis.Redis, rq_client: redis.Redis, keys: Keys, sink: AsyncSink
) -> None:
    task, _ = store.create(worker_task(hold(sink, 10)))
    runs = queue_many(store, rq_client, keys, task, 3)
    assert all(rq_client.ttl(Job.key_for(run.id)) == -1 for run in runs)  # queued: no TTL
    _, queued = store.cancel(task.id, AGENT)
    dequeue_runs(rq_client, queued)
    assert sorted(queued) == sorted(run.id for run in runs)
    assert not any(Job.exists(run.id, connection=rq_client) for run in runs)
    assert Queue(P5, connection=rq_client).count == 0


def test_concurrency_one_still_works(
    store: TaskStore,
    r: redis.Redis,
    rq_client: redis.Redis,
    keys: Keys,
    workers: Workers,
    sink: AsyncSink,
) -> None:
    task, _ = store.create(worker_task(hold(sink, 50, group="one")))
    runs = queue_many(store, rq_client, keys, task, 5)
    proc = workers.start("--concurrency", "1", "--burst")
    assert proc.wait(60) == 0
    assert all_status(r, keys, runs, "succeeded")
    assert sink.record.peak["one"] == 1


def test_a_redis_outage_does_not_end_the_worker(
    redis_server: Any,
    store: TaskStore,
    r: redis.Redis,
    rq_client: redis.Redis,
    keys: Keys,
    workers: Workers,
    sink: AsyncSink,
) -> None:
    proc = workers.start(CHIME_SEMAPHORE_LEASE_SECONDS="1.5")
    wait_for(lambda: Worker.all(connection=rq_client), what="the worker's birth")
    redis_server.stop()
    time.sleep(3)
    redis_server.start()  # an empty Redis: the worker registers again and loads its scripts
    assert proc.poll() is None
    task, _ = store.create(worker_task(hold(sink, 10)))
    (run,) = queue_many(store, rq_client, keys, task, 1)
    wait_for(lambda: status_of(r, keys, run.id) == "succeeded", timeout=60, what="the run")
    wait_for(lambda: Worker.all(connection=rq_client), timeout=20, what="registered again")
    proc.send_signal(signal.SIGTERM)
    assert proc.wait(30) == 0


def test_a_run_whose_last_attempt_was_lost_fails_in_rq_too(
    store: TaskStore,
    r: redis.Redis,
    rq_client: redis.Redis,
    keys: Keys,
    workers: Workers,
    sink: AsyncSink,
) -> None:
    env = {"CHIME_SEMAPHORE_LEASE_SECONDS": "1"}
    step = {
        "name": "stall",
        "action": "http.request",
        "params": {"url": f"{sink.url}/stall/{{{{ run.id }}}}?s=120"},
        "timeout_seconds": 300,
    }
    task, _ = store.create(worker_task([step], max_retries=0))
    (run,) = queue_many(store, rq_client, keys, task, 1)
    doomed = workers.start(**env)
    wait_for(lambda: sink.record.arrivals, timeout=60, what="the run in flight")
    doomed.send_signal(signal.SIGKILL)
    doomed.wait(10)
    workers.start(**env)
    wait_for(lambda: status_of(r, keys, run.id) == "failed", timeout=60, what="the sweep")
    job = Job.fetch(run.id, connection=rq_client)
    wait_for(lambda: job.get_status() == JobStatus.FAILED, timeout=20, what="RQ's failure")
    assert run.id in FailedJobRegistry(P5, connection=rq_client)
    assert StartedJobRegistry(P5, connection=rq_client).get_job_ids(cleanup=False) == []
    assert rq_client.ttl(job.key) > 0
