"""The per-agent gate in the run scripts, against the real Redis (``lua/includes/chime_agent_*.lua``
through ``run_now``, ``start_run``, ``finish_run``, ``renew_runs`` and ``release_delayed``):
``max_running`` slots taken at queue time and handed on in order, lapsed holders dropped, the
per-minute window, the retry floor; another agent never waits on them."""

import pytest
import redis

from app import clock
from app.settings import Settings
from app.store.cancel import cancel_run
from app.store.keys import Keys
from app.store.limits import hand_free_slots, set_overrides, usage
from app.store.runs import finish_run, load_run, recover_lapsed_runs, renew_run, start_run
from app.store.scripts import ScriptError
from app.store.tasks import TaskStore
from tests.support.agents import AGENT, OTHER_AGENT
from tests.support.workers import worker_task as make_task


@pytest.fixture
def store(r: redis.Redis, keys: Keys, settings: Settings) -> TaskStore:
    return TaskStore(r, keys, settings)


def start(r: redis.Redis, keys: Keys, settings: Settings, run_id: str) -> str:
    run = load_run(r, keys, run_id)
    assert run is not None
    return start_run(r, keys, settings, run).status


def status(r: redis.Redis, keys: Keys, run_id: str) -> str:
    run = load_run(r, keys, run_id)
    assert run is not None
    return run.status


def test_runs_over_max_running_wait_pending_and_are_handed_slots_in_order(
    r: redis.Redis, keys: Keys, settings: Settings, store: TaskStore
) -> None:
    set_overrides(r, keys, AGENT, {"max_running": 2})
    task, _ = store.create(make_task())
    runs = [store.run_now(task.id, AGENT) for _ in range(5)]
    assert [run.status for run in runs] == ["queued", "queued", "pending", "pending", "pending"]
    assert r.lrange(keys.agent_waiting(AGENT), 0, -1) == [run.id for run in runs[2:]]
    assert r.zscore(keys.outbox, runs[2].id) is None
    # the other agent is not held by it
    other, _ = store.create(make_task(created_by=OTHER_AGENT))
    assert store.run_now(other.id, OTHER_AGENT).status == "queued"

    assert start(r, keys, settings, runs[0].id) == "running"
    got = usage(r, keys, AGENT, clock.now_ms())
    assert (got.running, got.in_flight, got.waiting, got.runs_last_minute) == (1, 2, 3, 1)
    done = finish_run(r, keys, settings, runs[0].id, 1, succeeded=True, steps=[])
    assert done.handed == [(runs[2].id, 5)]
    assert status(r, keys, runs[2].id) == "queued"
    assert r.zscore(keys.outbox, runs[2].id) is not None
    # a failed attempt that will be retried gives its slot back too
    assert start(r, keys, settings, runs[1].id) == "running"
    retry = finish_run(r, keys, settings, runs[1].id, 1, succeeded=False, steps=[], error="x")
    assert retry.status == "pending"
    assert retry.handed == [(runs[3].id, 5)]


def test_a_canceled_waiting_run_is_skipped_when_slots_are_handed(
    r: redis.Redis, keys: Keys, settings: Settings, store: TaskStore
) -> None:
    set_overrides(r, keys, AGENT, {"max_running": 1})
    task, _ = store.create(make_task())
    first = store.run_now(task.id, AGENT)
    second = store.run_now(task.id, AGENT)
    third = store.run_now(task.id, AGENT)
    r.hset(keys.run(second.id), "status", "canceled")
    assert start(r, keys, settings, first.id) == "running"
    done = finish_run(r, keys, settings, first.id, 1, succeeded=True, steps=[])
    assert done.handed == [(third.id, 5)]


