"""The run lifecycle scripts against the real Redis: start_run, renew_run, finish_run.

Each error return is checked to leave every key exactly as it was.
"""

from typing import Any

import pytest
import redis

from app import clock
from app.settings import Settings
from app.store import scripts
from app.store.keys import Keys
from app.store.runs import (
    LOST_WORKER_ERROR,
    Known,
    finish_run,
    load_run,
    recover_lapsed_runs,
    renew_run,
    start_run,
)
from app.store.scripts import ErrorCode, ScriptError
from app.store.semaphore import holders, slot_keys, waiting
from tests.support.agents import AGENT
from tests.support.workers import queued_run, snapshot, store_task, worker_task

LEASE_MS = 60_000


def start(r: redis.Redis, keys: Keys, settings: Settings, run_id: str) -> Any:
    run = load_run(r, keys, run_id)
    assert run is not None
    return start_run(r, keys, settings, run)


def test_start_moves_a_queued_run_to_running_with_a_lease(
    r: redis.Redis, keys: Keys, settings: Settings
) -> None:
    task = store_task(r, keys, worker_task())
    run_id = queued_run(r, keys, task)
    clock.shift(5_000)
    now = clock.now_ms()
    started = start(r, keys, settings, run_id)
    assert (started.status, started.attempt, started.handed) == ("running", 1, [])
    run = load_run(r, keys, run_id)
    assert run is not None and run.status == "running"
    assert run.started_at == pytest.approx(now, abs=1000)
    assert r.zscore(keys.running, run_id) == pytest.approx(clock.now_ms() + LEASE_MS, abs=1000)
    assert r.zscore(keys.outbox, run_id) is None


def test_the_same_start_sent_again_gets_its_start_back_and_another_is_refused(
    r: redis.Redis, keys: Keys, settings: Settings
) -> None:
    """A client that retries a start whose reply was lost (its connection dropped) sends the
    very same call: it gets the run back; any other start is refused."""
    task = store_task(r, keys, worker_task())
    run_id = queued_run(r, keys, task)
    sem, fifo = keys.run(run_id), keys.run(run_id)
    call_keys = [keys.run(run_id), keys.task(task.id), keys.running, keys.outbox, sem, fifo]
    args = [clock.now_ms(), LEASE_MS, "", keys.run(""), 30_000, "token-1"]
    start_run_script = scripts.script(r, "start_run")
    assert start_run_script(keys=call_keys, args=args) == ["running", 1]
    after_first = snapshot(r)
    assert start_run_script(keys=call_keys, args=args) == ["running", 1]
    assert snapshot(r) == after_first
    for other in ("token-2", ""):
        assert start_run_script(keys=call_keys, args=[*args[:5], other]) == [-2, "running"]
    assert snapshot(r) == after_first


@pytest.mark.parametrize("status", ["running", "canceled", "succeeded", "pending"])
def test_start_leaves_a_run_that_is_not_queued_alone(
    r: redis.Redis, keys: Keys, settings: Settings, status: str
) -> None:
    task = store_task(r, keys, worker_task())
    run_id = queued_run(r, keys, task, status=status)
    before = snapshot(r)
    with pytest.raises(ScriptError) as exc:
        start(r, keys, settings, run_id)
    assert (exc.value.code, exc.value.detail) == (ErrorCode.CONFLICT, status)
    assert snapshot(r) == before


def test_start_refuses_missing_runs_and_tasks_and_stale_keys(
    r: redis.Redis, keys: Keys, settings: Settings
) -> None:
    task = worker_task(concurrency_key="k")
    run_id = queued_run(r, keys, task)  # the task hash is not stored
    sem, fifo = slot_keys(keys, AGENT, "k", run_id)
    call = scripts.script(r, "start_run")
    before = snapshot(r)

    def args(ckey: str) -> list[Any]:
        return [clock.now_ms(), LEASE_MS, ckey, keys.run(""), 30_000]

    base = [keys.task(task.id), keys.running, keys.outbox, sem, fifo]
    assert call(keys=[keys.run("nope"), *base], args=args("k")) == [-1, "run"]
    assert call(keys=[keys.run(run_id), *base], args=args("k")) == [-1, "task"]
    store_task(r, keys, task)
    before = snapshot(r)
    assert call(keys=[keys.run(run_id), *base], args=args("other")) == [-3, "concurrency_key"]
    assert snapshot(r) == before


