"""lua/commit_occurrence.lua: one claimed occurrence becomes its run(s), the task moves on."""

from typing import Any

import pytest
import redis

from app.core.planning import Plan, occurrence_run_id, plan_occurrence
from app.core.task import Task
from app.settings import Settings
from app.store.keys import Keys
from app.store.scheduling import (
    Claim,
    Commit,
    claim,
    commit_occurrence,
    parse_commit,
)
from app.store.tasks import TaskStore
from tests.support.agents import AGENT
from tests.support.scheduler import create, db_state, once_at, runs_of

LEASE = 30_000
GRACE = 60_000
MINUTE = 60_000


@pytest.fixture
def store(r: redis.Redis, keys: Keys, settings: Settings) -> TaskStore:
    return TaskStore(r, keys, settings)


def claimed(r: redis.Redis, keys: Keys, store: TaskStore, **kw: Any) -> tuple[Task, Claim]:
    """A task created through the store and claimed at its next_run_at."""
    task = create(store, **kw)
    assert task.next_run_at is not None
    [c] = claim(r, keys, "due", task.next_run_at, LEASE, 10)
    return store.get(task.id), c


def commit(
    r: redis.Redis,
    keys: Keys,
    settings: Settings,
    task: Task,
    c: Claim,
    plan: Plan | None = None,
) -> Commit:
    assert task.next_run_at is not None
    now = task.next_run_at
    plan = plan or plan_occurrence(task, now, GRACE)
    return parse_commit(commit_occurrence(r, keys, settings, task, c.token, plan, now))


def test_commit_creates_the_run_and_moves_the_task_to_its_next_occurrence(
    r: redis.Redis, keys: Keys, settings: Settings, store: TaskStore
) -> None:
    task, c = claimed(r, keys, store, priority=3)
    occ = task.next_run_at
    assert occ is not None

    done = commit(r, keys, settings, task, c)

    run_id = occurrence_run_id(task.id, occ)
    assert done == Commit("committed", runs=[(run_id, "queued", 3)], next_run_at=occ + MINUTE)
    [run] = runs_of(r, keys, task.id)
    assert (run.id, run.status, run.trigger, run.scheduled_for) == (
        run_id,
        "queued",
        "schedule",
        occ,
    )
    assert r.zscore(keys.outbox, run_id) == occ + settings.enqueue_grace_seconds * 1000
    after = store.get(task.id)
    assert (after.next_run_at, after.last_run_at, after.run_count) == (occ + MINUTE, occ, 1)
    assert r.zscore(keys.due, task.id) == occ + MINUTE
    assert r.zcard(keys.claims) == 0


def test_a_claim_taken_over_commits_nothing_and_changes_nothing(
    r: redis.Redis, keys: Keys, settings: Settings, store: TaskStore
) -> None:
    task, c = claimed(r, keys, store)
    assert task.next_run_at is not None
    # the lease lapsed and another scheduler took the claim over
    [theirs] = claim(r, keys, "due", c.token, LEASE, 10)
    assert theirs.token != c.token
    before = db_state(r)

    assert commit(r, keys, settings, task, c) == Commit("lost")
    assert db_state(r) == before
    assert commit(r, keys, settings, task, theirs).outcome == "committed"
    assert len(runs_of(r, keys, task.id)) == 1


def test_a_repeated_commit_creates_no_second_run(
    r: redis.Redis, keys: Keys, settings: Settings, store: TaskStore
) -> None:
    task, c = claimed(r, keys, store)
    assert commit(r, keys, settings, task, c).outcome == "committed"
    before = db_state(r)

    assert commit(r, keys, settings, task, c) == Commit("lost")
    assert db_state(r) == before


def test_an_existing_run_id_is_reported_not_recreated(
    r: redis.Redis, keys: Keys, settings: Settings, store: TaskStore
) -> None:
    task, c = claimed(r, keys, store)
    occ = task.next_run_at
    assert occ is not None
    run_id = occurrence_run_id(task.id, occ)
    r.hset(keys.run(run_id), mapping={"id": run_id, "status": "running", "priority": "5"})

    done = commit(r, keys, settings, task, c)

    assert done.runs == [(run_id, "exists", 5)]
    assert r.hget(keys.run(run_id), "status") == "running"
    assert store.get(task.id).run_count == 0