def test_a_lapsed_holder_frees_its_slot_so_a_dead_worker_leaks_none(
    r: redis.Redis, keys: Keys, settings: Settings, store: TaskStore
) -> None:
    set_overrides(r, keys, AGENT, {"max_running": 1})
    task, _ = store.create(make_task(max_retries=0))
    first = store.run_now(task.id, AGENT)
    assert start(r, keys, settings, first.id) == "running"
    run = load_run(r, keys, first.id)
    assert run is not None
    assert renew_run(r, keys, settings, run, 1, None)
    lease = r.zscore(keys.agent_slots(AGENT), first.id)
    assert lease is not None and lease > clock.now_ms()
    waiting = store.run_now(task.id, AGENT)
    assert waiting.status == "pending"
    # the worker dies: after the lease, the recovery ends the attempt and hands the slot on
    clock.shift(settings.semaphore_lease_seconds * 1000 + 1)
    recovered = recover_lapsed_runs(r, keys, settings)
    assert [x.run_id for x in recovered] == [first.id]
    assert recovered[0].finished.handed == [(waiting.id, 5)]
    assert r.zrange(keys.agent_slots(AGENT), 0, -1) == [waiting.id]


def test_a_queued_run_whose_slot_lapsed_waits_first_in_line_when_no_slot_is_free(
    r: redis.Redis, keys: Keys, settings: Settings, store: TaskStore
) -> None:
    set_overrides(r, keys, AGENT, {"max_running": 1})
    task, _ = store.create(make_task())
    old = store.run_now(task.id, AGENT)
    clock.shift(settings.semaphore_lease_seconds * 1000 + 1)
    newer = store.run_now(task.id, AGENT)  # takes the lapsed slot
    last = store.run_now(task.id, AGENT)
    assert (newer.status, last.status) == ("queued", "pending")
    assert start(r, keys, settings, old.id) == "parked"
    assert status(r, keys, old.id) == "pending"
    assert r.lrange(keys.agent_waiting(AGENT), 0, -1) == [old.id, last.id]
    assert start(r, keys, settings, newer.id) == "running"
    done = finish_run(r, keys, settings, newer.id, 1, succeeded=True, steps=[])
    assert done.handed == [(old.id, 5)]


def test_starts_over_the_minute_window_wait_until_it_allows(
    r: redis.Redis, keys: Keys, settings: Settings, store: TaskStore
) -> None:
    set_overrides(r, keys, AGENT, {"max_runs_per_minute": 2})
    task, _ = store.create(make_task())
    t0 = clock.now_ms()
    runs = [store.run_now(task.id, AGENT) for _ in range(4)]
    assert [run.status for run in runs] == ["queued"] * 4
    assert start(r, keys, settings, runs[0].id) == "running"
    first_start = load_run(r, keys, runs[0].id)
    assert first_start is not None and first_start.started_at is not None
    assert start(r, keys, settings, runs[1].id) == "running"
    # the third start would be the third in a minute: it waits, pending, until the window allows
    assert start(r, keys, settings, runs[2].id) == "parked"
    held = load_run(r, keys, runs[2].id)
    assert held is not None and held.status == "pending"
    assert held.next_attempt_at == first_start.started_at + 60_000
    assert r.zscore(keys.delayed, runs[2].id) == held.next_attempt_at
    assert r.zscore(keys.outbox, runs[2].id) is None
    # a run queued while the window is full waits in delayed too, without reaching RQ
    late = store.run_now(task.id, AGENT)
    assert late.status == "pending"
    assert late.next_attempt_at == held.next_attempt_at
    # another agent starts at once
    other, _ = store.create(make_task(created_by=OTHER_AGENT))
    other_run = store.run_now(other.id, OTHER_AGENT)
    assert start(r, keys, settings, other_run.id) == "running"
    assert t0 <= first_start.started_at


def test_no_retry_waits_less_than_the_floor(
    r: redis.Redis, keys: Keys, settings: Settings, store: TaskStore
) -> None:
    task, _ = store.create(
        make_task(max_retries=25, retry_delay_seconds=0.0, backoff_strategy="fixed")
    )
    run = store.run_now(task.id, AGENT)
    assert start(r, keys, settings, run.id) == "running"
    before = clock.now_ms()
    retry = finish_run(r, keys, settings, run.id, 1, succeeded=False, steps=[], error="x")
    assert retry.next_attempt_at is not None
    assert retry.next_attempt_at >= before + round(settings.retry_min_delay_seconds * 1000)
    assert settings.retry_min_delay_seconds == 1.0


