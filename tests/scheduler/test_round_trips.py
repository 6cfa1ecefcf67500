"""What one scheduler batch costs in round trips to Redis: its counting (the runs it made, the
batch size, the skipped misfires) goes in one pipeline, not one per layer, and its jobs are
described from the tasks it read, not read again."""

from collections.abc import Iterator
from typing import Any, ClassVar

import pytest
import redis
from rq.job import Job

from app import clock
from app.settings import Settings
from app.store.enqueue import describe_runs
from app.store.keys import Keys
from app.store.scheduling import occurrence_run_id
from app.store.tasks import TaskStore
from tests.support.scheduler import create
from workers.scheduler import Scheduler


class _Recording(redis.Connection):
    """A connection that keeps what it sends, one entry per round trip (a pipeline sends all
    its commands at once)."""

    sent: ClassVar[list[bytes]] = []

    def send_packed_command(self, command: Any, check_health: bool = True) -> None:
        chunks = [command] if isinstance(command, bytes | str) else list(command)
        _Recording.sent.append(b"".join(c.encode() if isinstance(c, str) else c for c in chunks))
        super().send_packed_command(command, check_health)


def _recording_client(url: str, **kw: Any) -> redis.Redis:
    pool = redis.ConnectionPool.from_url(url, connection_class=_Recording, **kw)
    return redis.Redis(connection_pool=pool)


@pytest.fixture
def recording(settings: Settings) -> Iterator[redis.Redis]:
    _Recording.sent = []
    client = _recording_client(settings.redis_url, decode_responses=True)
    try:
        yield client
    finally:
        client.close()
        client.connection_pool.disconnect()


def test_one_batch_sends_its_counts_in_one_round_trip(
    recording: redis.Redis, keys: Keys, store: TaskStore, settings: Settings
) -> None:
    tasks = [create(store) for _ in range(5)]
    occ = tasks[0].next_run_at
    assert occ is not None
    scheduler = Scheduler(settings, client=recording)
    try:
        clock.shift(occ - clock.now_ms())
        _Recording.sent = []
        done = scheduler.run_once()
    finally:
        scheduler.close()

    assert (done.claimed, done.runs["queued"], done.enqueued) == (5, 5, 5)
    counting = [s for s in _Recording.sent if keys.stats.encode() in s]
    assert len(counting) == 1
    # the runs' counts and the batch size are both in it
    assert b"runs:queued:schedule" in counting[0] and b"claim_batch:sum" in counting[0]


def test_one_batch_describes_its_jobs_without_reading_its_runs_again(
    r: redis.Redis, rq: redis.Redis, keys: Keys, store: TaskStore, settings: Settings
) -> None:
    tasks = [create(store, title=f"report {i}") for i in range(3)]
    occ = tasks[0].next_run_at
    assert occ is not None
    recording_rq = _recording_client(settings.redis_url)
    scheduler = Scheduler(settings, rq=recording_rq)
    try:
        clock.shift(occ - clock.now_ms())
        _Recording.sent = []
        assert scheduler.run_once().enqueued == 3
    finally:
        scheduler.close()
        recording_rq.close()
        recording_rq.connection_pool.disconnect()

    # no read of the runs' owners (HMGET) nor of their tasks' titles
    assert not [s for s in _Recording.sent if b"HMGET" in s.upper() or b"title" in s]
    for task in tasks:
        run_id = occurrence_run_id(task.id, occ)
        # what a job enqueued by any other use case shows (read from the run and its task)
        assert (
            Job.fetch(run_id, connection=rq).description
            == (describe_runs(rq, keys, [run_id])[run_id])
        )
        assert (Job.fetch(run_id, connection=rq).description or "").startswith(task.title)
