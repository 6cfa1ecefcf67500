"""Reading runs for the API: one run, or a task's recent runs newest first.

A task's runs zset is capped (``CHIME_RUN_HISTORY``), so filtering it by status in Python reads
a bounded number of hashes.
"""

from typing import Any

import redis

from app.core.errors import NotFound
from app.core.task import Run
from app.store.codec import from_hash
from app.store.event_records import attach_events
from app.store.keys import Keys

#: run ids are UUIDs or scheduler ids built from one; a longer id names no run
_ID_MAX = 200


def get_run(client: redis.Redis, keys: Keys, run_id: str, agent: str | None) -> Run:
    """The run, or :class:`NotFound` when it does not exist or is another agent's."""
    fields: Any = client.hgetall(keys.run(run_id)) if 0 < len(run_id) <= _ID_MAX else {}
    if not fields or (agent is not None and fields.get("agent_id") != agent):
        raise NotFound("run", run_id)
    return attach_events(client, keys, [from_hash(Run, fields)])[0]


def list_runs(
    client: redis.Redis,
    keys: Keys,
    task_id: str,
    status: str | None = None,
    limit: int = 50,
    offset: int = 0,
) -> tuple[list[Run], int]:
    """A page of the task's runs, newest first, and how many match ``status`` in all."""
    runs_key = keys.task_runs(task_id)
    if status is None:
        pipe = client.pipeline(transaction=False)
        pipe.zcard(runs_key)
        pipe.zrevrange(runs_key, offset, offset + limit - 1)
        total, ids = pipe.execute()
        return _load(client, keys, ids), int(total)
    all_ids: list[str] = list(client.zrevrange(runs_key, 0, -1))  # type: ignore[arg-type]
    pipe = client.pipeline(transaction=False)
    for run_id in all_ids:
        pipe.hget(keys.run(run_id), "status")
    statuses = pipe.execute()
    matching = [i for i, s in zip(all_ids, statuses, strict=True) if s == status]
    return _load(client, keys, matching[offset : offset + limit]), len(matching)


def load_runs(client: redis.Redis, keys: Keys, ids: list[str]) -> list[Run]:
    """The runs of ``ids`` that exist, in that order, in one round trip."""
    return _load(client, keys, ids)


def _load(client: redis.Redis, keys: Keys, ids: list[str]) -> list[Run]:
    if not ids:
        return []
    pipe = client.pipeline(transaction=False)
    for run_id in ids:
        pipe.hgetall(keys.run(run_id))
    return attach_events(client, keys, [from_hash(Run, f) for f in pipe.execute() if f])