def test_a_slot_freed_by_its_lease_reaches_the_waiting_runs_without_another_event(
    r: redis.Redis, keys: Keys, settings: Settings, store: TaskStore
) -> None:
    """A run canceled while queued by code that does not give its slot back: the slot lapses,
    and the sweep of the waiting lines hands it on (nobody else would)."""
    set_overrides(r, keys, AGENT, {"max_running": 1})
    task, _ = store.create(make_task())
    lost = store.run_now(task.id, AGENT)
    waiting = store.run_now(task.id, AGENT)
    assert waiting.status == "pending"
    assert r.smembers(keys.awaiting) == {AGENT}
    r.hset(keys.run(lost.id), "status", "canceled")
    assert hand_free_slots(r, keys, settings, clock.now_ms()) == []
    clock.shift(settings.semaphore_lease_seconds * 1000 + 1)
    assert hand_free_slots(r, keys, settings, clock.now_ms()) == [(waiting.id, 5)]
    assert status(r, keys, waiting.id) == "queued"
    assert r.zscore(keys.outbox, waiting.id) is not None
    assert r.smembers(keys.awaiting) == set()


def test_a_duplicate_job_of_a_run_canceled_while_queued_frees_its_slot(
    r: redis.Redis, keys: Keys, settings: Settings, store: TaskStore
) -> None:
    set_overrides(r, keys, AGENT, {"max_running": 1})
    task, _ = store.create(make_task())
    canceled = store.run_now(task.id, AGENT)
    r.hset(keys.run(canceled.id), "status", "canceled")
    assert r.zscore(keys.agent_slots(AGENT), canceled.id) is not None
    run = load_run(r, keys, canceled.id)
    assert run is not None
    with pytest.raises(ScriptError):
        start_run(r, keys, settings, run)
    assert r.zscore(keys.agent_slots(AGENT), canceled.id) is None


def test_canceling_a_queued_run_hands_its_agent_slot_on_at_once(
    r: redis.Redis, keys: Keys, settings: Settings, store: TaskStore
) -> None:
    set_overrides(r, keys, AGENT, {"max_running": 1})
    task, _ = store.create(make_task())
    queued = store.run_now(task.id, AGENT)
    waiting = store.run_now(task.id, AGENT)
    assert (queued.status, waiting.status) == ("queued", "pending")

    assert cancel_run(r, keys, settings, queued.id, AGENT).outcome == "canceled"

    assert r.zscore(keys.agent_slots(AGENT), queued.id) is None
    assert r.zscore(keys.agent_slots(AGENT), waiting.id) is not None
    assert status(r, keys, waiting.id) == "queued"
    assert r.lrange(keys.agent_waiting(AGENT), 0, -1) == []


def test_canceling_a_task_hands_the_slots_of_its_unstarted_runs_to_the_agents_other_runs(
    r: redis.Redis, keys: Keys, settings: Settings, store: TaskStore
) -> None:
    set_overrides(r, keys, AGENT, {"max_running": 2})
    doomed, _ = store.create(make_task())
    other, _ = store.create(make_task())
    held = [store.run_now(doomed.id, AGENT) for _ in range(2)]
    waiting = [store.run_now(other.id, AGENT) for _ in range(3)]
    assert [run.status for run in held + waiting] == ["queued"] * 2 + ["pending"] * 3

    _, dequeued = store.cancel(doomed.id, AGENT)

    assert sorted(dequeued) == sorted(run.id for run in held)
    assert [status(r, keys, run.id) for run in waiting] == ["queued", "queued", "pending"]
    assert sorted(r.zrange(keys.agent_slots(AGENT), 0, -1)) == sorted(run.id for run in waiting[:2])
    assert r.zscore(keys.outbox, waiting[0].id) is not None


def test_a_queued_run_canceled_by_cancel_running_leaves_its_agent_slot_to_the_new_run(
    r: redis.Redis, keys: Keys, settings: Settings, store: TaskStore
) -> None:
    set_overrides(r, keys, AGENT, {"max_running": 1})
    task, _ = store.create(make_task(overlap_policy="cancel_running"))
    first = store.run_now(task.id, AGENT)
    second = store.run_now(task.id, AGENT)

    assert status(r, keys, first.id) == "canceled"
    assert second.status == "queued"
    assert r.zrange(keys.agent_slots(AGENT), 0, -1) == [second.id]
