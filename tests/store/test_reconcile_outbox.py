"""lua/reconcile_outbox.lua and the outbox pass: every queued run no one owns is enqueued again,
a run whose job waits on its queue is left to it, and the entries of runs that moved on go."""

import pytest
import redis
from rq import Queue
from rq.job import Job

from app import clock
from app.service.backend import Backend
from app.service.runs import reconcile
from app.settings import Settings
from app.store import stats
from app.store.enqueue import enqueue_runs
from app.store.keys import Keys, queue_name
from app.store.outbox import LONGEST_LOOK_GRACES, judge
from app.store.tasks import TaskStore
from tests.support.agents import AGENT
from tests.support.scheduler import create, db_state, rq_job_ids

GRACE = 30_000


@pytest.fixture
def store(r: redis.Redis, keys: Keys, settings: Settings) -> TaskStore:
    return TaskStore(r, keys, settings)


def chime_state(r: redis.Redis) -> dict[str, object]:
    """Chime's keys (RQ's job hashes hold bytes that are not text)."""
    return db_state(r, "{chime}*")


def queued_run(store: TaskStore, priority: int = 5) -> str:
    task = create(store, schedule_kind="event", schedule_expr="", priority=priority)
    return store.run_now(task.id, AGENT).id


def test_the_enqueue_leaves_the_run_in_the_outbox_until_it_starts(
    store: TaskStore, r: redis.Redis, rq: redis.Redis, keys: Keys
) -> None:
    run_id = queued_run(store)
    deadline = r.zscore(keys.outbox, run_id)
    assert deadline is not None
    enqueue_runs(rq, keys, [(run_id, 5)])
    assert r.zscore(keys.outbox, run_id) == deadline
    assert rq_job_ids(rq) == [run_id]


def test_a_job_waiting_on_its_queue_is_looked_at_again_later(
    store: TaskStore, r: redis.Redis, rq: redis.Redis, keys: Keys
) -> None:
    run_id = queued_run(store, priority=3)
    enqueue_runs(rq, keys, [(run_id, 3)])
    enqueued_at = int(r.hget(keys.run(run_id), "enqueued_at") or 0)
    now = enqueued_at + GRACE
    assert judge(r, keys, [run_id], now, GRACE) == [("waiting", 3)]
    # waited one grace: the next look is one grace on
    assert r.zscore(keys.outbox, run_id) == now + GRACE
    later = enqueued_at + 5 * GRACE
    assert judge(r, keys, [run_id], later, GRACE) == [("waiting", 3)]
    assert r.zscore(keys.outbox, run_id) == later + 5 * GRACE
    much_later = enqueued_at + 100 * GRACE
    judge(r, keys, [run_id], much_later, GRACE)
    assert r.zscore(keys.outbox, run_id) == much_later + LONGEST_LOOK_GRACES * GRACE
    assert rq_job_ids(rq) == [run_id]


def test_a_job_taken_off_its_queue_and_never_started_is_lost(
    store: TaskStore, r: redis.Redis, rq: redis.Redis, keys: Keys
) -> None:
    run_id = queued_run(store)
    enqueue_runs(rq, keys, [(run_id, 5)])
    # what a worker killed between its pop and the start leaves behind
    assert rq.lpop(Queue(queue_name(5), connection=rq).key) == run_id.encode()
    before = chime_state(r)
    assert judge(r, keys, [run_id], clock.now_ms(), GRACE) == [("lost", 5)]
    assert chime_state(r) == before


def test_a_job_deleted_by_hand_is_lost_even_with_its_id_on_the_queue(
    store: TaskStore, r: redis.Redis, rq: redis.Redis, keys: Keys
) -> None:
    run_id = queued_run(store, priority=7)
    enqueue_runs(rq, keys, [(run_id, 7)])
    rq.delete(Job.key_for(run_id))
    assert judge(r, keys, [run_id], clock.now_ms(), GRACE) == [("lost", 7)]


def test_a_job_on_another_priority_queue_does_not_count(
    store: TaskStore, r: redis.Redis, rq: redis.Redis, keys: Keys
) -> None:
    run_id = queued_run(store, priority=2)
    enqueue_runs(rq, keys, [(run_id, 4)])
    assert judge(r, keys, [run_id], clock.now_ms(), GRACE) == [("lost", 2)]


@pytest.mark.parametrize("status", ["running", "pending", "succeeded", "canceled"])
def test_runs_that_moved_on_leave_the_outbox(
    store: TaskStore, r: redis.Redis, keys: Keys, status: str
) -> None:
    run_id = queued_run(store, priority=4)
    r.hset(keys.run(run_id), "status", status)
    assert judge(r, keys, [run_id, "no-such-run"], clock.now_ms(), GRACE) == [
        ("gone", 4),
        ("gone", 0),
    ]
    assert r.zscore(keys.outbox, run_id) is None


