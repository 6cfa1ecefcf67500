"""The run lifecycle on Redis once a run is on RQ: start, heartbeat, finish or retry, recovery.

Each transition is one Lua script (``lua/start_run.lua``, ``renew_run.lua``,
``finish_run.lua``). The attempt number fences them: an attempt that was recovered after its
worker went silent cannot be finished a second time by that worker if it wakes up.

Recovery of lost workers: a running attempt holds a heartbeat lease in ``keys.running``
(``settings.semaphore_lease_seconds``, renewed by the job). Any worker process sweeps it
(``recover_lapsed_runs``): an attempt whose lease lapsed counts as failed and is retried per
the task's backoff, or fails for good on its last attempt; its concurrency slot is released in
the same script.
"""

import random
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import msgspec
import redis

from app import clock
from app.core.backoff import retry_delay
from app.core.status import RUN_TERMINAL
from app.core.task import Run, Task
from app.settings import Settings
from app.store import scripts
from app.store.codec import from_hash
from app.store.keys import Keys
from app.store.scripts import ErrorCode, ScriptError
from app.store.semaphore import slot_keys

_RETRIES = 10
_json = msgspec.json.Encoder()

#: error of an attempt whose worker stopped renewing its lease
LOST_WORKER_ERROR = "worker lost: no heartbeat within the lease; counted as a failed attempt"


@dataclass(frozen=True)
class Started:
    """``running`` (go on with the pipeline) or ``parked`` (no slot: the job ends)."""

    status: str
    attempt: int
    #: (run id, priority) of waiting runs handed a slot on the way: enqueue them
    handed: list[tuple[str, int]] = field(default_factory=list)
    #: the concurrency key whose slot the run holds when ``running``
    concurrency_key: str | None = None


@dataclass(frozen=True)
class Finished:
    status: str
    task_completed: bool
    handed: list[tuple[str, int]] = field(default_factory=list)
    #: when ``status`` is ``pending``: the retry's release time (ms)
    next_attempt_at: int | None = None


def load_run(client: redis.Redis, keys: Keys, run_id: str) -> Run | None:
    fields = client.hgetall(keys.run(run_id))
    return from_hash(Run, fields) if fields else None


def load_task(client: redis.Redis, keys: Keys, task_id: str) -> Task | None:
    fields = client.hgetall(keys.task(task_id))
    return from_hash(Task, fields) if fields else None


def start_run(
    client: redis.Redis,
    keys: Keys,
    settings: Settings,
    run: Run,
    task: Task | None = None,
) -> Started:
    """Move a ``queued`` run to ``running``, taking its concurrency slot first.

    ``task``, when the caller read it already, saves a read; a concurrency key changed since is
    caught by the script and read again. Raises :class:`ScriptError`: ``NOT_FOUND`` (no
    run/task), ``CONFLICT`` (the run is not ``queued``: canceled, or a duplicate job of a run
    that already started).
    """
    known = task is not None
    ckey = task.concurrency_key if task is not None else None
    for _ in range(_RETRIES):
        if not known:
            ckey = _str(client.hget(keys.task(run.task_id), "concurrency_key"))
        known = False
        sem, fifo = slot_keys(keys, run.agent_id, ckey, run.id)
        result = scripts.script(client, "start_run")(
            keys=[keys.run(run.id), keys.task(run.task_id), keys.running, keys.outbox, sem, fifo],
            args=[
                clock.now_ms(),
                _lease_ms(settings),
                ckey or "",
                keys.run(""),
                _grace_ms(settings),
            ],
        )
        try:
            scripts.check(result)
        except ScriptError as exc:
            if exc.code == ErrorCode.STALE:
                continue
            raise
        return Started(
            status=result[0],
            attempt=int(result[1]),
            handed=_pairs(result[2:]),
            concurrency_key=ckey or None,
        )
    raise ScriptError(ErrorCode.STALE, "concurrency_key keeps changing")


def renew_run(
    client: redis.Redis,
    keys: Keys,
    settings: Settings,
    run: Run,
    attempt: int,
    concurrency_key: str | None,
) -> bool:
    """Extend the attempt's heartbeat lease and that of its slot of ``concurrency_key``;
    False when the attempt no longer runs."""
    sem = slot_keys(keys, run.agent_id, concurrency_key, run.id)[0]
    renewed = scripts.script(client, "renew_run")(
        keys=[keys.run(run.id), keys.running, sem],
        args=[clock.now_ms(), _lease_ms(settings), run.id, attempt],
    )
    return bool(renewed)