def test_no_free_slot_parks_the_run_in_fifo_order(
    r: redis.Redis, keys: Keys, settings: Settings
) -> None:
    task = store_task(r, keys, worker_task(concurrency_key="k", concurrency_limit=2))
    ids = [queued_run(r, keys, task) for _ in range(4)]
    statuses = [start(r, keys, settings, i).status for i in ids]
    assert statuses == ["running", "running", "parked", "parked"]
    assert set(holders(r, keys, AGENT, "k")) == set(ids[:2])
    assert waiting(r, keys, AGENT, "k") == ids[2:]
    parked = load_run(r, keys, ids[2])
    assert parked is not None and parked.status == "pending"
    assert r.zscore(keys.outbox, ids[2]) is None
    assert r.zscore(keys.running, ids[2]) is None


def test_finishing_hands_the_slot_to_the_head_of_the_fifo(
    r: redis.Redis, keys: Keys, settings: Settings
) -> None:
    task = store_task(r, keys, worker_task(concurrency_key="k", concurrency_limit=1))
    first, second, third = (queued_run(r, keys, task, priority=3) for _ in range(3))
    for run_id in (first, second, third):
        start(r, keys, settings, run_id)
    r.hset(keys.run(third), "status", "canceled")  # canceled while waiting: skipped later
    done = finish_run(r, keys, settings, first, 1, succeeded=True, steps=[{"name": "s"}])
    assert done.status == "succeeded"
    assert done.handed == [(second, 3)]
    assert list(holders(r, keys, AGENT, "k")) == [second]
    assert waiting(r, keys, AGENT, "k") == [third]
    handed = load_run(r, keys, second)
    assert handed is not None and handed.status == "queued"
    assert r.zscore(keys.outbox, second) is not None
    # the handed run starts without waiting again: it already holds the slot
    assert start(r, keys, settings, second).status == "running"
    done = finish_run(r, keys, settings, second, 1, succeeded=True, steps=[])
    assert done.handed == []  # the canceled run was dropped from the line
    assert holders(r, keys, AGENT, "k") == {}
    assert waiting(r, keys, AGENT, "k") == []


def test_a_lapsed_holder_frees_its_slot_for_the_fifo_head_first(
    r: redis.Redis, keys: Keys, settings: Settings
) -> None:
    task = store_task(r, keys, worker_task(concurrency_key="k", concurrency_limit=1))
    dead_id, waiting_id = (queued_run(r, keys, task) for _ in range(2))
    start(r, keys, settings, dead_id)
    assert start(r, keys, settings, waiting_id).status == "parked"
    clock.shift(LEASE_MS + 1)
    newcomer = queued_run(r, keys, task)
    started = start(r, keys, settings, newcomer)
    assert started.status == "parked"
    assert started.handed == [(waiting_id, 5)]
    assert list(holders(r, keys, AGENT, "k")) == [waiting_id]
    assert waiting(r, keys, AGENT, "k") == [newcomer]


def test_a_handed_over_run_that_lost_its_slot_keeps_its_turn(
    r: redis.Redis, keys: Keys, settings: Settings
) -> None:
    task = store_task(r, keys, worker_task(concurrency_key="k", concurrency_limit=1))
    a, b, c = (queued_run(r, keys, task) for _ in range(3))
    start(r, keys, settings, a)
    start(r, keys, settings, b)
    start(r, keys, settings, c)
    finish_run(r, keys, settings, a, 1, succeeded=True, steps=[])  # b is handed the slot
    clock.shift(LEASE_MS + 1)  # ... but no worker starts it within the lease
    d = queued_run(r, keys, task)
    assert start(r, keys, settings, d).handed == [(c, 5)]  # c takes b's lapsed slot
    assert start(r, keys, settings, b).status == "parked"
    assert waiting(r, keys, AGENT, "k") == [b, d]


def test_a_failed_attempt_with_retries_left_waits_in_delayed(
    r: redis.Redis, keys: Keys, settings: Settings
) -> None:
    task = store_task(
        r, keys, worker_task(max_retries=2, backoff_strategy="linear", retry_delay_seconds=10)
    )
    run_id = queued_run(r, keys, task)
    start(r, keys, settings, run_id)
    pubsub = r.pubsub()
    pubsub.subscribe(keys.wake)
    assert pubsub.get_message(timeout=1)["type"] == "subscribe"
    now = clock.now_ms()
    done = finish_run(r, keys, settings, run_id, 1, succeeded=False, steps=[], error="boom")
    assert done.status == "pending"
    # the retry is the earliest delayed run: schedulers are woken to sleep until it
    wake = pubsub.get_message(timeout=1)
    assert wake is not None and wake["data"] == str(done.next_attempt_at)
    pubsub.close()
    assert done.next_attempt_at == pytest.approx(now + 10_000, abs=1000)
    run = load_run(r, keys, run_id)
    assert run is not None
    assert (run.status, run.attempt, run.error) == ("pending", 2, "boom")
    assert run.next_attempt_at == done.next_attempt_at
    assert r.zscore(keys.delayed, run_id) == done.next_attempt_at
    assert r.zscore(keys.running, run_id) is None
    assert run.finished_at is None
    # the second retry of a linear backoff waits twice the base
    r.hset(keys.run(run_id), "status", "queued")
    start(r, keys, settings, run_id)
    now = clock.now_ms()
    done = finish_run(r, keys, settings, run_id, 2, succeeded=False, steps=[], error="again")
    assert done.next_attempt_at == pytest.approx(now + 20_000, abs=1000)
    r.hset(keys.run(run_id), "status", "queued")
    start(r, keys, settings, run_id)
    done = finish_run(r, keys, settings, run_id, 3, succeeded=False, steps=[], error="last")
    run = load_run(r, keys, run_id)
    assert run is not None
    assert (done.status, run.status, run.attempt, run.error) == ("failed", "failed", 3, "last")
    assert run.finished_at is not None and run.next_attempt_at is None


