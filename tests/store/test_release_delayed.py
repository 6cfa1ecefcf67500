"""lua/release_delayed.lua: a claimed delayed run is queued (dedupe applies), held, or dropped."""

import pytest
import redis

from app import clock
from app.settings import Settings
from app.store.keys import Keys
from app.store.scheduling import Claim, Release, claim, parse_release, release_delayed
from app.store.tasks import TaskStore
from tests.support.agents import AGENT
from tests.support.scheduler import add_run, create, db_state

LEASE = 30_000


@pytest.fixture
def store(r: redis.Redis, keys: Keys, settings: Settings) -> TaskStore:
    return TaskStore(r, keys, settings)


def release(r: redis.Redis, keys: Keys, settings: Settings, c: Claim, now: int) -> Release:
    return parse_release(release_delayed(r, keys, settings, c.member, c.token, now))


def test_a_retry_whose_time_came_is_queued_into_the_outbox(
    r: redis.Redis, keys: Keys, settings: Settings, store: TaskStore
) -> None:
    task = create(store, priority=2)
    now = clock.now_ms()
    run = add_run(r, keys, task, next_attempt_at=now - 10, priority=2)
    [c] = claim(r, keys, "delayed", now, LEASE, 10)

    assert release(r, keys, settings, c, now) == Release("queued", priority=2, trigger="schedule")
    fields = r.hgetall(keys.run(run.id))
    assert fields["status"] == "queued" and "next_attempt_at" not in fields
    assert fields["attempt"] == "2"
    assert r.zscore(keys.outbox, run.id) == now + settings.enqueue_grace_seconds * 1000
    assert r.zcard(keys.delayed_claims) == 0
    assert r.zcard(keys.delayed) == 0


def test_a_dedupe_window_held_by_another_run_ends_it_deduped(
    r: redis.Redis, keys: Keys, settings: Settings, store: TaskStore
) -> None:
    task = create(store, dedupe_key="k")
    now = clock.now_ms()
    run = add_run(r, keys, task, next_attempt_at=now)
    r.set(keys.dedupe(AGENT, "k"), "holder", px=60_000)
    [c] = claim(r, keys, "delayed", now, LEASE, 10)

    assert release(r, keys, settings, c, now).outcome == "deduped"
    assert r.hget(keys.run(run.id), "status") == "deduped"
    assert r.zscore(keys.outbox, run.id) is None


def test_a_window_held_by_the_same_run_lets_its_retry_through(
    r: redis.Redis, keys: Keys, settings: Settings, store: TaskStore
) -> None:
    task = create(store, dedupe_key="k")
    now = clock.now_ms()
    run = add_run(r, keys, task, next_attempt_at=now)
    r.set(keys.dedupe(AGENT, "k"), run.id, px=60_000)
    [c] = claim(r, keys, "delayed", now, LEASE, 10)

    assert release(r, keys, settings, c, now).outcome == "queued"


def test_an_event_run_of_a_task_snoozed_further_waits_again(
    r: redis.Redis, keys: Keys, settings: Settings, store: TaskStore
) -> None:
    task = create(store, schedule_kind="event", schedule_expr="x")
    now = clock.now_ms()
    run = add_run(r, keys, task, trigger="event", attempt=1, next_attempt_at=now)
    store.snooze(task.id, 60, None, AGENT)
    until = store.get(task.id).snoozed_until
    assert until is not None and until > now
    [c] = claim(r, keys, "delayed", now, LEASE, 10)

    assert release(r, keys, settings, c, now) == Release("delayed", until=until)
    assert r.zscore(keys.delayed, run.id) == until
    assert r.hget(keys.run(run.id), "next_attempt_at") == str(until)
    assert r.hget(keys.run(run.id), "status") == "pending"
    assert r.zcard(keys.delayed_claims) == 0


def test_a_run_canceled_meanwhile_only_loses_its_claim(
    r: redis.Redis, keys: Keys, settings: Settings, store: TaskStore
) -> None:
    task = create(store)
    now = clock.now_ms()
    run = add_run(r, keys, task, next_attempt_at=now)
    [c] = claim(r, keys, "delayed", now, LEASE, 10)
    r.hset(keys.run(run.id), "status", "canceled")

    assert release(r, keys, settings, c, now) == Release("dropped", detail="canceled")
    assert r.zcard(keys.delayed_claims) == 0
    assert r.zscore(keys.outbox, run.id) is None


def test_a_claim_that_is_not_ours_changes_nothing(
    r: redis.Redis, keys: Keys, settings: Settings, store: TaskStore
) -> None:
    task = create(store)
    now = clock.now_ms()
    add_run(r, keys, task, next_attempt_at=now)
    [c] = claim(r, keys, "delayed", now, LEASE, 10)
    before = db_state(r)

    assert release(r, keys, settings, Claim(c.member, c.token - 1), now).outcome == "lost"
    assert db_state(r) == before


def test_the_release_takes_the_dedupe_window_of_the_task_s_dedupe_key_as_it_is_now(
    r: redis.Redis, keys: Keys, settings: Settings, store: TaskStore
) -> None:
    task = create(store, dedupe_key="old")
    now = clock.now_ms()
    run = add_run(r, keys, task, next_attempt_at=now)
    [c] = claim(r, keys, "delayed", now, LEASE, 10)
    # changed while the run waited; the new key's window is held by another run
    store.update(task.id, {"dedupe_key": "new"}, AGENT)
    r.set(keys.dedupe(AGENT, "new"), "someone-else", px=60_000)

    assert release(r, keys, settings, c, now).outcome == "deduped"
    assert "someone-else" in (r.hget(keys.run(run.id), "error") or "")
    assert not r.exists(keys.dedupe(AGENT, "old"))
