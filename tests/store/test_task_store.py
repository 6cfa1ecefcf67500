"""The task Lua scripts called directly: each success, and each error return leaving Redis
exactly as it was (every key's type, DUMP and TTL compared before and after)."""

import uuid
from typing import Any

import msgspec
import pytest
import redis

from app.core.errors import ValidationError
from app.core.task import Task
from app.settings import Settings
from app.store import scripts
from app.store.codec import from_hash, to_hash
from app.store.keys import Keys
from app.store.tasks import TaskStore
from tests.support.agents import AGENT
from tests.support.records import make_task

PIPELINE = {"steps": [{"name": "s", "action": "log", "params": {"message": "m"}}]}
NOW = 1_800_000_000_000
USED_UP = "DTSTART:20200101T000000Z\nRRULE:FREQ=DAILY;COUNT=1"


def state(r: redis.Redis) -> dict[str, Any]:
    """Every key's type, DUMP and TTL in ms."""
    return {k: (r.type(k), r.dump(k), r.pttl(k)) for k in r.keys("*")}


def assert_unchanged(before: dict[str, Any], after: dict[str, Any]) -> None:
    """Same keys, types and contents; TTLs equal up to the time the call took."""
    assert after.keys() == before.keys()
    for key, (kind, dump, ttl) in before.items():
        kind_after, dump_after, ttl_after = after[key]
        assert (kind_after, dump_after) == (kind, dump), key
        assert (ttl_after < 0) == (ttl < 0) and abs(ttl_after - ttl) < 1000, key


def call(r: redis.Redis, name: str, keys: list[str], args: list[Any]) -> Any:
    return scripts.script(r, name)(keys=keys, args=args)


def refused(r: redis.Redis, name: str, keys: list[str], args: list[Any]) -> Any:
    """Call a script that must refuse; assert it changed nothing and return its reply."""
    before = state(r)
    reply = call(r, name, keys, args)
    assert scripts.is_error(reply), reply
    assert_unchanged(before, state(r))
    return reply


def hourly(**overrides: Any) -> Task:
    """An hourly task of AGENT created at NOW, the clock this file's expectations are written
    against."""
    fields: dict[str, Any] = {
        "schedule_expr": "@hourly",
        "payload": PIPELINE,
        "created_at": NOW,
        "updated_at": NOW,
    }
    return make_task(**{**fields, **overrides})


@pytest.fixture
def store(r: redis.Redis, keys: Keys, settings: Settings) -> TaskStore:
    return TaskStore(r, keys, settings)


def load(r: redis.Redis, keys: Keys, task_id: str) -> Task:
    return from_hash(Task, r.hgetall(keys.task(task_id)))


def stored(store: TaskStore, **overrides: Any) -> Task:
    task, created = store.create(hourly(**overrides))
    assert created
    return task


def indexed_in(r: redis.Redis, keys: Keys, task_id: str) -> set[str]:
    return {k for k in r.keys(keys.index(None, None, None)[:-5] + "*") if r.zscore(k, task_id)}


# -- create_task ------------------------------------------------------------------------------


def create_args(
    keys: Keys,
    task: Task,
    next_run: Any = "",
    idem: str | None = None,
    *,
    interval: Any = "",
    against: Any = "",
    secrets: tuple[str, ...] = (),
) -> Any:
    argv: list[Any] = [task.id, task.created_at, next_run, 86_400_000 if idem else "", keys.wake]
    pairs = [x for pair in to_hash(task).items() for x in pair]
    argv += [interval, against, len(secrets), *secrets, msgspec.msgpack.encode(pairs)]
    key_list = [
        keys.task(task.id),
        keys.due,
        keys.idempotency(task.created_by, idem) if idem else keys.task(task.id),
    ]
    return key_list, argv