@pytest.mark.parametrize("action", ["pause", "cancel"])
def test_a_pause_or_cancel_racing_with_the_claim_wins(
    r: redis.Redis, keys: Keys, settings: Settings, store: TaskStore, action: str
) -> None:
    task, c = claimed(r, keys, store)
    getattr(store, action)(task.id, AGENT)

    done = commit(r, keys, settings, task, c)

    assert done.outcome == "released"
    assert runs_of(r, keys, task.id) == []
    assert r.zcard(keys.claims) == 0
    assert r.zscore(keys.due, task.id) is None


def test_a_snooze_racing_with_the_claim_moves_the_occurrence(
    r: redis.Redis, keys: Keys, settings: Settings, store: TaskStore
) -> None:
    task, c = claimed(r, keys, store)
    occ = task.next_run_at
    assert occ is not None
    store.snooze(task.id, 600, "later", AGENT)

    assert commit(r, keys, settings, task, c) == Commit("released", reason="version")
    assert runs_of(r, keys, task.id) == []
    assert r.zscore(keys.due, task.id) == occ + 600_000
    assert r.zcard(keys.claims) == 0


def test_a_task_gone_loses_its_claim(
    r: redis.Redis, keys: Keys, settings: Settings, store: TaskStore
) -> None:
    task, c = claimed(r, keys, store)
    r.delete(keys.task(task.id))

    assert commit(r, keys, settings, task, c) == Commit("released", reason="task")
    assert r.zcard(keys.claims) == 0
    assert r.zcard(keys.due) == 0


def test_an_occurrence_that_moved_puts_an_active_task_back_in_due(
    r: redis.Redis, keys: Keys, settings: Settings, store: TaskStore
) -> None:
    task, c = claimed(r, keys, store)
    occ = task.next_run_at
    assert occ is not None
    r.hset(keys.task(task.id), "next_run_at", occ + 5 * MINUTE)

    assert commit(r, keys, settings, task, c) == Commit("released", reason="moved")
    assert r.zscore(keys.due, task.id) == occ + 5 * MINUTE
    assert r.zcard(keys.claims) == 0


def test_the_commit_takes_the_dedupe_window_of_the_task_s_dedupe_key_as_it_is_now(
    r: redis.Redis, keys: Keys, settings: Settings, store: TaskStore
) -> None:
    task, c = claimed(r, keys, store, dedupe_key="k")
    # changed after the scheduler read the task; the window of the new key is held
    store.update(task.id, {"dedupe_key": "other"}, AGENT)
    r.set(keys.dedupe(AGENT, "other"), "someone-else", px=60_000)

    done = commit(r, keys, settings, task, c)

    [(run_id, status, _)] = done.runs
    assert (done.outcome, status) == ("committed", "deduped")
    assert "someone-else" in (r.hget(keys.run(run_id), "error") or "")
    assert not r.exists(keys.dedupe(AGENT, "k"))


def test_a_dedupe_key_removed_after_the_read_lets_the_run_through(
    r: redis.Redis, keys: Keys, settings: Settings, store: TaskStore
) -> None:
    task, c = claimed(r, keys, store, dedupe_key="k")
    r.set(keys.dedupe(AGENT, "k"), "someone-else", px=60_000)
    store.update(task.id, {"dedupe_key": None}, AGENT)

    [(run_id, status, _)] = commit(r, keys, settings, task, c).runs

    assert status == "queued"
    assert r.zscore(keys.outbox, run_id) is not None
    assert r.get(keys.dedupe(AGENT, "k")) == "someone-else"


def test_a_held_dedupe_window_ends_the_run_deduped(
    r: redis.Redis, keys: Keys, settings: Settings, store: TaskStore
) -> None:
    task, c = claimed(r, keys, store, dedupe_key="k")
    r.set(keys.dedupe(AGENT, "k"), "someone-else", px=60_000)

    done = commit(r, keys, settings, task, c)

    [(run_id, status, _)] = done.runs
    assert status == "deduped"
    assert "someone-else" in (r.hget(keys.run(run_id), "error") or "")
    assert r.zscore(keys.outbox, run_id) is None
    assert store.get(task.id).status == "active"


