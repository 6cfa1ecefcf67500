"""A scheduler outlives its Redis: when the server dies and comes back, the loop reconnects,
subscribes again and serves new tasks on time."""

import logging
import signal
import threading
from collections.abc import Callable

import pytest
import redis

from app import clock
from app.embedded_redis import EmbeddedRedis
from app.store.keys import Keys
from app.store.tasks import TaskStore
from tests.support.scheduler import create, once_at, rq_job_ids, runs_of, wake_subscribers
from tests.support.waiting import wait_for
from workers.scheduler import Scheduler


def test_the_loop_survives_a_redis_restart(
    r: redis.Redis,
    rq: redis.Redis,
    keys: Keys,
    redis_server: EmbeddedRedis,
    store: TaskStore,
    make_scheduler: Callable[..., Scheduler],
) -> None:
    stop = threading.Event()
    thread = threading.Thread(target=make_scheduler().run, args=(stop,))
    thread.start()
    try:
        wait_for(lambda: wake_subscribers(r, keys) == 1)
        redis_server.stop(signal.SIGKILL)
        redis_server.start()
        wait_for(lambda: wake_subscribers(r, keys) == 1, timeout=10)

        task = create(store, schedule_kind="once", schedule_expr=once_at(clock.now_ms() + 300))
        wait_for(lambda: rq_job_ids(rq), timeout=5)
    finally:
        stop.set()
        thread.join(10)
    assert not thread.is_alive()
    [run] = runs_of(r, keys, task.id)
    assert rq_job_ids(rq) == [run.id]


def test_an_outage_is_one_warning_and_one_recovery_line(
    r: redis.Redis,
    keys: Keys,
    redis_server: EmbeddedRedis,
    make_scheduler: Callable[..., Scheduler],
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.DEBUG, logger="chime.scheduler")
    stop = threading.Event()
    thread = threading.Thread(target=make_scheduler().run, args=(stop,))
    thread.start()

    def events(name: str) -> list[logging.LogRecord]:
        return [rec for rec in caplog.records if rec.getMessage() == name]

    try:
        wait_for(lambda: wake_subscribers(r, keys) == 1)
        redis_server.stop(signal.SIGKILL)
        # several failed tries, backing off, before Redis comes back
        wait_for(lambda: len(events("scheduler.redis_unavailable")) >= 4, timeout=20)
        redis_server.start()
        wait_for(lambda: events("scheduler.redis_recovered"), timeout=10)
    finally:
        stop.set()
        thread.join(10)
    unavailable = events("scheduler.redis_unavailable")
    assert [rec.levelno for rec in unavailable[:1]] == [logging.WARNING]
    assert {rec.levelno for rec in unavailable[1:]} == {logging.DEBUG}
    assert len(events("scheduler.redis_recovered")) == 1
    assert not [rec for rec in caplog.records if rec.exc_info or rec.levelno >= logging.ERROR]
