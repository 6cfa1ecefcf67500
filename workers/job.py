"""The RQ job function: one attempt of one run (RQ job id = run id).

``execute_run`` starts the run only if it is still ``queued`` (a canceled run or a duplicate
job is left alone), takes its concurrency slot or parks it in the key's FIFO and returns (no
spinning, no sleeping), runs the pipeline while a heartbeat thread renews the attempt's lease,
and records the outcome: success, a retry parked in ``delayed`` at its backoff time, or final
failure. Runs handed a freed slot are enqueued right away (the scheduler's outbox sweep catches
them if this process dies first).
"""

import logging
import os
import random
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import redis

from app import clock
from app.core.errors import PipelineError
from app.core.pipeline import parse_pipeline
from app.core.task import Run, Task
from app.settings import Settings, get_settings
from app.store import connection, stats
from app.store.enqueue import enqueue_runs
from app.store.events import emit_event
from app.store.keys import Keys
from app.store.runs import (
    Finished,
    Known,
    finish_run,
    load_run,
    load_task,
    renew_run,
    start_run,
)
from app.store.scripts import ErrorCode, ScriptError
from workers.actions import Emit, Resolve, resolve_host
from workers.pipeline import PipelineResult, run_pipeline
from workers.runlog import log_transition

logger = logging.getLogger("chime.worker")


@dataclass
class JobDeps:
    """What a job uses from its process; tests build their own."""

    settings: Settings
    client: redis.Redis
    rq: redis.Redis
    keys: Keys
    resolve: Resolve = resolve_host
    rand: Callable[[], float] = random.random
    #: (deps, run) -> the emitter of ``event.emit`` for that run; None: the store's emit_event
    emitter: Callable[["JobDeps", Run], Emit | None] | None = None
    #: how often the heartbeat renews (seconds); default a third of the lease
    heartbeat_seconds: float | None = None


_deps: dict[int, JobDeps] = {}


def _process_deps(settings: Settings) -> JobDeps:
    """One set of clients per settings object in this process (a forked horse reuses them:
    redis-py opens new connections after a fork)."""
    found = _deps.get(id(settings))
    if found is None or found.settings is not settings:
        found = _deps[id(settings)] = JobDeps(
            settings=settings,
            client=connection.client(settings.redis_url),
            rq=connection.rq_client(settings.redis_url),
            keys=Keys(settings.key_prefix),
        )
    return found


_configured: Settings | None = None


def configure(settings: Settings) -> None:
    """Use these settings for the jobs of this process (``chime worker`` passes its own)."""
    global _configured
    _configured = settings


def default_deps() -> JobDeps:
    settings = _configured or get_settings()
    return _process_deps(settings)


def execute_run(run_id: str) -> None:
    """RQ entry point (``workers.job.execute_run``): one attempt of run ``run_id``."""
    run_job(run_id, default_deps())


def run_job(run_id: str, deps: JobDeps) -> str | None:
    """One attempt; returns the run's status afterwards (None when the job did nothing)."""
    run = load_run(deps.client, deps.keys, run_id)
    if run is None:
        logger.warning("run.missing", extra={"run_id": run_id})
        return None
    if run.status != "queued":
        logger.info("run.skipped", extra={"run_id": run_id, "status": run.status})
        return None
    task = load_task(deps.client, deps.keys, run.task_id)
    try:
        started = start_run(deps.client, deps.keys, deps.settings, run, task)
    except ScriptError as exc:
        if exc.code in (ErrorCode.CONFLICT, ErrorCode.NOT_FOUND):
            logger.info("run.skipped", extra={"run_id": run_id, "status": exc.detail})
            return None
        raise
    _enqueue(deps, started.handed)
    if started.status == "parked":
        log_transition(run.task_id, run_id, run.attempt, "pending", reason="concurrency")
        _count(deps, run, ["pending"], [stats.CONCURRENCY_WAITS])
        return "pending"
    attempt = started.attempt
    log_transition(run.task_id, run_id, attempt, "running")

    heartbeat = Heartbeat(deps, run, attempt, started.concurrency_key)
    heartbeat.start()
    t0 = clock.now_ms()
    try:
        result = _execute(deps, run, task, attempt, heartbeat.lost)
    finally:
        heartbeat.stop()
    known = Known(run=run, task=task, concurrency_key=started.concurrency_key)
    return _record(deps, known, attempt, result, (clock.now_ms() - t0) / 1000)


def _execute(
    deps: JobDeps, run: Run, task: Task | None, attempt: int, lost: threading.Event
) -> PipelineResult:
    if task is None:
        return PipelineResult(succeeded=False, steps=[], error="task not found")
    try:
        pipeline = parse_pipeline(task.payload)
    except PipelineError as exc:
        return PipelineResult(succeeded=False, steps=[], error=f"invalid pipeline: {exc}")
    emitter = deps.emitter or store_emitter
    try:
        return run_pipeline(
            pipeline,
            task,
            run,
            deps.settings,
            attempt=attempt,
            emit=emitter(deps, run),
            resolve=deps.resolve,
            stop=lost,
        )
    except Exception as exc:  # a bug or RQ's job timeout: still an attempt that failed
        logger.exception("run.crashed", extra={"run_id": run.id})
        return PipelineResult(succeeded=False, steps=[], error=f"{type(exc).__name__}: {exc}")


