"""Attempts of runs on the event loop: start many, execute each, record many.

This is Chime's side of a job, shared by the concurrent worker (which also keeps RQ's records,
``workers/rqstate.py``) and by ``workers.job.execute_run`` (one job under a plain RQ worker).

- :func:`start_attempts` starts a batch of runs in one round trip per phase: read the runs,
  read their tasks, run ``start_run.lua`` for each. A run that is no longer ``queued`` (a
  canceled run, a duplicate job) is skipped; one without a free concurrency slot is parked in
  its key's FIFO (``pending``) and its job ends at once.
- :func:`execute_attempt` runs the pipeline.
- :func:`record_attempts` records outcomes in one round trip (``finish_run.lua`` for each, then
  the stats): success, a retry parked in ``delayed`` at its backoff time, or final failure. An
  attempt whose lease lapsed meanwhile was counted as lost; its outcome is dropped.

Runs handed a freed slot on the way are enqueued at once (the scheduler's outbox sweep catches
them if this process dies first).
"""

import asyncio
import logging
import random
import time
from collections import Counter
from collections.abc import AsyncIterator, Callable, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from typing import Any

import httpx
import msgspec
import redis
import redis.asyncio

from app import clock
from app.core.errors import Conflict, PipelineError, ValidationError
from app.core.pipeline import load_pipeline, secret_names
from app.core.status import RunStatus, TaskStatus
from app.core.task import Run, Task
from app.service.backend import Backend
from app.service.dispatch import enqueue_handed
from app.service.events import emit_event
from app.settings import Settings
from app.store import connection, scripts, stats
from app.store.keys import Keys
from app.store.runs import (
    Finished,
    Held,
    Known,
    Outcome,
    finish_runs,
    load_runs,
    load_tasks,
    start_runs,
)
from app.store.scripts import ErrorCode, ScriptError
from app.store.secrets import load_credentials
from workers.actions import Emit, StepFailed
from workers.egress import EgressPolicy, Resolve, egress_policy, make_client, resolve_host
from workers.pipeline import PipelineResult, run_pipeline
from workers.runlog import log_transition

logger = logging.getLogger("chime.worker")


@dataclass
class JobDeps:
    """What jobs use from their process (synchronous clients, for work done on threads: the
    enqueue of handed runs, ``event.emit``); tests build their own."""

    settings: Settings
    client: redis.Redis
    rq: redis.Redis
    keys: Keys
    rand: Callable[[], float] = random.random
    #: (runtime, run) -> the emitter of ``event.emit`` for that run; None: the store's
    emitter: "Callable[[Runtime, Run], Emit] | None" = None
    #: how often attempts' leases are renewed (seconds); default a third of the lease
    heartbeat_seconds: float | None = None
    #: how ``http.request`` resolves host names (tests pin names to local addresses)
    resolve: Resolve = resolve_host

    @property
    def backend(self) -> Backend:
        """What the use cases (``app/service``) take."""
        return Backend(self.client, self.rq, self.keys, self.settings)

    @property
    def heartbeat_interval(self) -> float:
        return self.heartbeat_seconds or max(0.05, self.settings.semaphore_lease_seconds / 3)


@dataclass
class Runtime:
    """The asyncio side of a process: its clients on the running loop."""

    deps: JobDeps
    client: redis.asyncio.Redis
    http: httpx.AsyncClient
    policy: EgressPolicy

    @property
    def settings(self) -> Settings:
        return self.deps.settings

    @property
    def keys(self) -> Keys:
        return self.deps.keys


@asynccontextmanager
async def open_runtime(deps: JobDeps, max_connections: int = 100) -> AsyncIterator[Runtime]:
    """Clients for the running loop, closed on the way out; each run in flight may hold a Redis
    connection at once (its credentials, its records), so the pool is as large as the HTTP one."""
    policy = egress_policy(deps.settings)
    client = connection.async_client(deps.settings.redis_url, max_connections=max_connections)
    http = make_client(policy, max_connections, deps.resolve)
    try:
        yield Runtime(deps, client, http, policy)
    finally:
        await http.aclose()
        await client.aclose()


