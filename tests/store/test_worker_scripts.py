"""The worker's scripts against the real Redis: pop_jobs, renew_runs, and RQ's records written
by rq_start_jobs / rq_finish_jobs, read back through RQ's own classes."""

import asyncio
import zlib
from base64 import b64decode
from typing import Any

import pytest
import redis
from rq import Queue, Worker
from rq.job import Job, JobStatus
from rq.registry import FailedJobRegistry, FinishedJobRegistry, StartedJobRegistry

from app import clock
from app.settings import Settings
from app.store import connection, scripts
from app.store.enqueue import enqueue_runs
from app.store.keys import QUEUE_NAMES, Keys, queue_name
from app.store.runs import (
    Held,
    eval_many,
    load_run,
    load_scripts,
    renew_call,
    script_sha,
    start_run,
)
from tests.support.workers import queued_run, snapshot, store_task, taken_job, worker_task
from workers import rqstate

QUEUE_KEYS = [Queue.redis_queue_namespace_prefix + q for q in QUEUE_NAMES]


def pop(rq: redis.Redis, n: int) -> list[tuple[str, str]]:
    reply = scripts.script(rq, "pop_jobs")(keys=QUEUE_KEYS, args=[n])
    return [
        (QUEUE_NAMES[int(reply[i]) - 1], reply[i + 1].decode()) for i in range(0, len(reply), 2)
    ]


def test_pop_takes_at_most_n_ids_highest_priority_first(rq: redis.Redis) -> None:
    for q, ids in ((9, ["n1", "n2"]), (1, ["a1"]), (5, ["f1", "f2", "f3"])):
        rq.rpush(Queue.redis_queue_namespace_prefix + queue_name(q), *ids)
    assert pop(rq, 3) == [("chime-p1", "a1"), ("chime-p5", "f1"), ("chime-p5", "f2")]
    # what it did not take stays queued, in order, for other workers
    assert rq.lrange(Queue.redis_queue_namespace_prefix + "chime-p5", 0, -1) == [b"f3"]
    assert pop(rq, 10) == [("chime-p5", "f3"), ("chime-p9", "n1"), ("chime-p9", "n2")]
    assert pop(rq, 10) == []


def test_renew_runs_renews_many_attempts_in_one_call(
    r: redis.Redis, keys: Keys, settings: Settings
) -> None:
    task = store_task(r, keys, worker_task(concurrency_key="k", concurrency_limit=5))
    plain = store_task(r, keys, worker_task())
    ids = [queued_run(r, keys, task) for _ in range(2)] + [queued_run(r, keys, plain)]
    held = []
    for run_id in ids:
        run = load_run(r, keys, run_id)
        assert run is not None
        started = start_run(r, keys, settings, run)
        held.append(Held(run, started.attempt, started.concurrency_key))
    stale = Held(held[1].run, 2, held[1].concurrency_key)  # not the attempt that runs
    clock.shift(30_000)
    call_keys, args = renew_call(keys, settings, [held[0], stale, held[2]])
    assert scripts.script(r, "renew_runs")(keys=call_keys, args=args) == [1, 0, 1]
    lease = clock.now_ms() + 60_000
    assert r.zscore(keys.running, ids[0]) == pytest.approx(lease, abs=1000)
    assert r.zscore(keys.running, ids[1]) == pytest.approx(lease - 30_000, abs=1000)
    assert r.zscore(keys.semaphore(task.created_by, "k"), ids[0]) == pytest.approx(lease, abs=1000)
    assert r.zscore(keys.running, ids[2]) == pytest.approx(lease, abs=1000)
    # an attempt whose lease lapsed is not renewed, and nothing is written for it
    clock.shift(61_000)
    before = snapshot(r)
    call_keys, args = renew_call(keys, settings, [held[1]])
    assert scripts.script(r, "renew_runs")(keys=call_keys, args=args) == [0]
    assert snapshot(r) == before


def _run(calls: list[Any], url: str) -> list[Any]:
    async def go() -> list[Any]:
        client = connection.async_client(url, decode=False)
        try:
            return await eval_many(client, calls)
        finally:
            await client.aclose()

    return asyncio.run(go())