def test_create_task_writes_hash_indexes_and_due(r: redis.Redis, keys: Keys) -> None:
    task = hourly(next_run_at=NOW + 60_000)
    pubsub = r.pubsub()
    pubsub.subscribe(keys.wake)
    pubsub.get_message(timeout=1)
    assert call(r, "create_task", *create_args(keys, task, NOW + 60_000)) == ["created", task.id]
    assert load(r, keys, task.id) == task
    assert r.zscore(keys.due, task.id) == NOW + 60_000
    assert indexed_in(r, keys, task.id) == set(keys.indexes(AGENT, "active", "cron"))
    for index in keys.indexes(AGENT, "active", "cron"):
        assert r.zscore(index, task.id) == NOW
    # the earliest due task wakes the schedulers
    message = pubsub.get_message(timeout=1)
    assert message is not None and message["data"] == str(NOW + 60_000)
    pubsub.close()


def test_create_task_without_next_run_stays_out_of_due(r: redis.Redis, keys: Keys) -> None:
    task = hourly(schedule_kind="event", schedule_expr=None)
    assert call(r, "create_task", *create_args(keys, task))[0] == "created"
    assert r.zcard(keys.due) == 0
    assert indexed_in(r, keys, task.id) == set(keys.indexes(AGENT, "active", "event"))


def test_create_task_refuses_an_existing_id(r: redis.Redis, keys: Keys) -> None:
    task = hourly()
    call(r, "create_task", *create_args(keys, task, NOW + 1))
    twin = hourly(id=task.id, title="other", created_at=NOW + 5)
    assert refused(r, "create_task", *create_args(keys, twin, NOW + 2)) == [-4, task.id]


@pytest.mark.parametrize("idem", [None, "k"])
def test_create_task_sent_again_answers_as_the_first_call_and_writes_nothing(
    r: redis.Redis, keys: Keys, idem: str | None
) -> None:
    # a client whose connection dropped before the reply sends the same call again
    task = hourly()
    args = create_args(keys, task, NOW + 1, idem=idem)
    assert call(r, "create_task", *args) == ["created", task.id]
    before = state(r)
    assert call(r, "create_task", *args) == ["created", task.id]
    assert_unchanged(before, state(r))


def test_create_task_with_a_seen_idempotency_key_returns_the_first(
    r: redis.Redis, keys: Keys
) -> None:
    first = hourly()
    assert call(r, "create_task", *create_args(keys, first, NOW + 1, idem="k")) == [
        "created",
        first.id,
    ]
    assert r.get(keys.idempotency(AGENT, "k")) == first.id
    assert 86_000_000 < r.pttl(keys.idempotency(AGENT, "k")) <= 86_400_000
    before = state(r)
    second = hourly()
    assert call(r, "create_task", *create_args(keys, second, NOW + 1, idem="k")) == [
        "existing",
        first.id,
    ]
    assert_unchanged(before, state(r))


def test_create_task_asks_for_the_interval_check_of_a_limit_above_one(
    r: redis.Redis, keys: Keys
) -> None:
    task = hourly()
    # the default (ARGV) decides without an override; 1 needs no check
    assert call(r, "create_task", *create_args(keys, task, NOW + 1, interval=1))[0] == "created"
    before = state(r)
    twin = hourly()
    assert call(r, "create_task", *create_args(keys, twin, NOW + 1, interval=60)) == [
        "check_interval",
        "60",
    ]
    assert_unchanged(before, state(r))
    # the agent's override wins over the default; one that is not a whole number is ignored
    r.hset(keys.limits(AGENT), "min_interval_seconds", "120")
    assert call(r, "create_task", *create_args(keys, twin, NOW + 1, interval=60)) == [
        "check_interval",
        "120",
    ]
    r.hset(keys.limits(AGENT), "min_interval_seconds", "x")
    assert call(r, "create_task", *create_args(keys, twin, NOW + 1, interval=60)) == [
        "check_interval",
        "60",
    ]
    assert not r.exists(keys.task(twin.id))
    # checked against the agent's limit now: created; '' means no interval to check at all
    assert call(r, "create_task", *create_args(keys, twin, NOW + 1, interval=60, against=60)) == [
        "created",
        twin.id,
    ]
    other = hourly()
    assert call(r, "create_task", *create_args(keys, other, NOW + 1))[0] == "created"


