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
import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import msgspec
import redis
import redis.asyncio
from redis.exceptions import NoScriptError

from app import clock
from app.core.backoff import retry_delay
from app.core.status import RUN_TERMINAL, RunStatus, TaskStatus
from app.core.task import Run, Task
from app.settings import Settings
from app.store import scripts
from app.store.codec import from_hash
from app.store.codec import text_or_none as _str
from app.store.event_records import attach_events, attach_events_async
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
    return attach_events(client, keys, [from_hash(Run, fields)])[0] if fields else None


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
        call_keys, args = _start_call(keys, settings, run, ckey)
        result = scripts.script(client, "start_run")(keys=call_keys, args=args)
        try:
            return _started(result, ckey)
        except ScriptError as exc:
            if exc.code != ErrorCode.STALE:
                raise
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
    call_keys, args = renew_call(keys, settings, [Held(run, attempt, concurrency_key)])
    (renewed,) = scripts.script(client, "renew_runs")(keys=call_keys, args=args)
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
    outcome = Outcome(run_id, attempt, succeeded, list(steps), error)
    for _ in range(_RETRIES):
        if known is None:
            known = _read_known(client, keys, run_id)
        call = _finish_call(keys, settings, outcome, known, rand, lapsed_only)
        result = scripts.script(client, "finish_run")(keys=call.keys, args=call.args)
        known = None
        try:
            return _finished(result, call.retry_at)
        except ScriptError as exc:
            if not _reread(exc):
                raise
    raise ScriptError(ErrorCode.STALE, "task keeps changing")


@dataclass(frozen=True)
class Known:
    """A run, its task and the concurrency key it holds, as the job read them at start."""

    run: Run
    task: Task | None
    concurrency_key: str | None


@dataclass(frozen=True)
class Held:
    """An attempt a worker holds: what renewing its leases needs."""

    run: Run
    attempt: int
    concurrency_key: str | None


@dataclass(frozen=True)
class Outcome:
    """What one attempt did, to record."""

    run_id: str
    attempt: int
    succeeded: bool
    steps: list[dict[str, Any]]
    error: str | None = None


@dataclass(frozen=True)
class _Call:
    keys: list[str]
    args: list[Any]
    retry_at: int


def _start_call(
    keys: Keys, settings: Settings, run: Run, ckey: str | None
) -> tuple[list[str], list[Any]]:
    sem, fifo = slot_keys(keys, run.agent_id, ckey, run.id)
    return (
        [keys.run(run.id), keys.task(run.task_id), keys.running, keys.outbox, sem, fifo],
        [
            clock.now_ms(),
            _lease_ms(settings),
            ckey or "",
            keys.run(""),
            _grace_ms(settings),
            uuid.uuid4().hex,
        ],
    )


def _started(result: Any, ckey: str | None) -> Started:
    scripts.check(result)
    return Started(
        status=_str(result[0]) or "",
        attempt=int(result[1]),
        handed=_pairs(result[2:]),
        concurrency_key=ckey or None,
    )


def renew_call(keys: Keys, settings: Settings, held: Sequence[Held]) -> tuple[list[str], list[Any]]:
    """KEYS and ARGV of ``renew_runs.lua`` for these attempts (one answer per attempt)."""
    call_keys: list[str] = [keys.running]
    args: list[Any] = [clock.now_ms(), _lease_ms(settings)]
    for h in held:
        sem = slot_keys(keys, h.run.agent_id, h.concurrency_key, h.run.id)[0]
        call_keys += [keys.run(h.run.id), sem]
        args += [h.run.id, h.attempt]
    return call_keys, args