def _record(
    deps: JobDeps, known: Known, attempt: int, result: PipelineResult, seconds: float
) -> str | None:
    run = known.run
    try:
        done: Finished = finish_run(
            deps.client,
            deps.keys,
            deps.settings,
            run.id,
            attempt,
            succeeded=result.succeeded,
            steps=result.steps,
            error=result.error,
            rand=deps.rand,
            known=known,
        )
    except ScriptError as exc:
        if exc.code == ErrorCode.STALE:
            # the lease lapsed and the attempt was counted as lost; its outcome is dropped
            log_transition(
                run.task_id, run.id, attempt, "lost", level=logging.WARNING, detail=exc.detail
            )
            _count(deps, run, ["running"])
            return None
        raise
    _enqueue(deps, done.handed)
    extra: dict[str, Any] = {"error": result.error} if result.error else {}
    if done.status == "pending":
        extra["next_attempt_at"] = clock.iso(done.next_attempt_at)
    if done.task_completed:
        extra["task_status"] = "completed"
    log_transition(run.task_id, run.id, attempt, done.status, **extra)
    _count(
        deps,
        run,
        ["running", done.status],
        [stats.RETRIES] if done.status == "pending" else [],
        None if done.status == "pending" else seconds,
    )
    return done.status


def _enqueue(deps: JobDeps, runs: Sequence[tuple[str, int]]) -> None:
    if runs:
        enqueue_runs(deps.rq, deps.keys, runs)


def _count(
    deps: JobDeps,
    run: Run,
    statuses: Sequence[str],
    counters: Sequence[str] = (),
    seconds: float | None = None,
) -> None:
    """The stats of one attempt in one round trip (counted once it ended, to save one)."""
    pipe = deps.client.pipeline(transaction=False)
    for status in statuses:
        stats.count_run(pipe, deps.keys, status, run.trigger)
    for counter in counters:
        stats.incr(pipe, deps.keys, counter)
    if seconds is not None:
        stats.observe_duration(pipe, deps.keys, seconds)
    pipe.execute()


def store_emitter(deps: JobDeps, run: Run) -> Emit:
    """``event.emit`` as ``POST /events`` by the run's agent (the store enqueues the runs)."""

    def emit(name: str, data: dict[str, Any]) -> dict[str, Any]:
        event_id, runs = emit_event(
            deps.client, deps.rq, deps.keys, deps.settings, run.agent_id, name, data
        )
        return {"event_id": event_id, "runs": [r.id for r in runs]}

    return emit


class Heartbeat:
    """The lease renewal of one attempt; ``lost`` is set when the attempt no longer runs.

    Every attempt of the process is renewed by one shared thread (``_Renewer``): a thread per
    run would cost more than a short run itself.
    """

    def __init__(self, deps: JobDeps, run: Run, attempt: int, concurrency_key: str | None) -> None:
        self.deps, self.run, self.attempt = deps, run, attempt
        self.concurrency_key = concurrency_key
        self.lost = threading.Event()
        lease = deps.settings.semaphore_lease_seconds
        self.interval = deps.heartbeat_seconds or max(0.05, lease / 3)
        self.next_at = time.monotonic() + self.interval

    def start(self) -> None:
        _renewer().track(self)

    def stop(self) -> None:
        _renewer().untrack(self)

    def renew(self) -> None:
        try:
            alive = renew_run(
                self.deps.client,
                self.deps.keys,
                self.deps.settings,
                self.run,
                self.attempt,
                self.concurrency_key,
            )
        except redis.RedisError:
            logger.warning("run.heartbeat_failed", extra={"run_id": self.run.id})
            return
        if not alive:
            self.lost.set()


class _Renewer:
    """One thread renewing every tracked attempt when its interval comes round."""

    def __init__(self) -> None:
        self.pid = os.getpid()
        self._lock = threading.Lock()
        self._beats: set[Heartbeat] = set()
        self._changed = threading.Event()
        self._thread = threading.Thread(target=self._loop, name="chime-heartbeat", daemon=True)
        self._thread.start()

    def track(self, beat: Heartbeat) -> None:
        with self._lock:
            self._beats.add(beat)
        self._changed.set()

    def untrack(self, beat: Heartbeat) -> None:
        with self._lock:
            self._beats.discard(beat)

    def _loop(self) -> None:
        while True:
            with self._lock:
                beats = list(self._beats)
            now = time.monotonic()
            for beat in beats:
                if beat.next_at <= now and not beat.lost.is_set():
                    beat.renew()
                    beat.next_at = time.monotonic() + beat.interval
            with self._lock:
                pending = [b.next_at for b in self._beats if not b.lost.is_set()]
            timeout = max(0.0, min(pending) - time.monotonic()) if pending else None
            self._changed.wait(timeout)
            self._changed.clear()


_shared: _Renewer | None = None
_shared_lock = threading.Lock()


def _renewer() -> _Renewer:
    """The process's renewer (a forked work horse starts its own: threads do not fork)."""
    global _shared
    with _shared_lock:
        if _shared is None or _shared.pid != os.getpid():
            _shared = _Renewer()
        return _shared