def test_create_task_names_the_first_secret_the_agent_lacks(r: redis.Redis, keys: Keys) -> None:
    r.hset(keys.secrets(AGENT), "TOKEN", "sealed")
    before = state(r)
    task = hourly()
    reply = call(r, "create_task", *create_args(keys, task, NOW + 1, secrets=("TOKEN", "B", "C")))
    assert reply == ["missing_secret", "B"]
    assert_unchanged(before, state(r))
    reply = call(r, "create_task", *create_args(keys, task, NOW + 1, secrets=("TOKEN",)))
    assert reply == ["created", task.id]


def test_a_checked_create_checks_the_schedule_against_the_agents_limit(
    r: redis.Redis, keys: Keys, store: TaskStore
) -> None:
    r.hset(keys.limits(AGENT), "min_interval_seconds", "3600")
    hourly_task = hourly()
    assert store.create(hourly_task, checked=True) == (hourly_task, True)
    r.hset(keys.limits(AGENT), "min_interval_seconds", "3601")
    before = state(r)
    with pytest.raises(ValidationError) as info:
        store.create(hourly(), checked=True)
    assert info.value.field == "schedule_expr"
    assert "min_interval_seconds of 3601" in info.value.reason
    assert_unchanged(before, state(r))
    # unchecked (the CLI's and the scheduler's own creates) it is not looked at
    assert store.create(hourly())[1] is True


def test_a_checked_create_names_the_field_of_a_missing_secret(
    r: redis.Redis, keys: Keys, store: TaskStore
) -> None:
    steps = [{"name": "s", "action": "log", "params": {"message": "{{ secrets.API_KEY }}"}}]
    task = make_task(steps=steps)
    with pytest.raises(ValidationError) as info:
        store.create(task, checked=True)
    assert info.value.field == "payload.steps[0].params.message"
    assert "no secret named 'API_KEY'" in info.value.reason
    assert not r.exists(keys.task(task.id))
    r.hset(keys.secrets(AGENT), "API_KEY", "sealed")
    assert store.create(task, checked=True)[1] is True


# -- update_task ------------------------------------------------------------------------------


def update_args(
    keys: Keys,
    task: Task,
    *,
    due: Any = "keep",
    new_status: str | None = None,
    new_kind: str | None = None,
    deletes: str = "",
    sets: tuple[Any, ...] = (),
    status: str | None = None,
    version: int | None = None,
) -> Any:
    return (
        [
            keys.task(task.id),
            keys.due,
            *keys.indexes(task.created_by, task.status, task.schedule_kind),
            *keys.indexes(
                task.created_by, new_status or task.status, new_kind or task.schedule_kind
            ),
        ],
        [
            NOW + 10,
            status or task.status,
            task.sched_version if version is None else version,
            due,
            keys.wake,
            new_status or task.status,
            deletes,
            *sets,
        ],
    )


def test_update_task_sets_and_deletes_fields_keeping_the_schedule(
    r: redis.Redis, keys: Keys, store: TaskStore
) -> None:
    task = stored(store, dedupe_key="k", dedupe_window_seconds=60)
    due_before = r.zscore(keys.due, task.id)
    reply = call(
        r,
        "update_task",
        *update_args(keys, task, deletes="dedupe_key,dedupe_window_seconds", sets=("title", "x")),
    )
    assert reply == ["ok"]
    new = load(r, keys, task.id)
    assert (new.title, new.dedupe_key, new.dedupe_window_seconds) == ("x", None, None)
    assert new.updated_at == NOW + 10 and new.sched_version == task.sched_version
    assert r.zscore(keys.due, task.id) == due_before


