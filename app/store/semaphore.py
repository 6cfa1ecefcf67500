"""Concurrency slots per (agent, concurrency_key): where they live and what they hold.

Acquire and release are parts of the run scripts (``lua/includes/chime_sem_fill.lua`` and
``chime_sem_park.lua``, used by ``start_run.lua`` and ``finish_run.lua``), so taking a slot and
starting a run, or ending a run and handing its slot to the next waiting run, are each one
atomic step.
"""

import redis

from app.store.keys import Keys


def slot_keys(keys: Keys, agent: str, concurrency_key: str | None, run_id: str) -> list[str]:
    """[semaphore zset, FIFO list] of a concurrency key; the run's hash twice when there is none.

    Scripts take a fixed number of KEYS; the run hash stands in so that every key they get is
    one they may touch.
    """
    if not concurrency_key:
        return [keys.run(run_id), keys.run(run_id)]
    return [keys.semaphore(agent, concurrency_key), keys.semaphore_queue(agent, concurrency_key)]


def holders(client: redis.Redis, keys: Keys, agent: str, concurrency_key: str) -> dict[str, int]:
    """Run ids holding a slot, with their lease expiry (ms)."""
    found: list[tuple[str, float]] = client.zrange(
        keys.semaphore(agent, concurrency_key), 0, -1, withscores=True
    )  # type: ignore[assignment]
    return {str(run_id): int(score) for run_id, score in found}


def waiting(client: redis.Redis, keys: Keys, agent: str, concurrency_key: str) -> list[str]:
    """Run ids waiting for a slot, first in line first."""
    return [str(x) for x in client.lrange(keys.semaphore_queue(agent, concurrency_key), 0, -1)]