def test_success_clears_the_previous_error_and_stores_steps(
    r: redis.Redis, keys: Keys, settings: Settings
) -> None:
    task = store_task(r, keys, worker_task())
    run_id = queued_run(r, keys, task, error="old failure", attempt=2, max_attempts=3)
    start(r, keys, settings, run_id)
    finish_run(r, keys, settings, run_id, 2, succeeded=True, steps=[{"name": "s", "output": 1}])
    run = load_run(r, keys, run_id)
    assert run is not None
    assert (run.status, run.error, run.steps) == ("succeeded", None, [{"name": "s", "output": 1}])


def test_a_failed_attempt_of_a_canceled_task_is_not_retried(
    r: redis.Redis, keys: Keys, settings: Settings
) -> None:
    task = store_task(r, keys, worker_task(max_retries=3))
    run_id = queued_run(r, keys, task)
    start(r, keys, settings, run_id)
    r.hset(keys.task(task.id), "status", "canceled")
    done = finish_run(r, keys, settings, run_id, 1, succeeded=False, steps=[], error="x")
    assert done.status == "canceled"
    assert r.zscore(keys.delayed, run_id) is None


@pytest.mark.parametrize(
    ("trigger", "succeeded", "completes"),
    [("schedule", True, True), ("schedule", False, True), ("run_now", True, False)],
)
def test_a_once_task_completes_when_its_scheduled_run_ends(
    r: redis.Redis,
    keys: Keys,
    settings: Settings,
    trigger: str,
    succeeded: bool,
    completes: bool,
) -> None:
    task = store_task(r, keys, worker_task(schedule_kind="once", max_retries=0))
    run_id = queued_run(r, keys, task, trigger=trigger)
    start(r, keys, settings, run_id)
    done = finish_run(r, keys, settings, run_id, 1, succeeded=succeeded, steps=[])
    assert done.task_completed is completes
    status = r.hget(keys.task(task.id), "status")
    assert status == ("completed" if completes else "active")
    in_active = r.zscore(keys.index(AGENT, "active", "once"), task.id) is not None
    in_completed = r.zscore(keys.index(AGENT, "completed", None), task.id) is not None
    assert (in_active, in_completed) == (not completes, completes)
    assert r.zscore(keys.index(None, None, None), task.id) is not None


def test_a_once_task_with_a_retry_pending_is_not_completed_yet(
    r: redis.Redis, keys: Keys, settings: Settings
) -> None:
    task = store_task(r, keys, worker_task(schedule_kind="once", max_retries=1))
    run_id = queued_run(r, keys, task, trigger="schedule")
    start(r, keys, settings, run_id)
    done = finish_run(r, keys, settings, run_id, 1, succeeded=False, steps=[])
    assert (done.status, done.task_completed) == ("pending", False)
    assert r.hget(keys.task(task.id), "status") == "active"


def test_finish_refusals_change_nothing(r: redis.Redis, keys: Keys, settings: Settings) -> None:
    task = store_task(r, keys, worker_task(schedule_kind="once"))
    run_id = queued_run(r, keys, task, trigger="schedule")
    start(r, keys, settings, run_id)
    before = snapshot(r)
    with pytest.raises(ScriptError) as exc:
        finish_run(r, keys, settings, run_id, 2, succeeded=True, steps=[])
    assert (exc.value.code, exc.value.detail) == (ErrorCode.STALE, "running:1")
    with pytest.raises(ScriptError) as exc:
        finish_run(r, keys, settings, run_id, 1, succeeded=False, steps=[], lapsed_only=True)
    assert exc.value.detail == "alive"
    with pytest.raises(ScriptError) as exc:
        finish_run(r, keys, settings, "missing", 1, succeeded=True, steps=[])
    assert exc.value.code == ErrorCode.NOT_FOUND
    # a snapshot of the task status that moved on is refused before any write
    call = scripts.script(r, "finish_run")
    result = call(
        keys=[
            keys.run(run_id),
            keys.task(task.id),
            keys.running,
            keys.delayed,
            keys.outbox,
            keys.run(run_id),
            keys.run(run_id),
            *keys.indexes(AGENT, "paused", "once"),
            *keys.indexes(AGENT, "completed", "once"),
        ],
        args=[
            clock.now_ms(),
            1,
            "succeeded",
            "[]",
            "",
            0,
            "",
            "paused",
            LEASE_MS,
            keys.run(""),
            30_000,
            "0",
            keys.wake,
        ],
    )
    assert result == [-3, "task:active"]
    assert snapshot(r) == before


