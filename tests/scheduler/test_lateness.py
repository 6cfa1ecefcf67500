"""No polling: an idle scheduler sends Redis next to nothing, and a task created due 200 ms ahead
wakes it, so it is enqueued at its time: never before, and long before the scheduler's longest
sleep (5 s), which is when a scheduler that missed the wake-up would find it.

These tests watch a scheduler process on the wall clock, so they wait for real, briefly. How
late a woken scheduler is, in milliseconds, is a figure of bench/scheduler.py, not of a test
that must pass on a busy machine.
"""

import signal
import time
from pathlib import Path

import redis
from rq.job import Job

from app import clock
from app.store.keys import Keys
from app.store.tasks import TaskStore
from tests.support.agents import AGENT
from tests.support.scheduler import create, once_at, runs_of, spawn_scheduler, wake_subscribers
from tests.support.waiting import wait_for

IDLE_SECONDS = 2.0
TRIES = 5
#: far below the 5 s longest sleep: only a wake-up explains an enqueue within this bound
WOKEN_WITHIN_MS = 1500


def commands_since_reset(r: redis.Redis) -> dict[str, int]:
    """Calls per command since CONFIG RESETSTAT, without the test's own INFO/CONFIG."""
    stats = r.info("commandstats")
    return {
        name.removeprefix("cmdstat_"): int(v["calls"])
        for name, v in stats.items()
        if not name.startswith(("cmdstat_info", "cmdstat_config"))
    }


def test_an_idle_scheduler_is_quiet_and_a_new_task_is_enqueued_on_time(
    r: redis.Redis,
    rq: redis.Redis,
    keys: Keys,
    redis_url: str,
    store: TaskStore,
    tmp_path: Path,
) -> None:
    log = tmp_path / "scheduler.log"
    proc = spawn_scheduler(redis_url, log)
    try:
        wait_for(lambda: wake_subscribers(r, keys) == 1)
        # a task far ahead: the scheduler knows its next time and sleeps until then
        create(store, schedule_expr="0 0 1 1 *")
        time.sleep(0.2)

        r.config_resetstat()
        time.sleep(IDLE_SECONDS)
        idle = commands_since_reset(r)
        # at most one bounded wake-up (5 reads) in the window; a poller sends hundreds
        assert sum(idle.values()) <= 5, idle

        late = []
        for _ in range(TRIES):
            at = clock.now_ms() + 200
            task = create(store, schedule_kind="once", schedule_expr=once_at(at))
            [run] = wait_for(lambda t=task.id: runs_of(r, keys, t), timeout=10)
            # the run is committed first, then put on RQ: wait for the job itself
            job_key = Job.key_for(run.id)
            wait_for(lambda k=job_key: rq.exists(k), timeout=10)
            enqueued_at = Job.fetch(run.id, connection=rq).enqueued_at
            assert enqueued_at is not None
            late.append(clock.to_ms(enqueued_at) - at)
    finally:
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(10) == 0, log.read_text()

    assert all(0 <= ms < WOKEN_WITHIN_MS for ms in late), late


def test_a_snoozed_event_run_is_released_when_the_snooze_ends(
    r: redis.Redis,
    rq: redis.Redis,
    keys: Keys,
    redis_url: str,
    store: TaskStore,
    tmp_path: Path,
) -> None:
    from app.service.backend import Backend
    from app.service.events import emit_event

    task = create(store, schedule_kind="event", schedule_expr="ping")
    log = tmp_path / "scheduler.log"
    proc = spawn_scheduler(redis_url, log)
    try:
        wait_for(lambda: wake_subscribers(r, keys) == 1)
        until = store.snooze(task.id, 1, None, AGENT).snoozed_until
        assert until is not None
        # the emit announces the held run: the sleeping scheduler wakes for it
        _, [run] = emit_event(Backend(r, rq, keys, store.settings), AGENT, "ping", {})
        assert run.status == "pending"
        wait_for(lambda: r.hget(keys.run(run.id), "status") == "queued", timeout=5)
        enqueued_at = Job.fetch(run.id, connection=rq).enqueued_at
    finally:
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(10) == 0, log.read_text()

    assert enqueued_at is not None
    assert 0 <= clock.to_ms(enqueued_at) - until < WOKEN_WITHIN_MS
