"""An event's data is stored once (``P:event:<id>``, written by ``lua/emit_event.lua``) and
referred to by each of its runs, which keep only the event's id, name and depth: an event of
64 KiB matching 1,000 tasks costs 64 KiB, not 64 MiB. Whoever reads runs to show or execute
them puts the data back in here, so a run's ``event`` looks as it always did.
"""

from collections.abc import Sequence
from typing import Any

import msgspec
import redis
import redis.asyncio

from app.core.task import Run
from app.store.keys import Keys


def _wanting(runs: Sequence[Run]) -> list[Run]:
    return [run for run in runs if run.event is not None and "data" not in run.event]


def _fill(runs: list[Run], found: Sequence[Any]) -> None:
    for run, raw in zip(runs, found, strict=True):
        data = msgspec.json.decode(raw) if raw else None
        run.event = {**(run.event or {}), "data": data}


def attach_events(client: redis.Redis, keys: Keys, runs: list[Run]) -> list[Run]:
    """``runs`` with each event's data read from its record (a gone record shows null)."""
    wanting = _wanting(runs)
    if wanting:
        with client.pipeline(transaction=False) as pipe:
            for run in wanting:
                pipe.hget(keys.event(str((run.event or {}).get("id"))), "data")
            _fill(wanting, pipe.execute())
    return runs


async def attach_events_async(
    client: "redis.asyncio.Redis", keys: Keys, runs: list[Run | None]
) -> list[Run | None]:
    """:func:`attach_events` on an asyncio client (the worker)."""
    wanting = _wanting([run for run in runs if run is not None])
    if wanting:
        pipe = client.pipeline(transaction=False)
        for run in wanting:
            pipe.hget(keys.event(str((run.event or {}).get("id"))), "data")
        _fill(wanting, await pipe.execute())
    return runs