def test_one_call_judges_a_mixed_batch_in_order(
    store: TaskStore, r: redis.Redis, rq: redis.Redis, keys: Keys
) -> None:
    waiting, lost, gone = (queued_run(store, priority=p) for p in (1, 9, 5))
    enqueue_runs(rq, keys, [(waiting, 1)])
    r.hset(keys.run(gone), "status", "succeeded")
    assert judge(r, keys, [lost, gone, waiting], clock.now_ms(), GRACE) == [
        ("lost", 9),
        ("gone", 5),
        ("waiting", 1),
    ]


def test_the_pass_enqueues_lost_runs_again_and_counts_them(
    store: TaskStore, r: redis.Redis, rq: redis.Redis, keys: Keys
) -> None:
    stranded, waiting, never = queued_run(store), queued_run(store), queued_run(store)
    enqueue_runs(rq, keys, [(stranded, 5), (waiting, 5)])
    queue = Queue(queue_name(5), connection=rq)
    rq.lrem(queue.key, 0, stranded)
    # what RQ kept of an earlier try goes too
    rq.zadd(queue.failed_job_registry.key, {stranded: 1})
    rq.rpush(queue.intermediate_queue_key, stranded)
    now = clock.now_ms() + GRACE
    found = reconcile(Backend(r, rq, keys, store.settings), now, GRACE, 10)
    assert sorted(found.requeued) == sorted([stranded, never])
    assert found.waiting == [waiting]
    assert found.gone == [] and not found.more
    assert sorted(rq_job_ids(rq)) == sorted([stranded, waiting, never])
    assert rq.zcard(queue.failed_job_registry.key) == 0
    assert rq.llen(queue.intermediate_queue_key) == 0
    assert r.hget(keys.stats, stats.RUNS_REQUEUED) == "2"
    # still in the ledger: a lost run enqueued again is looked at again after the grace
    assert r.zscore(keys.outbox, stranded) == now + GRACE
    # nothing overdue now: the next pass does nothing
    assert reconcile(Backend(r, rq, keys, store.settings), now, GRACE, 10).requeued == []


def test_a_started_run_leaves_the_outbox_and_is_never_enqueued_again(
    store: TaskStore, r: redis.Redis, rq: redis.Redis, keys: Keys, settings: Settings
) -> None:
    from app.store.runs import load_run, start_run

    run_id = queued_run(store)
    enqueue_runs(rq, keys, [(run_id, 5)])
    rq.lpop(Queue(queue_name(5), connection=rq).key)
    start_run(r, keys, settings, load_run(r, keys, run_id))
    assert r.zscore(keys.outbox, run_id) is None
    found = reconcile(Backend(r, rq, keys, store.settings), clock.now_ms() + 10 * GRACE, GRACE, 10)
    assert found.requeued == [] and rq_job_ids(rq) == []


def test_a_queue_is_searched_at_most_depth_ids_deep(
    store: TaskStore, r: redis.Redis, rq: redis.Redis, keys: Keys
) -> None:
    first, deep, stranded = queued_run(store), queued_run(store), queued_run(store)
    queue = Queue(queue_name(5), connection=rq).key
    enqueue_runs(rq, keys, [(first, 5)])
    rq.rpush(queue, *[f"other-{i}" for i in range(5)])
    enqueue_runs(rq, keys, [(deep, 5), (stranded, 5)])
    rq.lrem(queue, 0, stranded)
    now = clock.now_ms()
    # the head is searched: found within the depth
    assert judge(r, keys, [first], now, GRACE, depth=3) == [("waiting", 5)]
    # deeper than the depth in a longer queue: not searched, counted as waiting
    assert judge(r, keys, [deep, stranded], now, GRACE, depth=3) == [
        ("waiting", 5),
        ("waiting", 5),
    ]
    # once the backlog is no longer than the depth, the stranded one is found lost
    rq.ltrim(queue, 6, -1)
    assert rq.lrange(queue, 0, -1) == [deep.encode()]
    assert judge(r, keys, [deep, stranded], now, GRACE, depth=3) == [
        ("waiting", 5),
        ("lost", 5),
    ]


@pytest.mark.parametrize(("grace", "depth"), [(0, 10), (-1, 10), (GRACE, 0)])
def test_a_grace_or_depth_that_is_not_positive_is_refused(
    r: redis.Redis, keys: Keys, grace: int, depth: int
) -> None:
    with pytest.raises(ValueError):
        judge(r, keys, ["a"], clock.now_ms(), grace, depth)


def test_a_run_canceled_before_its_enqueue_leaves_no_job(
    store: TaskStore, r: redis.Redis, rq: redis.Redis, keys: Keys
) -> None:
    # the outbox pass (or any use case) made the run queued, a cancel ended it and found no
    # job to delete, then the enqueue comes: it must not leave a job without a TTL behind
    canceled = queued_run(store, priority=4)
    task_id = r.hget(keys.run(canceled), "task_id")
    assert task_id
    kept = queued_run(store, priority=4)
    assert store.cancel(task_id, AGENT)[1] == [canceled]
    assert enqueue_runs(rq, keys, [(canceled, 4), (kept, 4)], requeue=True) == [kept]
    assert not rq.exists(Job.key_for(canceled))
    assert rq_job_ids(rq) == [kept]
    assert rq.ttl(Job.key_for(kept)) == -1