def test_update_task_moves_due_and_indexes(r: redis.Redis, keys: Keys, store: TaskStore) -> None:
    task = stored(store)
    call(
        r,
        "update_task",
        *update_args(keys, task, due=NOW + 999, new_kind="rrule", sets=("schedule_kind", "rrule")),
    )
    new = load(r, keys, task.id)
    assert new.next_run_at == NOW + 999 and new.sched_version == task.sched_version + 1
    assert r.zscore(keys.due, task.id) == NOW + 999
    assert indexed_in(r, keys, task.id) == set(keys.indexes(AGENT, "active", "rrule"))

    call(
        r,
        "update_task",
        *update_args(keys, new, due="clear", new_kind="event", sets=("schedule_kind", "event")),
    )
    cleared = load(r, keys, task.id)
    assert cleared.next_run_at is None and r.zscore(keys.due, task.id) is None
    assert indexed_in(r, keys, task.id) == set(keys.indexes(AGENT, "active", "event"))


def test_update_task_refusals(r: redis.Redis, keys: Keys, store: TaskStore) -> None:
    task = stored(store)
    ghost = hourly()
    assert refused(r, "update_task", *update_args(keys, ghost)) == [-1, "task"]
    stale_status = refused(r, "update_task", *update_args(keys, task, status="paused"))
    assert stale_status == [-3, "active:0"]
    stale_version = refused(r, "update_task", *update_args(keys, task, version=7))
    assert stale_version[0] == -3
    store.cancel(task.id, None)
    canceled = load(r, keys, task.id)
    assert refused(r, "update_task", *update_args(keys, canceled, sets=("title", "x"))) == [
        -2,
        "canceled",
    ]


# -- pause_task / resume_task -----------------------------------------------------------------


def pause_args(
    keys: Keys, task: Task, status: str | None = None, version: int | None = None
) -> Any:
    return (
        [
            keys.task(task.id),
            keys.due,
            *keys.indexes(AGENT, task.status, task.schedule_kind),
            *keys.indexes(AGENT, "paused", task.schedule_kind),
        ],
        [NOW + 10, status or task.status, task.sched_version if version is None else version],
    )


def test_pause_task(r: redis.Redis, keys: Keys, store: TaskStore) -> None:
    task = stored(store)
    assert call(r, "pause_task", *pause_args(keys, task)) == ["ok"]
    new = load(r, keys, task.id)
    assert (new.status, new.next_run_at) == ("paused", None)
    assert new.sched_version == task.sched_version + 1
    assert r.zscore(keys.due, task.id) is None
    assert indexed_in(r, keys, task.id) == set(keys.indexes(AGENT, "paused", "cron"))


def test_pause_task_refusals(r: redis.Redis, keys: Keys, store: TaskStore) -> None:
    task = stored(store)
    assert refused(r, "pause_task", *pause_args(keys, hourly())) == [-1, "task"]
    assert refused(r, "pause_task", *pause_args(keys, task, status="paused"))[0] == -3
    assert refused(r, "pause_task", *pause_args(keys, task, version=3))[0] == -3
    paused = store.pause(task.id, None)
    assert refused(r, "pause_task", *pause_args(keys, paused)) == [-2, "paused"]
    canceled, _ = store.cancel(task.id, None)
    assert refused(r, "pause_task", *pause_args(keys, canceled)) == [-2, "canceled"]


def resume_args(
    keys: Keys, task: Task, next_run: Any, new_status: str = "active", status: str | None = None
) -> Any:
    return (
        [
            keys.task(task.id),
            keys.due,
            *keys.indexes(AGENT, task.status, task.schedule_kind),
            *keys.indexes(AGENT, new_status, task.schedule_kind),
        ],
        [NOW + 20, status or task.status, task.sched_version, next_run, new_status, keys.wake],
    )


def test_resume_task(r: redis.Redis, keys: Keys, store: TaskStore) -> None:
    paused = store.pause(stored(store).id, None)
    assert call(r, "resume_task", *resume_args(keys, paused, NOW + 500)) == ["ok"]
    new = load(r, keys, paused.id)
    assert (new.status, new.next_run_at, new.updated_at) == ("active", NOW + 500, NOW + 20)
    assert new.sched_version == paused.sched_version + 1
    assert r.zscore(keys.due, paused.id) == NOW + 500
    assert indexed_in(r, keys, paused.id) == set(keys.indexes(AGENT, "active", "cron"))