def finish_run(
    client: redis.Redis,
    keys: Keys,
    settings: Settings,
    run_id: str,
    attempt: int,
    *,
    succeeded: bool,
    steps: Sequence[dict[str, Any]],
    error: str | None = None,
    rand: Callable[[], float] = random.random,
    lapsed_only: bool = False,
    known: "Known | None" = None,
) -> Finished:
    """Record an attempt's outcome (retry, final status, slot hand-over, ``once`` completion).

    Raises :class:`ScriptError`: ``NOT_FOUND`` (no run), ``STALE`` with detail
    ``'<status>:<attempt>'`` when this attempt no longer runs (it was recovered elsewhere), or
    ``'alive'`` when ``lapsed_only`` and its lease has not lapsed. ``known``: what the caller
    read already (saves the reads of a first try; a stale part is caught by the script).
    """
    steps_json = _json.encode(list(steps)).decode()
    for _ in range(_RETRIES):
        if known is not None:
            run, task, ckey = known.run, known.task, known.concurrency_key
            known = None
        else:
            run_fields = client.hgetall(keys.run(run_id))
            if not run_fields:
                raise ScriptError(ErrorCode.NOT_FOUND, "run")
            run = from_hash(Run, run_fields)
            ckey = _str(run_fields.get("concurrency_key"))
            task = load_task(client, keys, run.task_id)
        now = clock.now_ms()
        retry_at = now
        if task is not None and not succeeded:
            delay = retry_delay(
                task.backoff_strategy,
                attempt,
                task.retry_delay_seconds,
                task.retry_max_delay_seconds,
                rand,
            )
            retry_at = now + round(delay * 1000)
        task_status = task.status if task is not None else ""
        indexes = (
            keys.indexes(task.created_by, task.status, task.schedule_kind)
            + keys.indexes(task.created_by, "completed", task.schedule_kind)
            if task is not None
            else [keys.run(run_id)] * 16
        )
        result = scripts.script(client, "finish_run")(
            keys=[
                keys.run(run_id),
                keys.task(run.task_id),
                keys.running,
                keys.delayed,
                keys.outbox,
                *slot_keys(keys, run.agent_id, ckey, run_id),
                *indexes,
            ],
            args=[
                now,
                attempt,
                "succeeded" if succeeded else "failed",
                steps_json,
                error or "",
                retry_at,
                ckey or "",
                task_status,
                _lease_ms(settings),
                keys.run(""),
                _grace_ms(settings),
                "1" if lapsed_only else "0",
                keys.wake,
            ],
        )
        try:
            scripts.check(result)
        except ScriptError as exc:
            if exc.code == ErrorCode.STALE and (
                exc.detail == "concurrency_key" or exc.detail.startswith("task:")
            ):
                continue
            raise
        status = str(result[0])
        return Finished(
            status=status,
            task_completed=bool(result[1]),
            handed=_pairs(result[2:]),
            next_attempt_at=retry_at if status == "pending" else None,
        )
    raise ScriptError(ErrorCode.STALE, "task keeps changing")


@dataclass(frozen=True)
class Known:
    """A run, its task and the concurrency key it holds, as the job read them at start."""

    run: Run
    task: Task | None
    concurrency_key: str | None


def lapsed_runs(client: redis.Redis, keys: Keys, now_ms: int, limit: int = 100) -> list[str]:
    """Running run ids whose heartbeat lease lapsed by ``now_ms``, oldest lapse first."""
    found = client.zrangebyscore(keys.running, "-inf", now_ms, start=0, num=limit)
    return [str(x) for x in found]


@dataclass(frozen=True)
class Recovered:
    run_id: str
    attempt: int
    finished: Finished


def recover_lapsed_runs(
    client: redis.Redis,
    keys: Keys,
    settings: Settings,
    limit: int = 100,
    rand: Callable[[], float] = random.random,
) -> list[Recovered]:
    """Count every attempt whose worker went silent as failed (retry or final failure).

    Safe to run from any number of processes at once: the script re-checks the lapse and the
    attempt, so each lost attempt is counted once.
    """
    out: list[Recovered] = []
    for run_id in lapsed_runs(client, keys, clock.now_ms(), limit):
        attempt = _str(client.hget(keys.run(run_id), "attempt"))
        if attempt is None:
            client.zrem(keys.running, run_id)
            continue
        try:
            finished = finish_run(
                client,
                keys,
                settings,
                run_id,
                int(attempt),
                succeeded=False,
                steps=[],
                error=LOST_WORKER_ERROR,
                rand=rand,
                lapsed_only=True,
            )
        except ScriptError as exc:
            if exc.code == ErrorCode.STALE and exc.detail != "alive":
                # a leftover entry of a run that ended would be swept forever
                _drop_if_terminal(client, keys, run_id)
            continue
        out.append(Recovered(run_id, int(attempt), finished))
    return out


def _drop_if_terminal(client: redis.Redis, keys: Keys, run_id: str) -> None:
    if _str(client.hget(keys.run(run_id), "status")) in RUN_TERMINAL:
        client.zrem(keys.running, run_id)


def _pairs(flat: Sequence[Any]) -> list[tuple[str, int]]:
    return [(str(flat[i]), int(flat[i + 1])) for i in range(0, len(flat) - 1, 2)]


def _str(value: Any) -> str | None:
    if value is None:
        return None
    return value.decode() if isinstance(value, bytes) else str(value)


def _lease_ms(settings: Settings) -> int:
    return round(settings.semaphore_lease_seconds * 1000)


def _grace_ms(settings: Settings) -> int:
    return round(settings.enqueue_grace_seconds * 1000)
