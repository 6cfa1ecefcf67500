"""Real ``chime worker`` processes on the test Redis: concurrency keys, priority, and kill -9."""

import signal
import time
from typing import Any

import redis

from app.core.task import Run, Task
from app.settings import Settings
from app.store.enqueue import enqueue_runs
from app.store.keys import Keys
from app.store.runs import load_run
from app.store.semaphore import holders, waiting
from app.store.tasks import TaskStore
from tests.support.agents import AGENT
from tests.support.waiting import wait_for
from tests.support.workers import LocalServer, Workers, release_due, status_of, worker_task
from tests.workers.sink import AsyncSink


def queue(store: TaskStore, rq: redis.Redis, keys: Keys, task: Task) -> Run:
    run = store.run_now(task.id, AGENT)
    enqueue_runs(rq, keys, [(run.id, run.priority)])
    return run


def hold(server: LocalServer, ms: int) -> list[dict[str, Any]]:
    return [
        {
            "name": "hold",
            "action": "http.request",
            "params": {"url": f"{server.url}/hold/{{{{ run.id }}}}?ms={ms}"},
        }
    ]


def sink_hold(sink: AsyncSink, ms: int, group: str) -> list[dict[str, Any]]:
    return [
        {
            "name": "hold",
            "action": "http.request",
            "params": {"url": f"{sink.url}/hold/{{{{ run.id }}}}?ms={ms}&group={group}"},
        }
    ]


def test_twenty_runs_limit_three_on_four_workers(
    store: TaskStore,
    r: redis.Redis,
    rq_client: redis.Redis,
    keys: Keys,
    workers: Workers,
    sink: AsyncSink,
) -> None:
    for _ in range(4):
        workers.start()
    # two tasks of one agent share the key: three long holders, then seventeen short runs
    long_task, _ = store.create(
        worker_task(sink_hold(sink, 1500, "shared"), concurrency_key="shared", concurrency_limit=3)
    )
    short_task, _ = store.create(
        worker_task(sink_hold(sink, 100, "shared"), concurrency_key="shared", concurrency_limit=3)
    )
    holders_ = [queue(store, rq_client, keys, long_task) for _ in range(3)]
    for run in holders_:
        wait_for(lambda run=run: status_of(r, keys, run.id) == "running", what="a holder")
    waiting_runs = []
    for _ in range(17):
        run = queue(store, rq_client, keys, short_task)
        # each one parks before the next is queued, so the FIFO order is the creation order
        wait_for(lambda run=run: status_of(r, keys, run.id) == "pending", what="parking")
        waiting_runs.append(run)
    order = [run.id for run in waiting_runs]
    assert waiting(r, keys, AGENT, "shared") == order
    all_ids = [run.id for run in holders_ + waiting_runs]
    # runs leave the FIFO from its head only, in order: every look at it is a tail of the order
    looks = 0
    while not all(status_of(r, keys, i) == "succeeded" for i in all_ids):
        line = waiting(r, keys, AGENT, "shared")
        assert line == order[len(order) - len(line) :], line
        looks += 1
        time.sleep(0.01)
        assert looks < 6000, "the runs did not finish"
    assert waiting(r, keys, AGENT, "shared") == []
    # each run ran once, never more than three at a time, and three did run together
    assert all(sink.record.calls[i] == 1 for i in all_ids)
    assert sink.record.peak["shared"] == 3
    assert holders(r, keys, AGENT, "shared") == {}


def test_priority_one_runs_before_priority_nine(
    store: TaskStore,
    r: redis.Redis,
    rq_client: redis.Redis,
    keys: Keys,
    workers: Workers,
    http_server: LocalServer,
) -> None:
    low, _ = store.create(worker_task(hold(http_server, 10), priority=9))
    high, _ = store.create(worker_task(hold(http_server, 10), priority=1))
    low_run = queue(store, rq_client, keys, low)
    high_run = queue(store, rq_client, keys, high)
    proc = workers.start("--burst", "--concurrency", "1")
    assert proc.wait(30) == 0
    assert [name for name, _, _ in http_server.recorder.holds] == [high_run.id, low_run.id]
    first, second = load_run(r, keys, high_run.id), load_run(r, keys, low_run.id)
    assert first is not None and second is not None
    assert first.status == second.status == "succeeded"
    assert first.started_at is not None and second.started_at is not None
    assert first.started_at <= second.started_at


def test_a_killed_worker_s_run_is_retried_and_its_slot_freed_after_the_lease(
    settings: Settings,
    store: TaskStore,
    r: redis.Redis,
    rq_client: redis.Redis,
    keys: Keys,
    workers: Workers,
    http_server: LocalServer,
) -> None:
    lease = 1.0
    env = {"CHIME_SEMAPHORE_LEASE_SECONDS": str(lease)}
    task, _ = store.create(
        worker_task(
            [
                {
                    "name": "stall",
                    "action": "http.request",
                    # only the task's first call stalls: the one the killed worker makes
                    "params": {"url": f"{http_server.url}/stall/{{{{ task.id }}}}?s=30"},
                    "timeout_seconds": 60,
                }
            ],
            concurrency_key="k",
            concurrency_limit=1,
            max_retries=1,
            backoff_strategy="fixed",
        )
    )
    first = workers.start("--concurrency", "1", **env)
    stuck = queue(store, rq_client, keys, task)
    wait_for(lambda: http_server.recorder.requests, what="the first attempt's request")
    assert status_of(r, keys, stuck.id) == "running"
    behind = queue(store, rq_client, keys, task)  # the only worker is busy: it stays queued
    first.send_signal(signal.SIGKILL)
    first.wait(10)
    # the dead worker's slot: its lease lapses at the expiry it renewed last
    lapse = holders(r, keys, AGENT, "k")[stuck.id]

    workers.start(**env)
    wait_for(lambda: status_of(r, keys, behind.id) == "succeeded", what="the run behind")
    wait_for(lambda: status_of(r, keys, stuck.id) == "pending", what="the retry")
    retry = load_run(r, keys, stuck.id)
    assert retry is not None and retry.attempt == 2
    assert retry.error is not None and retry.error.startswith("worker lost")
    # the slot came free only once the dead worker's lease lapsed
    after = load_run(r, keys, behind.id)
    assert after is not None and after.started_at is not None
    assert after.started_at >= lapse
    # a scheduler pass releases the retry once due (fixed backoff of 0 s, raised to the floor)
    assert retry.next_attempt_at is not None
    assert retry.next_attempt_at >= lapse + settings.retry_min_delay_seconds * 1000
    wait_for(
        lambda: release_due(r, rq_client, settings) == {"queued": 1}, what="the retry's release"
    )
    wait_for(lambda: status_of(r, keys, stuck.id) == "succeeded", what="attempt 2")
    done = load_run(r, keys, stuck.id)
    assert done is not None and (done.attempt, done.error) == (2, None)
    assert holders(r, keys, AGENT, "k") == {}
    assert r.zcard(keys.running) == 0