def test_resume_task_to_completed_stays_out_of_due(
    r: redis.Redis, keys: Keys, store: TaskStore
) -> None:
    paused = store.pause(stored(store).id, None)
    assert call(r, "resume_task", *resume_args(keys, paused, "", "completed")) == ["ok"]
    new = load(r, keys, paused.id)
    assert (new.status, new.next_run_at) == ("completed", None)
    assert r.zscore(keys.due, paused.id) is None
    assert indexed_in(r, keys, paused.id) == set(keys.indexes(AGENT, "completed", "cron"))


def test_resume_task_refusals(r: redis.Redis, keys: Keys, store: TaskStore) -> None:
    task = stored(store)
    assert refused(r, "resume_task", *resume_args(keys, hourly(), NOW)) == [-1, "task"]
    assert refused(r, "resume_task", *resume_args(keys, task, NOW)) == [-2, "active"]
    assert refused(r, "resume_task", *resume_args(keys, task, NOW, status="paused"))[0] == -3


# -- snooze_task ------------------------------------------------------------------------------


def snooze_args(
    keys: Keys, task: Task, delay_ms: int, reason: str = "", status: str | None = None
) -> Any:
    return (
        [keys.task(task.id), keys.due],
        [NOW + 30, status or task.status, task.sched_version, delay_ms, reason, keys.wake],
    )


def test_snooze_task_moves_the_next_run(r: redis.Redis, keys: Keys, store: TaskStore) -> None:
    task = stored(store)
    assert task.next_run_at is not None
    reply = call(r, "snooze_task", *snooze_args(keys, task, 1_800_000, "why"))
    assert reply == ["ok", task.next_run_at + 1_800_000]
    new = load(r, keys, task.id)
    assert new.next_run_at == new.snoozed_until == task.next_run_at + 1_800_000
    assert new.snooze_reason == "why" and new.sched_version == task.sched_version + 1
    assert r.zscore(keys.due, task.id) == task.next_run_at + 1_800_000

    call(r, "snooze_task", *snooze_args(keys, new, 1000))
    assert load(r, keys, task.id).snooze_reason is None


def test_snooze_task_without_a_next_run_counts_from_now(
    r: redis.Redis, keys: Keys, store: TaskStore
) -> None:
    task = stored(store, schedule_kind="event", schedule_expr="e")
    assert call(r, "snooze_task", *snooze_args(keys, task, 5000)) == ["ok", NOW + 30 + 5000]
    new = load(r, keys, task.id)
    assert new.snoozed_until == NOW + 5030 and new.next_run_at is None
    assert r.zcard(keys.due) == 0


def test_snooze_task_refusals(r: redis.Redis, keys: Keys, store: TaskStore) -> None:
    task = stored(store)
    assert refused(r, "snooze_task", *snooze_args(keys, hourly(), 1)) == [-1, "task"]
    assert refused(r, "snooze_task", *snooze_args(keys, task, 1, status="paused"))[0] == -3
    done = stored(store, schedule_kind="rrule", schedule_expr=USED_UP)
    assert refused(r, "snooze_task", *snooze_args(keys, done, 1)) == [-2, "completed"]
    canceled, _ = store.cancel(task.id, None)
    assert refused(r, "snooze_task", *snooze_args(keys, canceled, 1)) == [-2, "canceled"]


# -- cancel_task ------------------------------------------------------------------------------


def cancel_args(
    keys: Keys,
    task: Task,
    status: str | None = None,
    fifo: str | None = None,
    sem: str | None = None,
) -> Any:
    runs_key = keys.task_runs(task.id)
    return (
        [
            keys.task(task.id),
            keys.due,
            *keys.indexes(AGENT, task.status, task.schedule_kind),
            *keys.indexes(AGENT, "canceled", task.schedule_kind),
            runs_key,
            keys.delayed,
            keys.outbox,
            fifo or runs_key,
            sem or runs_key,
        ],
        [NOW + 40, status or task.status, task.sched_version, keys.run(""), 60_000, keys.wake],
    )