def _finish_call(
    keys: Keys,
    settings: Settings,
    outcome: Outcome,
    known: "Known",
    rand: Callable[[], float],
    lapsed_only: bool,
) -> _Call:
    run, task, ckey = known.run, known.task, known.concurrency_key
    now = clock.now_ms()
    retry_at = now
    if task is not None and not outcome.succeeded:
        delay = retry_delay(
            task.backoff_strategy,
            outcome.attempt,
            task.retry_delay_seconds,
            task.retry_max_delay_seconds,
            rand,
        )
        retry_at = now + clock.ms(max(delay, settings.retry_min_delay_seconds))
    task_status = task.status if task is not None else ""
    run_key = keys.run(outcome.run_id)
    indexes = (
        keys.indexes(task.created_by, task.status, task.schedule_kind)
        + keys.indexes(task.created_by, TaskStatus.COMPLETED, task.schedule_kind)
        if task is not None
        else [run_key] * 16
    )
    return _Call(
        keys=[
            run_key,
            keys.task(run.task_id),
            keys.running,
            keys.delayed,
            keys.outbox,
            *slot_keys(keys, run.agent_id, ckey, outcome.run_id),
            *indexes,
        ],
        args=[
            now,
            outcome.attempt,
            RunStatus.SUCCEEDED if outcome.succeeded else RunStatus.FAILED,
            _json.encode(outcome.steps).decode(),
            outcome.error or "",
            retry_at,
            ckey or "",
            task_status,
            _lease_ms(settings),
            keys.run(""),
            _grace_ms(settings),
            "1" if lapsed_only else "0",
            keys.wake,
        ],
        retry_at=retry_at,
    )


def _finished(result: Any, retry_at: int) -> Finished:
    scripts.check(result)
    status = _str(result[0]) or ""
    return Finished(
        status=status,
        task_completed=bool(result[1]),
        handed=_pairs(result[2:]),
        next_attempt_at=retry_at if status == RunStatus.PENDING else None,
    )


def _reread(exc: ScriptError) -> bool:
    """A refusal that only says the caller's snapshot is stale: read again and retry."""
    return exc.code == ErrorCode.STALE and (
        exc.detail == "concurrency_key" or exc.detail.startswith("task:")
    )


def _read_known(client: redis.Redis, keys: Keys, run_id: str) -> "Known":
    run_fields = client.hgetall(keys.run(run_id))
    if not run_fields:
        raise ScriptError(ErrorCode.NOT_FOUND, "run")
    run = from_hash(Run, run_fields)
    return Known(run, load_task(client, keys, run.task_id), _str(run_fields.get("concurrency_key")))


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
    return [(_str(flat[i]) or "", int(flat[i + 1])) for i in range(0, len(flat) - 1, 2)]


def _lease_ms(settings: Settings) -> int:
    return clock.ms(settings.semaphore_lease_seconds)


def _grace_ms(settings: Settings) -> int:
    return clock.ms(settings.enqueue_grace_seconds)


# -- batches on an asyncio client (the concurrent worker) -------------------------------------
#
# One pipeline carries the script calls of many runs: one round trip for a whole batch. A call
# the script refuses comes back as a ScriptError in its place; a snapshot that went stale is
# read again and retried on its own, as the functions above do.

AsyncRedis = redis.asyncio.Redis
ScriptCall = tuple[str, Sequence[Any], Sequence[Any]]


async def eval_many(client: AsyncRedis, calls: Sequence[ScriptCall]) -> list[Any]:
    """Run ``(script name, KEYS, ARGV)`` calls in one pipeline; replies in order (a Redis error
    reply stays in its place as an exception). A script the server forgot is loaded and its
    calls run again: they did nothing the first time."""
    replies: list[Any] = [None] * len(calls)
    todo = list(range(len(calls)))
    for _ in range(2):
        pipe = client.pipeline(transaction=False)
        for i in todo:
            name, call_keys, args = calls[i]
            pipe.evalsha(script_sha(client, name), len(call_keys), *call_keys, *args)
        got = await pipe.execute(raise_on_error=False)
        for i, reply in zip(todo, got, strict=True):
            replies[i] = reply
        todo = [i for i in todo if isinstance(replies[i], NoScriptError)]
        if not todo:
            break
        await load_scripts(client, {calls[i][0] for i in todo})
    return replies


def script_sha(client: Any, name: str) -> str:
    sha: str = scripts.script(client, name).sha
    return sha


async def load_scripts(client: AsyncRedis, names: Any) -> None:
    """SCRIPT LOAD each named script (after a Redis restart or SCRIPT FLUSH)."""
    for name in names:
        await client.script_load(scripts.source(name))


