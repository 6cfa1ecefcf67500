"""``cancel_running`` in the run scripts (``lua/includes/chime_overlap_stop.lua``, through
``run_now``), against the real Redis: the runs it cancels before they start give their slots
to the next waiting runs at once, the agent's and the concurrency key's alike."""

import pytest
import redis

from app import clock
from app.settings import Settings
from app.store.keys import Keys
from app.store.limits import set_overrides
from app.store.runs import load_run, start_run
from app.store.tasks import TaskStore
from tests.support.agents import AGENT
from tests.support.workers import worker_task as make_task

LEASE_MS = 60_000


@pytest.fixture
def store(r: redis.Redis, keys: Keys, settings: Settings) -> TaskStore:
    return TaskStore(r, keys, settings)


def status(r: redis.Redis, keys: Keys, run_id: str) -> str:
    run = load_run(r, keys, run_id)
    assert run is not None
    return run.status


def test_a_replaced_run_s_agent_slot_goes_to_the_run_first_in_the_agent_s_line(
    r: redis.Redis, keys: Keys, store: TaskStore
) -> None:
    set_overrides(r, keys, AGENT, {"max_running": 1})
    task, _ = store.create(make_task(overlap_policy="cancel_running"))
    other, _ = store.create(make_task())
    first = store.run_now(task.id, AGENT)
    waiting = store.run_now(other.id, AGENT)
    assert (first.status, waiting.status) == ("queued", "pending")

    second = store.run_now(task.id, AGENT)

    assert status(r, keys, first.id) == "canceled"
    # the slot went to the run that waited first, at once; the new run waits behind it
    assert r.zrange(keys.agent_slots(AGENT), 0, -1) == [waiting.id]
    assert status(r, keys, waiting.id) == "queued"
    assert r.zscore(keys.outbox, waiting.id) is not None
    assert second.status == "pending"
    assert r.lrange(keys.agent_waiting(AGENT), 0, -1) == [second.id]


def test_a_replaced_run_handed_a_concurrency_slot_gives_it_to_the_next_waiting_run_at_once(
    r: redis.Redis, keys: Keys, settings: Settings, store: TaskStore
) -> None:
    task, _ = store.create(make_task(overlap_policy="cancel_running", concurrency_key="k"))
    other, _ = store.create(make_task(concurrency_key="k"))
    sem, fifo = keys.semaphore(AGENT, "k"), keys.semaphore_queue(AGENT, "k")
    first = store.run_now(task.id, AGENT)
    # as if a finishing run had handed the key's one slot to `first`, not started yet
    r.zadd(sem, {first.id: clock.now_ms() + LEASE_MS})
    parked = store.run_now(other.id, AGENT)
    parked_run = load_run(r, keys, parked.id)
    assert parked_run is not None
    assert start_run(r, keys, settings, parked_run).status == "parked"
    assert r.lrange(fifo, 0, -1) == [parked.id]
    pubsub = r.pubsub()
    pubsub.subscribe(keys.wake)
    assert pubsub.get_message(timeout=1)["type"] == "subscribe"

    before = clock.now_ms()
    store.run_now(task.id, AGENT)

    assert status(r, keys, first.id) == "canceled"
    assert r.zrange(sem, 0, -1) == [parked.id]
    assert r.lrange(fifo, 0, -1) == []
    assert status(r, keys, parked.id) == "queued"
    # due in the outbox now, and the scheduler is woken to enqueue it
    due = r.zscore(keys.outbox, parked.id)
    assert due is not None and before <= due <= clock.now_ms()
    msg = pubsub.get_message(timeout=1)
    assert msg is not None and msg["type"] == "message"
    pubsub.close()
