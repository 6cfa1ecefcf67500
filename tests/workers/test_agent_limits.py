"""Per-agent limits held by real ``chime worker`` processes: ``max_running`` across workers,
runs handed on in order, another agent's run unaffected by a flood, no slot leaked by a killed
worker."""

import signal
from typing import Any

import redis

from app.core.task import Run, Task
from app.settings import Settings
from app.store.enqueue import enqueue_runs
from app.store.keys import Keys
from app.store.limits import set_overrides
from app.store.runs import load_run
from app.store.tasks import TaskStore
from tests.support.agents import AGENT, OTHER_AGENT
from tests.support.waiting import wait_for
from tests.support.workers import Workers, release_due, status_of
from tests.support.workers import worker_task as make_task
from tests.workers.sink import AsyncSink


def hold(sink: AsyncSink, ms: int, group: str) -> list[dict[str, Any]]:
    return [
        {
            "name": "hold",
            "action": "http.request",
            "params": {"url": f"{sink.url}/hold/{{{{ run.id }}}}?ms={ms}&group={group}"},
        }
    ]


def run_many(store: TaskStore, rq: redis.Redis, keys: Keys, task: Task, n: int) -> list[Run]:
    """``n`` runs now, the queued ones put on RQ, as ``POST /tasks/{id}/run_now`` does."""
    runs = [store.run_now(task.id, task.created_by) for _ in range(n)]
    enqueue_runs(rq, keys, [(r.id, r.priority) for r in runs if r.status == "queued"])
    return runs


def count(r: redis.Redis, keys: Keys, runs: list[Run], status: str) -> int:
    return sum(1 for run in runs if status_of(r, keys, run.id) == status)


def test_max_running_holds_across_two_workers_and_runs_start_in_order(
    store: TaskStore,
    r: redis.Redis,
    rq_client: redis.Redis,
    keys: Keys,
    workers: Workers,
    sink: AsyncSink,
) -> None:
    set_overrides(r, keys, AGENT, {"max_running": 3})
    task, _ = store.create(make_task(hold(sink, 300, "a"), priority=1))
    runs = run_many(store, rq_client, keys, task, 24)
    assert count(r, keys, runs, "queued") == 3
    assert count(r, keys, runs, "pending") == 21
    order = [run.id for run in runs[3:]]
    assert r.lrange(keys.agent_waiting(AGENT), 0, -1) == order
    workers.start("--concurrency", "50")
    workers.start("--concurrency", "50")

    def all_done() -> bool:
        # handed a slot in the order they waited: runs leave the agent's line from its head
        # only, so every look at it is a tail of the order
        line = r.lrange(keys.agent_waiting(AGENT), 0, -1)
        assert line == order[len(order) - len(line) :], line
        return count(r, keys, runs, "succeeded") == 24

    wait_for(all_done, timeout=120, what="24 runs")
    assert sink.record.peak["a"] <= 3
    assert sink.record.peak["a"] >= 2
    # two workers may start two handed runs in either order, never one that waited behind
    # more than the three slots
    arrived = [a for a in sink.record.arrivals if a in {run.id for run in runs}]
    for k, run in enumerate(runs):
        assert abs(arrived.index(run.id) - k) <= 3
    assert r.zcard(keys.agent_slots(AGENT)) == 0
    assert r.llen(keys.agent_waiting(AGENT)) == 0


def test_another_agent_s_run_is_not_held_behind_a_thousand_queued_at_priority_one(
    store: TaskStore,
    r: redis.Redis,
    rq_client: redis.Redis,
    keys: Keys,
    workers: Workers,
    sink: AsyncSink,
) -> None:
    flood, _ = store.create(make_task(hold(sink, 300, "a"), priority=1))
    runs = run_many(store, rq_client, keys, flood, 1000)
    assert count(r, keys, runs, "queued") == 100  # the default max_running
    lone, _ = store.create(make_task(hold(sink, 10, "b"), created_by=OTHER_AGENT, priority=5))
    (b_run,) = run_many(store, rq_client, keys, lone, 1)
    assert b_run.status == "queued"
    workers.start("--concurrency", "150")
    try:
        wait_for(lambda: status_of(r, keys, b_run.id) == "succeeded", timeout=60, what="B's run")
    except AssertionError:
        print(
            r.hgetall(keys.run(b_run.id)),
            workers.output()[-3000:],
            sink.record.calls.most_common(3),
            len(sink.record.arrivals),
        )
        raise
    # B's run went in with A's first hundred, not after A's thousand
    assert sink.record.arrivals.index(b_run.id) <= 110
    assert count(r, keys, runs, "succeeded") < 900
    assert sink.record.peak["a"] <= 100


