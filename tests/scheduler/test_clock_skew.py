"""A scheduler on a machine whose wall clock is 50 s off fires nothing early and nothing late:
it runs on Redis server time (``app/clock.py``, ``app/store/servertime.py``)."""

import signal
import time
from pathlib import Path

import pytest
import redis

from app import clock
from app.store import servertime
from app.store.keys import Keys
from app.store.tasks import TaskStore
from tests.support.scheduler import create, once_at, runs_of, spawn_scheduler, wake_subscribers
from tests.support.waiting import wait_for

#: the test process and its Redis share this machine's clock; anchoring is within a round trip
ANCHOR_SLACK_MS = 50


@pytest.mark.parametrize("skew_ms", [50_000, -50_000])
def test_a_skewed_scheduler_fires_on_server_time(
    r: redis.Redis, keys: Keys, store: TaskStore, redis_url: str, tmp_path: Path, skew_ms: int
) -> None:
    log = tmp_path / "scheduler.log"
    proc = spawn_scheduler(
        redis_url, log, "-m", "app.cli", "scheduler", CHIME_TEST_CLOCK_SKEW_MS=str(skew_ms)
    )
    try:
        wait_for(lambda: wake_subscribers(r, keys) == 1)
        at = clock.now_ms() + 2000
        task = create(store, schedule_kind="once", schedule_expr=once_at(at))
        [run] = wait_for(lambda: runs_of(r, keys, task.id), timeout=30, every=0.005)
        seen = clock.now_ms()
    finally:
        proc.send_signal(signal.SIGTERM)
        code = proc.wait(20)
    assert code == 0, log.read_text()
    assert seen >= at - ANCHOR_SLACK_MS, f"fired {at - seen} ms early"
    assert run.scheduled_for == at
    assert run.created_at >= at - ANCHOR_SLACK_MS


def test_the_skew_setting_really_moves_an_unanchored_clock(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(clock, "_skew_ms", 50_000)
    wall = time.time_ns() // 1_000_000
    assert clock.now_ms() - wall >= 49_000


def test_an_anchored_clock_ignores_the_wall(
    r: redis.Redis, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(clock, "_skew_ms", 50_000)
    try:
        skew = servertime.anchor_once(r)
        seconds, micros = r.time()
        server = seconds * 1000 + micros // 1000
        assert abs(clock.now_ms() - server) < ANCHOR_SLACK_MS
        assert skew >= 49_000
    finally:
        clock.unanchor()