def test_a_used_up_rule_completes_the_task(
    r: redis.Redis, keys: Keys, settings: Settings, store: TaskStore
) -> None:
    task, c = claimed(
        r,
        keys,
        store,
        schedule_kind="rrule",
        schedule_expr="DTSTART:20300101T090000Z RRULE:FREQ=DAILY;COUNT=1",
    )

    done = commit(r, keys, settings, task, c)

    assert done.completed and done.next_run_at is None and len(done.runs) == 1
    after = store.get(task.id)
    assert (after.status, after.next_run_at) == ("completed", None)
    assert r.zscore(keys.due, task.id) is None
    for index in keys.indexes(AGENT, "completed", "rrule"):
        assert r.zscore(index, task.id) is not None
    for index in keys.indexes(AGENT, "active", "rrule"):
        if index not in keys.indexes(AGENT, "completed", "rrule"):
            assert r.zscore(index, task.id) is None


def test_a_once_task_leaves_due_and_stays_active_until_its_run_ends(
    r: redis.Redis, keys: Keys, settings: Settings, store: TaskStore
) -> None:
    from app import clock

    task, c = claimed(r, keys, store, schedule_kind="once", schedule_expr=once_at(clock.now_ms()))

    done = commit(r, keys, settings, task, c)

    assert not done.completed and [s for _, s, _ in done.runs] == ["queued"]
    after = store.get(task.id)
    assert (after.status, after.next_run_at) == ("active", None)
    assert r.zscore(keys.due, task.id) is None
    assert r.zcard(keys.claims) == 0


def test_a_once_task_whose_run_is_deduped_completes_now(
    r: redis.Redis, keys: Keys, settings: Settings, store: TaskStore
) -> None:
    from app import clock

    task, c = claimed(
        r,
        keys,
        store,
        schedule_kind="once",
        schedule_expr=once_at(clock.now_ms()),
        dedupe_key="k",
    )
    r.set(keys.dedupe(AGENT, "k"), "holder", px=60_000)

    done = commit(r, keys, settings, task, c)

    assert done.completed and [s for _, s, _ in done.runs] == ["deduped"]
    assert store.get(task.id).status == "completed"
    assert r.zscore(keys.index(AGENT, "completed", "once"), task.id) is not None
    assert r.zscore(keys.index(AGENT, "active", "once"), task.id) is None


def test_the_snoozed_occurrence_ends_the_snooze(
    r: redis.Redis, keys: Keys, settings: Settings, store: TaskStore
) -> None:
    task = create(store)
    occ = task.next_run_at
    assert occ is not None
    store.snooze(task.id, 90, "busy", AGENT)
    [c] = claim(r, keys, "due", occ + 90_000, LEASE, 10)
    task = store.get(task.id)

    done = commit(r, keys, settings, task, c)

    assert done.runs[0][0] == occurrence_run_id(task.id, occ + 90_000)
    after = store.get(task.id)
    assert (after.snoozed_until, after.snooze_reason) == (None, None)
    # occurrences inside the snooze are skipped: the next one is after the snoozed time
    assert after.next_run_at == occ + 2 * MINUTE


def test_several_runs_of_one_commit_get_their_own_ids(
    r: redis.Redis, keys: Keys, settings: Settings, store: TaskStore
) -> None:
    task, c = claimed(r, keys, store)
    occ = task.next_run_at
    assert occ is not None
    plan = Plan(occ, (occ, occ + MINUTE, occ + 2 * MINUTE), occ + 3 * MINUTE, "repeat", False)

    done = commit(r, keys, settings, task, c, plan)

    assert [run_id for run_id, _, _ in done.runs] == [
        occurrence_run_id(task.id, occ + i * MINUTE) for i in range(3)
    ]
    assert [run.scheduled_for for run in runs_of(r, keys, task.id)] == [
        occ + i * MINUTE for i in range(3)
    ]
    assert store.get(task.id).run_count == 3
    assert r.zscore(keys.due, task.id) == occ + 3 * MINUTE