def test_a_killed_worker_leaks_no_slot_of_its_agent(
    settings: Settings,
    store: TaskStore,
    r: redis.Redis,
    rq_client: redis.Redis,
    keys: Keys,
    workers: Workers,
    sink: AsyncSink,
) -> None:
    set_overrides(r, keys, AGENT, {"max_running": 2})
    env = {"CHIME_SEMAPHORE_LEASE_SECONDS": "2"}
    step = {
        "name": "stall",
        "action": "http.request",
        "params": {"url": f"{sink.url}/stall/{{{{ run.id }}}}?s=120"},
        "timeout_seconds": 300,
    }
    stalled, _ = store.create(make_task([step], max_retries=1, backoff_strategy="fixed"))
    quick, _ = store.create(make_task())
    runs = run_many(store, rq_client, keys, stalled, 2) + run_many(store, rq_client, keys, quick, 2)
    doomed = workers.start("--concurrency", "10", **env)
    wait_for(lambda: len(sink.record.arrivals) == 2, timeout=60, what="2 runs in flight")
    assert count(r, keys, runs, "running") == 2
    assert count(r, keys, runs, "pending") == 2
    doomed.send_signal(signal.SIGKILL)
    doomed.wait(10)
    workers.start("--concurrency", "10", **env)

    def done() -> bool:
        release_due(r, rq_client, settings)
        return count(r, keys, runs, "succeeded") == 4

    wait_for(done, timeout=120, what="every run done after the kill")
    for run in runs[:2]:
        ended = load_run(r, keys, run.id)
        assert ended is not None and ended.attempt == 2
    assert r.zcard(keys.agent_slots(AGENT)) == 0


def test_a_zero_delay_retry_storm_waits_the_floor_between_attempts(
    settings: Settings,
    store: TaskStore,
    r: redis.Redis,
    rq_client: redis.Redis,
    keys: Keys,
    workers: Workers,
    sink: AsyncSink,
) -> None:
    """``max_retries`` 25 with a 0 s delay no longer runs 26 attempts at once."""
    step = {"name": "f", "action": "fail", "params": {"message": "again"}}
    task, _ = store.create(
        make_task([step], max_retries=25, retry_delay_seconds=0.0, backoff_strategy="fixed")
    )
    (run,) = run_many(store, rq_client, keys, task, 1)
    workers.start("--concurrency", "10")

    # attempt n waiting: (when attempt n - 1 started, when attempt n may start)
    waits: dict[int, tuple[int, int]] = {}

    def three_retries() -> bool:
        release_due(r, rq_client, settings)
        got = load_run(r, keys, run.id)
        if got is not None and got.status == "pending" and got.next_attempt_at is not None:
            assert got.started_at is not None
            waits[got.attempt] = (got.started_at, got.next_attempt_at)
        return {2, 3, 4} <= set(waits)

    wait_for(three_retries, timeout=90, what="three retries")
    floor_ms = settings.retry_min_delay_seconds * 1000
    for n in (2, 3, 4):
        started, allowed = waits[n]
        assert allowed - started >= floor_ms
    for n in (2, 3):
        # attempt n started only once its wait was over
        assert waits[n + 1][0] >= waits[n][1]
    # another agent's run goes on meanwhile
    other, _ = store.create(make_task(hold(sink, 10, "b"), created_by=OTHER_AGENT))
    (other_run,) = run_many(store, rq_client, keys, other, 1)
    wait_for(lambda: status_of(r, keys, other_run.id) == "succeeded", what="the other run")
