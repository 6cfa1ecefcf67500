"""lua/release_claims.lua: claims go back to their schedule at the time their record holds."""

import pytest
import redis

from app import clock
from app.settings import Settings
from app.store.keys import Keys
from app.store.scheduling import Claim, claim, release_claims
from app.store.tasks import TaskStore
from tests.support.agents import AGENT
from tests.support.scheduler import add_run, create, db_state

LEASE = 30_000


@pytest.fixture
def store(r: redis.Redis, keys: Keys, settings: Settings) -> TaskStore:
    return TaskStore(r, keys, settings)


def test_an_active_task_goes_back_to_due_at_its_next_run_at(
    r: redis.Redis, keys: Keys, store: TaskStore
) -> None:
    task = create(store)
    assert task.next_run_at is not None
    [c] = claim(r, keys, "due", task.next_run_at, LEASE, 10)
    # snoozed while claimed: the task's own time counts, not the one it was claimed at
    snoozed = store.snooze(task.id, 300, None, AGENT)
    r.zrem(keys.due, task.id)

    assert release_claims(r, keys, "due", [c]) == (1, 0)
    assert r.zscore(keys.due, task.id) == snoozed.next_run_at
    assert r.zcard(keys.claims) == 0


def test_a_task_no_longer_active_only_loses_its_claim(
    r: redis.Redis, keys: Keys, store: TaskStore
) -> None:
    task = create(store)
    assert task.next_run_at is not None
    [c] = claim(r, keys, "due", task.next_run_at, LEASE, 10)
    store.pause(task.id, AGENT)

    assert release_claims(r, keys, "due", [c]) == (0, 1)
    assert r.zcard(keys.claims) == 0
    assert r.zcard(keys.due) == 0


def test_a_claim_that_is_not_ours_is_left_alone(
    r: redis.Redis, keys: Keys, store: TaskStore
) -> None:
    task = create(store)
    assert task.next_run_at is not None
    [c] = claim(r, keys, "due", task.next_run_at, LEASE, 10)
    before = db_state(r)

    assert release_claims(r, keys, "due", [Claim(task.id, c.token + 7)]) == (0, 0)
    assert db_state(r) == before


def test_a_pending_run_goes_back_to_delayed_and_wakes_schedulers(
    r: redis.Redis, keys: Keys, store: TaskStore
) -> None:
    task = create(store, schedule_kind="event", schedule_expr="x")
    now = clock.now_ms()
    run = add_run(r, keys, task, next_attempt_at=now - 5)
    gone = add_run(r, keys, task, next_attempt_at=now - 5)
    [a, b] = claim(r, keys, "delayed", now, LEASE, 10)
    r.hset(keys.run(run.id), "next_attempt_at", now + 5000)
    r.hset(keys.run(gone.id), "status", "canceled")
    pubsub = r.pubsub()
    pubsub.subscribe(keys.wake)
    assert pubsub.get_message(timeout=1)["type"] == "subscribe"

    assert release_claims(r, keys, "delayed", [a, b]) == (1, 1)
    assert r.zrange(keys.delayed, 0, -1, withscores=True) == [(run.id, now + 5000)]
    assert r.zcard(keys.delayed_claims) == 0
    msg = pubsub.get_message(timeout=1)
    assert msg is not None and msg["data"] == str(now + 5000)
    pubsub.close()


def test_nothing_to_release_sends_nothing(r: redis.Redis, keys: Keys) -> None:
    assert release_claims(r, keys, "due", []) == (0, 0)