@dataclass
class Attempt:
    """A started attempt: what running and recording it needs."""

    run: Run
    task: Task | None
    attempt: int
    concurrency_key: str | None
    #: set when the attempt's lease was lost: the steps left are skipped
    lost: asyncio.Event = field(default_factory=asyncio.Event)
    #: set when the run's cancel was requested: the step in flight is aborted
    canceled: asyncio.Event = field(default_factory=asyncio.Event)
    started: float = field(default_factory=time.monotonic)

    @property
    def held(self) -> Held:
        return Held(self.run, self.attempt, self.concurrency_key)


@dataclass(frozen=True)
class NotStarted:
    """A job that ends at once: ``status`` is ``pending`` (parked for a slot) or None (nothing
    to do: the run is gone, canceled, or already started); ``error`` when the job failed."""

    status: str | None
    error: BaseException | None = None


Start = Attempt | NotStarted


async def start_attempts(rt: Runtime, run_ids: Sequence[str]) -> list[Start]:
    """Start these runs (job id = run id); one answer per id, in order."""
    out: list[Start] = [NotStarted(None)] * len(run_ids)
    runs = await load_runs(rt.client, rt.keys, run_ids)
    todo: list[int] = []
    for i, run in enumerate(runs):
        if run is None:
            logger.warning("run.missing", extra={"run_id": run_ids[i]})
        elif run.status != RunStatus.QUEUED:
            logger.info("run.skipped", extra={"run_id": run.id, "status": run.status})
        else:
            todo.append(i)
    if not todo:
        return out
    found = [r for r in runs if r is not None]
    tasks = await load_tasks(rt.client, rt.keys, [r.task_id for r in found])
    pairs = [(runs[i], tasks.get(runs[i].task_id)) for i in todo]  # type: ignore[union-attr]
    answers = await start_runs(rt.client, rt.keys, rt.settings, pairs)  # type: ignore[arg-type]
    handed: list[tuple[str, int]] = []
    parked: list[Run] = []
    for i, (run, task), answer in zip(todo, pairs, answers, strict=True):
        assert run is not None
        if isinstance(answer, ScriptError):
            if answer.code in (ErrorCode.CONFLICT, ErrorCode.NOT_FOUND):
                logger.info("run.skipped", extra={"run_id": run.id, "status": answer.detail})
            else:
                out[i] = NotStarted(None, answer)
            continue
        handed += answer.handed
        if answer.status == "parked":
            log_transition(
                run.task_id, run.id, run.attempt, RunStatus.PENDING, reason="concurrency"
            )
            parked.append(run)
            out[i] = NotStarted(RunStatus.PENDING)
            continue
        log_transition(run.task_id, run.id, answer.attempt, RunStatus.RUNNING)
        out[i] = Attempt(run, task, answer.attempt, answer.concurrency_key)
    if parked:
        counted = _Stats()
        for run in parked:
            counted.counts[stats.run_field(RunStatus.PENDING, run.trigger)] += 1
            counted.counts[stats.CONCURRENCY_WAITS] += 1
        pipe = rt.client.pipeline(transaction=False)
        counted.write(pipe, rt.keys)
        await pipe.execute()
    await enqueue(rt, handed)
    return out


async def execute_attempt(rt: Runtime, attempt: Attempt) -> PipelineResult:
    """Run the attempt's pipeline; a crash is an attempt that failed, not a worker that stops."""
    run, task = attempt.run, attempt.task
    if task is None:
        return PipelineResult(succeeded=False, steps=[], error="task not found")
    try:
        pipeline = load_pipeline(task.payload)
    except (PipelineError, ValueError) as exc:
        return PipelineResult(succeeded=False, steps=[], error=f"invalid pipeline: {exc}")
    emitter = rt.deps.emitter or store_emitter
    try:
        # one round trip, only for a pipeline that reads secrets or may sign a request
        credentials = await load_credentials(
            rt.client,
            rt.keys,
            rt.settings,
            run.agent_id,
            [name for _, name in secret_names(task.payload)],
            signing=any(s.action == "http.request" for s in pipeline.steps),
        )
        return await run_pipeline(
            pipeline,
            task,
            run,
            rt.settings,
            attempt=attempt.attempt,
            emit=emitter(rt, run),
            http=rt.http,
            policy=rt.policy,
            stop=attempt.lost,
            credentials=credentials,
            cancel=attempt.canceled,
        )
    except Exception as exc:
        logger.exception("run.crashed", extra={"run_id": run.id})
        return PipelineResult(succeeded=False, steps=[], error=f"{type(exc).__name__}: {exc}")