def add_run(r: redis.Redis, keys: Keys, task: Task, status: str, at: int) -> str:
    run_id = str(uuid.uuid4())
    r.hset(
        keys.run(run_id),
        mapping={
            "id": run_id,
            "task_id": task.id,
            "agent_id": AGENT,
            "trigger": "schedule",
            "status": status,
            "created_at": at,
            "next_attempt_at": at,
        },
    )
    r.zadd(keys.task_runs(task.id), {run_id: at})
    return run_id


def test_cancel_task_ends_runs_that_had_not_started(
    r: redis.Redis, keys: Keys, store: TaskStore
) -> None:
    task = stored(store, concurrency_key="c")
    fifo = keys.semaphore_queue(AGENT, "c")
    pending = add_run(r, keys, task, "pending", NOW)
    queued = add_run(r, keys, task, "queued", NOW + 1)
    running = add_run(r, keys, task, "running", NOW + 2)
    done = add_run(r, keys, task, "succeeded", NOW + 3)
    r.zadd(keys.delayed, {pending: NOW})
    r.zadd(keys.outbox, {queued: NOW})
    r.rpush(fifo, pending, "someone-else")

    reply = call(r, "cancel_task", *cancel_args(keys, task, fifo=fifo))
    assert reply == ["ok", queued]
    new = load(r, keys, task.id)
    assert (new.status, new.next_run_at) == ("canceled", None)
    assert new.sched_version == task.sched_version + 1
    assert r.zscore(keys.due, task.id) is None
    assert indexed_in(r, keys, task.id) == set(keys.indexes(AGENT, "canceled", "cron"))
    for run_id in (pending, queued):
        run = r.hgetall(keys.run(run_id))
        assert run["status"] == "canceled" and run["finished_at"] == str(NOW + 40)
        assert "next_attempt_at" not in run
    assert r.hget(keys.run(running), "status") == "running"
    assert r.hget(keys.run(done), "status") == "succeeded"
    assert r.zcard(keys.delayed) == r.zcard(keys.outbox) == 0
    assert r.lrange(fifo, 0, -1) == ["someone-else"]


def test_cancel_task_gives_back_a_slot_handed_to_a_run_that_never_started(
    r: redis.Redis, keys: Keys, store: TaskStore
) -> None:
    """A queued run holding a slot (handed over, not started) frees it for the next waiter."""
    task = stored(store, concurrency_key="c")
    other = stored(store, concurrency_key="c")
    fifo, sem = keys.semaphore_queue(AGENT, "c"), keys.semaphore(AGENT, "c")
    holder = add_run(r, keys, task, "queued", NOW)
    waiter = add_run(r, keys, other, "pending", NOW + 1)
    r.zadd(sem, {holder: NOW + 60_000})
    r.rpush(fifo, waiter)
    pubsub = r.pubsub()
    pubsub.subscribe(keys.wake)
    assert pubsub.get_message(timeout=1)["type"] == "subscribe"

    reply = call(r, "cancel_task", *cancel_args(keys, task, fifo=fifo, sem=sem))

    assert reply == ["ok", holder]
    assert r.zrange(sem, 0, -1) == [waiter]
    assert r.hget(keys.run(waiter), "status") == "queued"
    assert r.zscore(keys.outbox, waiter) == NOW + 40
    assert r.llen(fifo) == 0
    message = pubsub.get_message(timeout=1)
    assert message is not None and message["channel"] == keys.wake
    pubsub.close()


