"""Fixtures for the scheduler tests: the task store, an RQ client and in-process schedulers."""

from collections.abc import Callable, Iterator
from typing import Any

import pytest
import redis

from app.settings import Settings
from app.store.keys import Keys
from app.store.limits import set_overrides
from app.store.tasks import TaskStore
from tests.support.agents import AGENT, OTHER_AGENT
from tests.support.scheduler import settings_with
from workers.scheduler import Scheduler


@pytest.fixture
def store(r: redis.Redis, keys: Keys, settings: Settings) -> TaskStore:
    """The task store. These tests follow thousands of one agent's runs onto RQ: its
    ``max_running`` is raised above them (the limits have tests of their own, in
    ``tests/store/test_agent_gate.py`` and ``tests/workers/test_agent_limits.py``)."""
    for agent in (AGENT, OTHER_AGENT):
        set_overrides(r, keys, agent, {"max_running": 100_000, "max_runs_per_minute": 10_000_000})
    return TaskStore(r, keys, settings)


@pytest.fixture
def make_scheduler(settings: Settings) -> Iterator[Callable[..., Scheduler]]:
    """Schedulers with their own clients; ``make_scheduler(hook=..., claim_batch=...)`` takes
    Scheduler arguments and settings overrides."""
    made: list[Scheduler] = []

    def make(**kw: Any) -> Scheduler:
        own = {k: kw.pop(k) for k in ("hook", "max_sleep") if k in kw}
        scheduler = Scheduler(settings_with(settings, **kw), **own)
        made.append(scheduler)
        return scheduler

    yield make
    for scheduler in made:
        scheduler.close()
