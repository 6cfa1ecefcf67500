"""Cancelling one run (``POST /runs/{id}/cancel``): one script, ``lua/cancel_run.lua``.

A run that has not started ends ``canceled`` at once (the use case, ``app/service/runs.py``,
takes it off its RQ queue and enqueues the runs its freed slots went to); a running one is
marked and the workers are told on ``Keys.cancels``: the worker running it aborts the step in
flight and records the attempt, which ``finish_run`` ends ``canceled`` with no retry.
"""

from dataclasses import dataclass, field
from typing import Literal

import redis

from app import clock
from app.core.errors import Conflict, NotFound
from app.settings import Settings
from app.store import history, scripts
from app.store.keys import Keys
from app.store.scripts import ErrorCode, ScriptError


@dataclass(frozen=True)
class Canceled:
    """``canceled``: the run ended now; ``stopping``: the worker running it is stopping it."""

    outcome: Literal["canceled", "stopping"]
    #: the run was queued: its RQ job is to be taken off its queue
    was_queued: bool = False
    #: (run id, priority) of waiting runs handed the slots it freed: to be enqueued
    handed: list[tuple[str, int]] = field(default_factory=list)


def cancel_run(
    client: redis.Redis,
    keys: Keys,
    settings: Settings,
    run_id: str,
    agent: str | None,
) -> Canceled:
    """Cancel the run (another agent's is :class:`NotFound`); a terminal one is a
    :class:`Conflict` naming its status."""
    run = history.get_run(client, keys, run_id, agent)
    run_key = keys.run(run.id)
    ckey = client.hget(keys.task(run.task_id), "concurrency_key")
    fifo = keys.semaphore_queue(run.agent_id, str(ckey)) if ckey else run_key
    sem = keys.semaphore(run.agent_id, str(ckey)) if ckey else run_key
    reply = scripts.script(client, "cancel_run")(
        keys=[run_key, keys.delayed, keys.outbox, fifo, sem, keys.task(run.task_id)],
        args=[
            clock.now_ms(),
            keys.run(""),
            clock.ms(settings.semaphore_lease_seconds),
            clock.ms(settings.enqueue_grace_seconds),
            keys.cancels,
            keys.wake,
        ],
    )
    try:
        scripts.check(reply)
    except ScriptError as exc:
        if exc.code is ErrorCode.NOT_FOUND:
            raise NotFound("run", run_id) from None
        if exc.code is ErrorCode.CONFLICT:
            raise Conflict("cancel", exc.detail, what="run") from None
        raise
    if reply[0] == "stopping":
        return Canceled("stopping")
    handed = [(str(reply[i]), int(reply[i + 1])) for i in range(2, len(reply), 2)]
    return Canceled("canceled", was_queued=reply[1] == "queued", handed=handed)