def test_cancel_task_refusals(r: redis.Redis, keys: Keys, store: TaskStore) -> None:
    task = stored(store)
    assert refused(r, "cancel_task", *cancel_args(keys, hourly())) == [-1, "task"]
    assert refused(r, "cancel_task", *cancel_args(keys, task, status="paused"))[0] == -3
    canceled, _ = store.cancel(task.id, None)
    assert refused(r, "cancel_task", *cancel_args(keys, canceled)) == [-2, "canceled"]


# -- run_now ----------------------------------------------------------------------------------


def run_now_args(keys: Keys, task: Task, run_id: str) -> Any:
    return (
        [keys.task(task.id), keys.task_runs(task.id), keys.run(run_id), keys.outbox, keys.delayed],
        [NOW + 50, run_id, keys.run(""), 100, 30_000],
    )


def test_run_now_creates_a_queued_run(r: redis.Redis, keys: Keys, store: TaskStore) -> None:
    task = stored(store, priority=3, max_retries=2)
    run_id = str(uuid.uuid4())
    assert call(r, "run_now", *run_now_args(keys, task, run_id)) == ["ok", "queued"]
    run = r.hgetall(keys.run(run_id))
    assert run["status"] == "queued" and run["trigger"] == "run_now"
    assert (run["priority"], run["max_attempts"], run["agent_id"]) == ("3", "3", AGENT)
    assert run["scheduled_for"] == run["enqueued_at"] == str(NOW + 50)
    assert r.zscore(keys.outbox, run_id) == NOW + 50 + 30_000
    assert r.zscore(keys.task_runs(task.id), run_id) == NOW + 50
    new = load(r, keys, task.id)
    assert (new.run_count, new.last_run_at) == (1, NOW + 50)
    assert new.next_run_at == task.next_run_at and new.sched_version == task.sched_version


def test_run_now_inside_a_held_dedupe_window_is_deduped(
    r: redis.Redis, keys: Keys, store: TaskStore
) -> None:
    task = stored(store, dedupe_key="k", dedupe_window_seconds=60)
    first, second = str(uuid.uuid4()), str(uuid.uuid4())
    assert call(r, "run_now", *run_now_args(keys, task, first)) == ["ok", "queued"]
    assert 59_000 < r.pttl(keys.dedupe(AGENT, "k")) <= 60_000
    assert call(r, "run_now", *run_now_args(keys, task, second)) == ["ok", "deduped"]
    run = r.hgetall(keys.run(second))
    assert run["status"] == "deduped" and first in run["error"]
    assert r.zscore(keys.outbox, second) is None


def test_run_now_takes_the_dedupe_window_of_the_task_s_dedupe_key_as_it_is_now(
    r: redis.Redis, keys: Keys, store: TaskStore
) -> None:
    task = stored(store, dedupe_key="old")
    store.update(task.id, {"dedupe_key": "new"}, AGENT)
    r.set(keys.dedupe(AGENT, "new"), "someone-else", px=60_000)
    run_id = str(uuid.uuid4())
    # the task as read before the change: the script reads the key itself
    assert call(r, "run_now", *run_now_args(keys, task, run_id)) == ["ok", "deduped"]
    assert not r.exists(keys.dedupe(AGENT, "old"))


def test_run_now_refusals(r: redis.Redis, keys: Keys, store: TaskStore) -> None:
    task = stored(store, dedupe_key="k")
    assert refused(r, "run_now", *run_now_args(keys, hourly(), str(uuid.uuid4()))) == [
        -1,
        "task",
    ]
    existing = str(uuid.uuid4())
    call(r, "run_now", *run_now_args(keys, task, existing))
    assert refused(r, "run_now", *run_now_args(keys, task, existing)) == [-4, existing]
    done = stored(store, schedule_kind="rrule", schedule_expr=USED_UP)
    assert refused(r, "run_now", *run_now_args(keys, done, str(uuid.uuid4()))) == [
        -2,
        "completed",
    ]
    store.cancel(task.id, None)
    canceled = load(r, keys, task.id)
    assert refused(r, "run_now", *run_now_args(keys, canceled, str(uuid.uuid4()))) == [
        -2,
        "canceled",
    ]
