"""lua/emit_event.lua and app/store/events.py: one run per matching active event task."""

import dataclasses
import json

import pytest
import redis

from app import clock
from app.core.errors import ValidationError
from app.service.backend import Backend
from app.service.events import emit_event
from app.settings import Settings
from app.store import scripts, stats
from app.store.connection import rq_client
from app.store.events import create_event_runs, matches
from app.store.keys import Keys
from app.store.tasks import TaskStore
from tests.support.agents import AGENT, OTHER_AGENT
from tests.support.scheduler import create, db_state, rq_job_ids, runs_of


@pytest.fixture
def store(r: redis.Redis, keys: Keys, settings: Settings) -> TaskStore:
    return TaskStore(r, keys, settings)


@pytest.mark.parametrize(
    ("pattern", "name", "hit"),
    [
        ("invoice.paid", "invoice.paid", True),
        ("invoice.*", "invoice.paid", True),
        ("invoice.*", "invoices.paid", False),
        ("*.paid", "invoice.paid", True),
        ("invoice.[pv]aid", "invoice.paid", True),
        ("Invoice.*", "invoice.paid", False),
        ("invoice.paid", "invoice.paid.late", False),
        (None, "x", False),
        ("", "x", False),
    ],
)
def test_patterns_match_exactly_or_as_a_case_sensitive_glob(
    pattern: str | None, name: str, hit: bool
) -> None:
    assert matches(pattern, name) is hit


def test_matching_tasks_of_the_agent_get_one_queued_run_each_on_rq(
    r: redis.Redis, keys: Keys, settings: Settings, store: TaskStore
) -> None:
    exact = create(store, schedule_kind="event", schedule_expr="invoice.paid", priority=2)
    glob = create(store, schedule_kind="event", schedule_expr="invoice.*")
    miss = create(store, schedule_kind="event", schedule_expr="order.*")
    bare = create(store, schedule_kind="event", schedule_expr=None)
    theirs = create(store, schedule_kind="event", schedule_expr="invoice.*", created_by=OTHER_AGENT)
    rq = rq_client(settings.redis_url)

    event_id, runs = emit_event(Backend(r, rq, keys, settings), AGENT, "invoice.paid", {"n": 1})

    assert sorted(run.task_id for run in runs) == sorted([exact.id, glob.id])
    for run in runs:
        assert (run.status, run.trigger, run.agent_id) == ("queued", "event", AGENT)
        assert run.event == {"id": event_id, "name": "invoice.paid", "data": {"n": 1}}
    assert {run.id: run.priority for run in runs}[runs_of(r, keys, exact.id)[0].id] == 2
    assert sorted(rq_job_ids(rq)) == sorted(run.id for run in runs)
    assert sorted(r.zrange(keys.outbox, 0, -1)) == sorted(run.id for run in runs)
    for task in (miss, bare, theirs):
        assert runs_of(r, keys, task.id) == []
        assert store.get(task.id).run_count == 0
    assert stats.read(r, keys)["runs:queued:event"] == 2
    rq.close()


def test_paused_tasks_get_no_run_and_snoozed_ones_a_pending_run_until_the_snooze_ends(
    r: redis.Redis, keys: Keys, settings: Settings, store: TaskStore
) -> None:
    paused = create(store, schedule_kind="event", schedule_expr="e")
    store.pause(paused.id, AGENT)
    snoozed = create(store, schedule_kind="event", schedule_expr="e")
    until = store.snooze(snoozed.id, 120, "quiet", AGENT).snoozed_until
    pubsub = r.pubsub()
    pubsub.subscribe(keys.wake)
    assert pubsub.get_message(timeout=1)["type"] == "subscribe"

    _, runs = create_event_runs(r, keys, settings, AGENT, "e", None)

    [run] = runs
    assert (run.task_id, run.status, run.next_attempt_at) == (snoozed.id, "pending", until)
    assert run.event is not None and run.event["data"] == {}
    assert r.zscore(keys.delayed, run.id) == until
    assert r.zscore(keys.outbox, run.id) is None
    msg = pubsub.get_message(timeout=1)
    assert msg is not None and msg["data"] == str(until)
    assert runs_of(r, keys, paused.id) == []
    pubsub.close()


def test_a_held_dedupe_window_ends_the_event_run_deduped(
    r: redis.Redis, keys: Keys, settings: Settings, store: TaskStore
) -> None:
    create(store, schedule_kind="event", schedule_expr="e", dedupe_key="k")
    r.set(keys.dedupe(AGENT, "k"), "holder", px=60_000)
    rq = rq_client(settings.redis_url)

    _, [run] = emit_event(Backend(r, rq, keys, settings), AGENT, "e", {})

    assert run.status == "deduped"
    assert rq_job_ids(rq) == []
    rq.close()
    counted = stats.read(r, keys)
    assert counted["runs:deduped:event"] == counted["dedupe_suppressed"] == 1