def test_rq_records_of_started_and_ended_jobs_read_back_through_rq(
    rq: redis.Redis, keys: Keys, redis_url: str
) -> None:
    worker = Worker([Queue("chime-p5", connection=rq)], name="w1", connection=rq)
    worker.register_birth()
    jobs = [taken_job(rq, keys, f"run-{i}") for i in range(3)]
    executions = [rqstate.Execution(j) for j in jobs]
    (started,) = _run([rqstate.start_call("w1", executions, 90)], redis_url)
    assert started == 3
    registry = StartedJobRegistry("chime-p5", connection=rq)
    assert sorted(registry.get_job_ids(cleanup=False)) == ["run-0", "run-1", "run-2"]
    (found,) = Worker.all(connection=rq)
    assert found.get_state() == "busy"
    assert {e.job_id for e in found.get_current_executions()} == {"run-0", "run-1", "run-2"}
    for job in Job.fetch_many(["run-0", "run-1", "run-2"], connection=rq):
        assert job is not None
        assert (job.get_status(), job.worker_name) == (JobStatus.STARTED, "w1")
        assert rq.ttl(job.key) == -1
    ended = [(executions[0], None), (executions[1], "Traceback: boom")]
    (done,) = _run([rqstate.finish_call("w1", ended, idle=False)], redis_url)
    assert done == 2
    ok = Job.fetch("run-0", connection=rq)
    assert ok.get_status() == JobStatus.FINISHED
    latest = ok.latest_result()
    assert latest is not None and latest.type == latest.Type.SUCCESSFUL
    assert "run-0" in FinishedJobRegistry("chime-p5", connection=rq)
    bad = Job.fetch("run-1", connection=rq)
    assert bad.get_status() == JobStatus.FAILED
    failure = bad.latest_result()
    assert failure is not None and failure.exc_string == "Traceback: boom"
    assert "run-1" in FailedJobRegistry("chime-p5", connection=rq)
    assert 0 < rq.ttl(ok.key) <= 24 * 3600 and 0 < rq.ttl(bad.key) <= 24 * 3600
    assert registry.get_job_ids(cleanup=False) == ["run-2"]
    found.refresh()
    assert (found.successful_job_count, found.failed_job_count) == (1, 1)
    assert [e.job_id for e in found.get_current_executions(refresh=True)] == ["run-2"]
    (done,) = _run([rqstate.finish_call("w1", [(executions[2], None)], idle=True)], redis_url)
    found.refresh()
    assert found.get_state() == "idle"
    # the failure is stored as RQ stores it (base64 of zlib)
    assert (
        zlib.decompress(b64decode(rq.xrevrange("rq:results:run-1", count=1)[0][1][b"exc_string"]))
        == b"Traceback: boom"
    )


def test_a_job_deleted_before_it_starts_is_not_written_again(
    rq: redis.Redis, keys: Keys, redis_url: str
) -> None:
    job = taken_job(rq, keys, "gone")
    rq.delete(rqstate.job_key("gone"))
    execution = rqstate.Execution(job)
    replies = _run(
        [
            rqstate.start_call("w1", [execution], 90),
            rqstate.finish_call("w1", [(execution, None)], idle=True),
        ],
        redis_url,
    )
    assert replies == [0, 0]
    assert not Job.exists("gone", connection=rq)
    assert StartedJobRegistry("chime-p5", connection=rq).get_job_ids(cleanup=False) == []


def test_heartbeats_refresh_jobs_in_flight_and_never_recreate_a_deleted_one(
    rq: redis.Redis, keys: Keys, redis_url: str
) -> None:
    live, gone = taken_job(rq, keys, "live"), taken_job(rq, keys, "gone")
    executions = [rqstate.Execution(live), rqstate.Execution(gone)]
    _run([rqstate.start_call("w1", executions, 90)], redis_url)
    rq.delete(rqstate.job_key("gone"))
    before = rq.hget(rqstate.job_key("live"), "last_heartbeat")

    async def beat() -> list[Any]:
        client = connection.async_client(redis_url)
        try:
            await load_scripts(client, ["rq_heartbeat_jobs"])
            pipe = client.pipeline(transaction=False)
            sha = script_sha(client, "rq_heartbeat_jobs")
            rqstate.heartbeat(pipe, "w1", executions, 90, "busy", sha)
            return list(await pipe.execute())
        finally:
            await client.aclose()

    replies = asyncio.run(beat())
    assert replies[-3] == 1  # the job heartbeat: one job refreshed, the one that exists
    assert not rq.exists(rqstate.job_key("gone"))
    assert rq.ttl(rqstate.job_key("live")) == -1
    assert rq.hget(rqstate.job_key("live"), "last_heartbeat") >= before


def test_an_execution_left_by_a_dead_worker_leaves_the_registries_when_the_job_starts_again(
    rq: redis.Redis, keys: Keys, redis_url: str
) -> None:
    job = taken_job(rq, keys, "again")
    dead = rqstate.Execution(job)
    _run([rqstate.start_call("dead", [dead], 90)], redis_url)
    # the dead worker's run was retried: its job is queued and taken again by another worker
    enqueue_runs(rq, keys, [("again", 5)])
    rq.lpop(Queue.redis_queue_namespace_prefix + "chime-p5")
    live = rqstate.Execution(job)
    _run([rqstate.start_call("w2", [live], 90)], redis_url)
    started = StartedJobRegistry("chime-p5", connection=rq)
    assert started.get_job_and_execution_ids(cleanup=False) == [("again", live.id)]
    assert [e.id for e in Job.fetch("again", connection=rq).get_executions()] == [live.id]
    # RQ's maintenance then finds nothing to abandon, even past the dead one's expiry
    started.cleanup(timestamp=int(clock.now_ms() / 1000) + 60)
    assert Job.fetch("again", connection=rq).get_status() == JobStatus.STARTED
    assert FailedJobRegistry("chime-p5", connection=rq).get_job_ids(cleanup=False) == []
