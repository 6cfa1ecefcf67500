"""Upcoming, live: the fire times shown for a per-second task are the occurrences a scheduler
process then fires, one run each, none missing and none extra."""

import signal
from itertools import pairwise
from pathlib import Path

import redis

from app import clock
from app.core.upcoming import upcoming
from app.settings import Settings
from app.store.keys import Keys
from app.store.tasks import TaskStore
from tests.support.scheduler import create, runs_of, spawn_scheduler, wake_subscribers
from tests.support.waiting import wait_for


def test_upcoming_is_what_a_scheduler_process_fires(
    r: redis.Redis, keys: Keys, store: TaskStore, settings: Settings, redis_url: str, tmp_path: Path
) -> None:
    proc = spawn_scheduler(redis_url, tmp_path / "scheduler.log")
    try:
        wait_for(lambda: wake_subscribers(r, keys) == 1)
        task = create(store, schedule_expr="* * * * * *")
        wait_for(lambda: runs_of(r, keys, task.id), timeout=30)
        current = store.get(task.id)
        grace = round(settings.misfire_grace_seconds * 1000)
        shown = upcoming(current, clock.now_ms(), grace, 5)
        assert len(shown) == 5
        assert [b - a for a, b in pairwise(shown)] == [1000] * 4

        def fired() -> list[int]:
            found = [run.scheduled_for for run in runs_of(r, keys, task.id)]
            return [t for t in found if t is not None and shown[0] <= t <= shown[-1]]

        wait_for(lambda: len(fired()) >= 5, timeout=60)
        assert fired() == shown
        earlier = [run.scheduled_for for run in runs_of(r, keys, task.id)]
        assert len(earlier) == len(set(earlier))
    finally:
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(20) == 0