def test_renew_extends_both_leases_until_the_attempt_is_over(
    r: redis.Redis, keys: Keys, settings: Settings
) -> None:
    task = store_task(r, keys, worker_task(concurrency_key="k"))
    run_id = queued_run(r, keys, task)
    start(r, keys, settings, run_id)
    run = load_run(r, keys, run_id)
    assert run is not None
    clock.shift(LEASE_MS // 2)
    assert renew_run(r, keys, settings, run, 1, "k")
    expected = clock.now_ms() + LEASE_MS
    assert r.zscore(keys.running, run_id) == pytest.approx(expected, abs=1000)
    assert holders(r, keys, AGENT, "k")[run_id] == pytest.approx(expected, abs=1000)
    assert not renew_run(r, keys, settings, run, 2, "k")  # not this attempt
    clock.shift(LEASE_MS + 1)
    assert not renew_run(r, keys, settings, run, 1, "k")  # lapsed: counted as lost
    clock.shift(-(LEASE_MS + 1))
    finish_run(r, keys, settings, run_id, 1, succeeded=True, steps=[])
    assert not renew_run(r, keys, settings, run, 1, "k")


def test_recovery_retries_attempts_whose_heartbeat_lapsed_and_frees_their_slots(
    r: redis.Redis, keys: Keys, settings: Settings
) -> None:
    task = store_task(r, keys, worker_task(concurrency_key="k", max_retries=1))
    lost, alive_later, waiter = (queued_run(r, keys, task) for _ in range(3))
    r.hset(keys.task(task.id), "concurrency_limit", 2)
    start(r, keys, settings, lost)
    clock.shift(LEASE_MS // 2)
    start(r, keys, settings, alive_later)
    assert start(r, keys, settings, waiter).status == "parked"
    assert recover_lapsed_runs(r, keys, settings) == []
    clock.shift(LEASE_MS // 2 + 1)
    (recovered,) = recover_lapsed_runs(r, keys, settings)
    assert (recovered.run_id, recovered.attempt) == (lost, 1)
    assert recovered.finished.status == "pending"
    assert recovered.finished.handed == [(waiter, 5)]
    run = load_run(r, keys, lost)
    assert run is not None
    assert (run.status, run.attempt, run.error) == ("pending", 2, LOST_WORKER_ERROR)
    assert set(holders(r, keys, AGENT, "k")) == {alive_later, waiter}
    # a second sweep finds nothing more; the last attempt lost ends the run failed
    assert recover_lapsed_runs(r, keys, settings) == []
    r.hset(keys.run(lost), "status", "queued")
    r.hset(keys.task(task.id), "concurrency_limit", 3)
    start(r, keys, settings, lost)
    clock.shift(LEASE_MS + 1)
    outcomes = {x.run_id: x.finished.status for x in recover_lapsed_runs(r, keys, settings)}
    assert outcomes[lost] == "failed"


def test_a_stale_snapshot_passed_by_the_job_is_read_again(
    r: redis.Redis, keys: Keys, settings: Settings
) -> None:
    task = store_task(r, keys, worker_task(schedule_kind="once"))
    run_id = queued_run(r, keys, task, trigger="schedule")
    run = load_run(r, keys, run_id)
    assert run is not None
    start_run(r, keys, settings, run, task)
    # paused while the run ran: the job's copy of the task says active
    r.hset(keys.task(task.id), "status", "paused")
    for index in keys.indexes(AGENT, "active", "once"):
        r.zrem(index, task.id)
    for index in keys.indexes(AGENT, "paused", "once"):
        r.zadd(index, {task.id: task.created_at})
    done = finish_run(
        r, keys, settings, run_id, 1, succeeded=True, steps=[], known=Known(run, task, None)
    )
    assert done.task_completed
    assert r.zscore(keys.index(AGENT, "paused", None), task.id) is None
    assert r.zscore(keys.index(AGENT, "completed", "once"), task.id) is not None