def test_no_candidate_creates_nothing(
    r: redis.Redis, keys: Keys, settings: Settings, store: TaskStore
) -> None:
    create(store, schedule_kind="event", schedule_expr="other")
    before = db_state(r)

    event_id, runs = create_event_runs(r, keys, settings, AGENT, "e", {})

    assert event_id and runs == []
    assert db_state(r) == before


@pytest.mark.parametrize("name", ["", "x" * 201])
def test_an_empty_or_overlong_name_is_refused(
    r: redis.Redis, keys: Keys, settings: Settings, name: str
) -> None:
    with pytest.raises(ValidationError):
        create_event_runs(r, keys, settings, AGENT, name, {})


def _call(
    r: redis.Redis, keys: Keys, settings: Settings, task_id: str, expr: str, run_id: str
) -> object:
    return scripts.script(r, "emit_event")(
        keys=[
            keys.outbox,
            keys.delayed,
            keys.event("ev"),
            keys.task(task_id),
            keys.task_runs(task_id),
            keys.run(run_id),
        ],
        args=[
            clock.now_ms(),
            AGENT,
            json.dumps({"id": "ev", "name": "e"}),
            keys.run(""),
            settings.run_history,
            30_000,
            keys.wake,
            "{}",
            task_id,
            run_id,
            expr,
        ],
    )


def test_a_pattern_changed_since_the_read_is_stale_and_changes_nothing(
    r: redis.Redis, keys: Keys, settings: Settings, store: TaskStore
) -> None:
    task = create(store, schedule_kind="event", schedule_expr="e.*")
    before = db_state(r)

    reply = _call(r, keys, settings, task.id, "e", "run-1")

    assert reply == [-3, task.id]
    assert db_state(r) == before


def test_a_task_no_longer_active_or_another_agents_is_skipped_by_the_script(
    r: redis.Redis, keys: Keys, settings: Settings, store: TaskStore
) -> None:
    paused = create(store, schedule_kind="event", schedule_expr="e")
    store.pause(paused.id, AGENT)
    theirs = create(store, schedule_kind="event", schedule_expr="e", created_by=OTHER_AGENT)
    before = db_state(r)

    assert _call(r, keys, settings, paused.id, "e", "run-1") == []
    assert _call(r, keys, settings, theirs.id, "e", "run-2") == []
    assert db_state(r) == before


def test_the_event_data_is_stored_once_and_each_run_refers_to_it(
    r: redis.Redis, keys: Keys, settings: Settings, store: TaskStore
) -> None:
    tasks = [create(store, schedule_kind="event", schedule_expr="big") for _ in range(20)]
    data = {"blob": "x" * 50_000}
    event_id, runs = create_event_runs(r, keys, settings, AGENT, "big", data)
    assert len(runs) == 20
    assert all(run.event == {"id": event_id, "name": "big", "data": data} for run in runs)
    # one copy of the data in Redis, whatever the number of runs
    assert r.hget(keys.event(event_id), "refs") == "20"
    assert json.loads(r.hget(keys.event(event_id), "data") or "") == data
    for run in runs:
        stored = r.hget(keys.run(run.id), "event") or ""
        assert len(stored) < 200 and "blob" not in stored
    assert r.memory_usage(keys.run(runs[0].id)) < 2_000
    # the reads show the event whole
    from app.store.history import get_run

    assert get_run(r, keys, runs[3].id, AGENT).event == runs[3].event
    assert tasks


def test_the_event_record_goes_with_the_last_run_referring_to_it(
    r: redis.Redis, keys: Keys, settings: Settings, store: TaskStore
) -> None:
    small = dataclasses.replace(settings, run_history=1)
    task = create(store, schedule_kind="event", schedule_expr="e")
    first, (run,) = create_event_runs(r, keys, small, AGENT, "e", {"n": 1})
    r.hset(keys.run(run.id), "status", "succeeded")
    clock.shift(10)
    second, _ = create_event_runs(r, keys, small, AGENT, "e", {"n": 2})
    # the first run left the history (cap 1): its event record went with it
    assert not r.exists(keys.run(run.id))
    assert not r.exists(keys.event(first))
    assert r.hget(keys.event(second), "refs") == "1"
    assert task


def test_the_script_takes_the_dedupe_window_of_the_task_s_dedupe_key_itself(
    r: redis.Redis, keys: Keys, settings: Settings, store: TaskStore
) -> None:
    task = create(store, schedule_kind="event", schedule_expr="e", dedupe_key="k")
    r.set(keys.dedupe(AGENT, "k"), "someone-else", px=60_000)

    assert _call(r, keys, settings, task.id, "e", "run-1") == ["run-1", "deduped"]
    assert "someone-else" in (r.hget(keys.run("run-1"), "error") or "")