async def run_on_failure(rt: Runtime, attempt: Attempt, result: PipelineResult) -> None:
    """Run the pipeline's ``on_failure`` steps once, after the run's last attempt failed, with
    ``run.error`` and ``run.failed_step`` to read, and keep their records in the run's
    ``on_failure_steps``. They change neither the run's status nor its retries; a failure in
    them is only recorded."""
    run, task = attempt.run, attempt.task
    if task is None or not task.payload.get("on_failure"):
        return
    try:
        pipeline = load_pipeline(task.payload)
        failed = next((s.get("name") for s in result.steps if s.get("status") == "failed"), None)
        credentials = await load_credentials(
            rt.client,
            rt.keys,
            rt.settings,
            run.agent_id,
            [name for _, name in secret_names(task.payload)],
            signing=any(s.action == "http.request" for s in pipeline.on_failure),
        )
        done = await run_pipeline(
            msgspec.structs.replace(pipeline, steps=pipeline.on_failure, on_failure=[]),
            task,
            run,
            rt.settings,
            attempt=attempt.attempt,
            emit=(rt.deps.emitter or store_emitter)(rt, run),
            http=rt.http,
            policy=rt.policy,
            credentials=credentials,
            run_extra={"error": result.error, "failed_step": failed},
        )
        records = msgspec.json.encode(done.steps).decode()
        await scripts.script(rt.client, "record_on_failure")(
            keys=[rt.keys.run(run.id)], args=[records]
        )
        extra = {"task_id": run.task_id, "run_id": run.id, "succeeded": done.succeeded}
        logger.info(
            "run.on_failure", extra={**extra, **({"error": done.error} if done.error else {})}
        )
    except (redis.RedisError, OSError, PipelineError, ValueError) as exc:
        logger.warning("run.on_failure_failed", extra={"run_id": run.id, "error": str(exc)})


async def record_attempts(
    rt: Runtime, done: Sequence[tuple[Attempt, PipelineResult]]
) -> list[str | BaseException | None]:
    """Record outcomes; per attempt its run's new status, None when the attempt had been
    counted as lost, or the error that kept it from being recorded."""
    items = [
        (
            Outcome(a.run.id, a.attempt, r.succeeded, r.steps, r.error),
            Known(a.run, a.task, a.concurrency_key),
        )
        for a, r in done
    ]
    answers = await finish_runs(rt.client, rt.keys, rt.settings, items, rt.deps.rand)
    out: list[str | BaseException | None] = []
    handed: list[tuple[str, int]] = []
    counted = _Stats()
    now = time.monotonic()
    for (attempt, result), answer in zip(done, answers, strict=True):
        run = attempt.run
        if isinstance(answer, ScriptError):
            if answer.code == ErrorCode.STALE:
                # the lease lapsed and the attempt was counted as lost; its outcome is dropped
                log_transition(
                    run.task_id,
                    run.id,
                    attempt.attempt,
                    "lost",
                    level=logging.WARNING,
                    detail=answer.detail,
                )
                counted.counts[stats.run_field(RunStatus.RUNNING, run.trigger)] += 1
                out.append(None)
            else:
                out.append(answer)
            continue
        handed += answer.handed
        _log_outcome(attempt, result, answer)
        counted.attempt(run, answer.status, now - attempt.started)
        out.append(answer.status)
    pipe = rt.client.pipeline(transaction=False)
    counted.write(pipe, rt.keys)
    await pipe.execute()
    await enqueue(rt, handed)
    return out