async def load_runs(client: AsyncRedis, keys: Keys, run_ids: Sequence[str]) -> list[Run | None]:
    pipe = client.pipeline(transaction=False)
    for run_id in run_ids:
        pipe.hgetall(keys.run(run_id))
    runs = [from_hash(Run, f) if f else None for f in await pipe.execute()]
    return await attach_events_async(client, keys, runs)


async def load_tasks(
    client: AsyncRedis, keys: Keys, task_ids: Sequence[str]
) -> dict[str, Task | None]:
    unique = list(dict.fromkeys(task_ids))
    pipe = client.pipeline(transaction=False)
    for task_id in unique:
        pipe.hgetall(keys.task(task_id))
    found = await pipe.execute()
    return {t: from_hash(Task, f) if f else None for t, f in zip(unique, found, strict=True)}


async def start_runs(
    client: AsyncRedis,
    keys: Keys,
    settings: Settings,
    runs: Sequence[tuple[Run, Task | None]],
) -> list[Started | ScriptError]:
    """:func:`start_run` for many runs at once; each answer is a Started or the ScriptError
    its start raised. A Redis error raises (the caller retries the batch: a start that did
    happen is refused as ``CONFLICT`` the second time)."""
    ckeys = [task.concurrency_key if task is not None else None for _, task in runs]
    out: list[Started | ScriptError] = [ScriptError(ErrorCode.STALE, "not tried")] * len(runs)
    todo = list(range(len(runs)))
    for _ in range(_RETRIES):
        calls = [("start_run", *_start_call(keys, settings, runs[i][0], ckeys[i])) for i in todo]
        stale: list[int] = []
        for i, reply in zip(todo, await eval_many(client, calls), strict=True):
            if isinstance(reply, Exception):
                raise reply
            try:
                out[i] = _started(reply, ckeys[i])
            except ScriptError as exc:
                out[i] = exc
                if exc.code == ErrorCode.STALE:
                    stale.append(i)
        if not stale:
            return out
        pipe = client.pipeline(transaction=False)
        for i in stale:
            pipe.hget(keys.task(runs[i][0].task_id), "concurrency_key")
        for i, ckey in zip(stale, await pipe.execute(), strict=True):
            ckeys[i] = _str(ckey)
        todo = stale
    for i in todo:
        out[i] = ScriptError(ErrorCode.STALE, "concurrency_key keeps changing")
    return out


async def finish_runs(
    client: AsyncRedis,
    keys: Keys,
    settings: Settings,
    items: Sequence[tuple[Outcome, Known]],
    rand: Callable[[], float] = random.random,
) -> list[Finished | ScriptError]:
    """:func:`finish_run` for many attempts at once (answers as for :func:`start_runs`)."""
    out: list[Finished | ScriptError] = [ScriptError(ErrorCode.STALE, "not tried")] * len(items)
    known: list[Known | None] = [k for _, k in items]
    todo = list(range(len(items)))
    for _ in range(_RETRIES):
        made: dict[int, _Call] = {}
        for i in todo:
            k = known[i]
            if k is None:
                try:
                    k = known[i] = await _read_known_async(client, keys, items[i][0].run_id)
                except ScriptError as exc:
                    out[i] = exc
                    continue
            made[i] = _finish_call(keys, settings, items[i][0], k, rand, False)
        todo = list(made)
        calls = [("finish_run", made[i].keys, made[i].args) for i in todo]
        stale: list[int] = []
        for i, reply in zip(todo, await eval_many(client, calls), strict=True):
            if isinstance(reply, Exception):
                raise reply
            try:
                out[i] = _finished(reply, made[i].retry_at)
            except ScriptError as exc:
                out[i] = exc
                if _reread(exc):
                    stale.append(i)
                    known[i] = None
        if not stale:
            return out
        todo = stale
    for i in todo:
        out[i] = ScriptError(ErrorCode.STALE, "task keeps changing")
    return out


async def _read_known_async(client: AsyncRedis, keys: Keys, run_id: str) -> Known:
    run_fields = await client.hgetall(keys.run(run_id))
    if not run_fields:
        raise ScriptError(ErrorCode.NOT_FOUND, "run")
    run = from_hash(Run, run_fields)
    task_fields = await client.hgetall(keys.task(run.task_id))
    task = from_hash(Task, task_fields) if task_fields else None
    return Known(run, task, _str(run_fields.get("concurrency_key")))