def _log_outcome(attempt: Attempt, result: PipelineResult, done: Finished) -> None:
    extra: dict[str, Any] = {"error": result.error} if result.error else {}
    if done.status == RunStatus.PENDING:
        extra["next_attempt_at"] = clock.iso(done.next_attempt_at)
    if done.task_completed:
        extra["task_status"] = TaskStatus.COMPLETED
    run = attempt.run
    log_transition(run.task_id, run.id, attempt.attempt, done.status, **extra)


class _Stats:
    """The stats of a batch, summed before they are written (one HINCRBY per field)."""

    def __init__(self) -> None:
        self.counts: Counter[str] = Counter()
        self.seconds = 0.0

    def attempt(self, run: Run, status: str, seconds: float) -> None:
        """An attempt that ended (counted then, to save a round trip at its start)."""
        self.counts[stats.run_field(RunStatus.RUNNING, run.trigger)] += 1
        self.counts[stats.run_field(status, run.trigger)] += 1
        if status == RunStatus.PENDING:
            self.counts[stats.RETRIES] += 1
            return
        seconds = max(0.0, seconds)
        bound = next((b for b in stats.DURATION_BUCKETS if seconds <= b), float("inf"))
        self.counts[stats.bucket_field(stats.DURATION, bound)] += 1
        self.counts[f"{stats.DURATION}:count"] += 1
        self.seconds += seconds

    def write(self, pipe: Any, keys: Keys) -> None:
        for name, n in self.counts.items():
            pipe.hincrby(keys.stats, name, n)
        if self.seconds:
            pipe.hincrbyfloat(keys.stats, f"{stats.DURATION}:sum", self.seconds)


async def enqueue(rt: Runtime, runs: Sequence[tuple[str, int]]) -> None:
    """Put runs handed a slot on RQ (RQ's enqueue needs the synchronous client: a thread)."""
    if runs:
        await asyncio.to_thread(enqueue_handed, rt.deps.backend, list(runs))


def store_emitter(rt: Runtime, run: Run) -> Emit:
    """``event.emit`` as ``POST /events`` by the run's agent (the same use case,
    ``app/service/events.py``).

    The use case is synchronous (RQ's enqueue needs it), so it runs on a thread; its Redis
    calls are bounded by the client's timeouts, so the thread ends soon after a timed-out step.
    """
    deps = rt.deps

    # one hop deeper than the event that started this run (a run_now or a schedule: 0)
    depth = int((run.event or {}).get("depth") or 0) + 1

    async def emit(name: str, data: dict[str, Any]) -> dict[str, Any]:
        try:
            event_id, runs = await asyncio.to_thread(
                emit_event, deps.backend, run.agent_id, name, data, depth
            )
        except (ValidationError, Conflict) as exc:
            raise StepFailed(str(exc)) from None
        return {"event_id": event_id, "runs": [r.id for r in runs]}

    return emit


async def run_one(rt: Runtime, run_id: str) -> str | None:
    """One job on its own (a plain RQ worker's ``execute_run``): start, run with a heartbeat,
    record. Returns the run's status afterwards (None when the job did nothing)."""
    (started,) = await start_attempts(rt, [run_id])
    if isinstance(started, NotStarted):
        if started.error is not None:
            raise started.error
        return started.status
    beat = asyncio.create_task(_heartbeat_one(rt, started))
    try:
        result = await execute_attempt(rt, started)
    finally:
        beat.cancel()
        await asyncio.gather(beat, return_exceptions=True)
    (status,) = await record_attempts(rt, [(started, result)])
    if isinstance(status, BaseException):
        raise status
    return status


async def _heartbeat_one(rt: Runtime, attempt: Attempt) -> None:
    from app.store.runs import eval_many, renew_call

    interval = rt.deps.heartbeat_interval
    while not attempt.lost.is_set():
        await asyncio.sleep(interval)
        call_keys, args = renew_call(rt.keys, rt.settings, [attempt.held])
        try:
            (reply,) = await eval_many(rt.client, [("renew_runs", call_keys, args)])
        except redis.RedisError:
            logger.warning("run.heartbeat_failed", extra={"run_id": attempt.run.id})
            continue
        if isinstance(reply, list) and reply and not int(reply[0]):
            attempt.lost.set()
