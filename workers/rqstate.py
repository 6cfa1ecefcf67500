"""RQ's own records of the jobs a concurrent worker runs, written in batches.

RQ's ``SimpleWorker`` keeps one job per worker and writes its records one job at a time; the
concurrent worker runs hundreds, so it writes the same records for many jobs in one pipeline:
what ``prepare_execution`` / ``prepare_job_execution`` write when a job starts (an execution
hash, its entry in the job's execution registry, the started registry entry
``<job_id>:<execution_id>``, the worker's execution index, the job's status ``started``),
what ``maintain_heartbeats`` refreshes, and what ``handle_job_success`` /
``handle_job_failure`` write at the end (status, a result in the job's result stream, the
finished or failed registry, the job's TTL, the worker's counters). The layout is RQ 3.0's
(``pyproject.toml`` pins ``rq>=3.0,<3.1``); ``tests/store/test_worker_scripts.py`` reads it back
through RQ's own classes.

Times come from ``app.clock`` like every time Chime writes.
"""

import uuid
import zlib
from base64 import b64encode
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

import rq
from redis.asyncio.client import Pipeline
from rq.defaults import DEFAULT_FAILURE_TTL, DEFAULT_RESULT_TTL, DEFAULT_WORKER_TTL
from rq.executions import WORKER_EXECUTIONS_KEY_TEMPLATE, ExecutionRegistry
from rq.job import Job, JobStatus
from rq.registry import FailedJobRegistry, FinishedJobRegistry, StartedJobRegistry
from rq.serializers import resolve_serializer
from rq.suspension import WORKERS_SUSPENDED
from rq.utils import utcformat

from app import clock
from app.store.codec import text
from app.store.enqueue import JOB_FUNC
from app.store.runs import ScriptCall

if not rq.__version__.startswith("3.0."):  # pragma: no cover - guarded by the pin too
    raise ImportError(f"workers.rqstate writes RQ 3.0's layout; rq {rq.__version__} is installed")

_serializer = resolve_serializer(None)
#: how long a worker's hash outlives its last heartbeat (RQ's worker_ttl + 60)
WORKER_TTL = DEFAULT_WORKER_TTL + 60
SUSPENDED = WORKERS_SUSPENDED


@dataclass
class RqJob:
    """What the worker needs of an RQ job hash."""

    id: str
    queue: str
    #: the run the job executes (its argument), or None when it is not a Chime job
    run_id: str | None
    result_ttl: int
    failure_ttl: int


@dataclass
class Execution:
    """One job in flight on this worker, as RQ sees it."""

    job: RqJob
    id: str = field(default_factory=lambda: uuid.uuid4().hex)
    started: datetime = field(default_factory=clock.now)

    @property
    def composite(self) -> str:
        return f"{self.job.id}:{self.id}"

    @property
    def key(self) -> str:
        return f"{rq.defaults.RQ_KEY_PREFIX}:execution:{self.composite}"


def job_key(job_id: str) -> str:
    return Job.key_for(job_id)


def started_key(queue: str) -> str:
    return StartedJobRegistry.key_template.format(queue)


def _executions_key(job_id: str) -> str:
    return ExecutionRegistry.key_template.format(job_id)


def _worker_executions_key(worker: str) -> str:
    return WORKER_EXECUTIONS_KEY_TEMPLATE.format(worker)


def read(pipe: Pipeline, job_id: str) -> None:
    """Queue the read :func:`parse` needs for one job."""
    pipe.hmget(job_key(job_id), "data", "origin", "result_ttl", "failure_ttl")


def parse(job_id: str, queue: str, reply: Sequence[Any]) -> RqJob | None:
    """The job from the reply of :func:`read`; None when the job hash is gone."""
    data, origin, result_ttl, failure_ttl = reply
    if data is None:
        return None
    run_id: str | None = None
    try:
        func, _instance, args, _kwargs = _serializer.loads(_decompress(data))
        if func == JOB_FUNC and len(args) == 1 and isinstance(args[0], str):
            run_id = args[0]
    except Exception:
        run_id = None
    return RqJob(
        id=job_id,
        queue=text(origin) if origin else queue,
        run_id=run_id,
        result_ttl=int(result_ttl) if result_ttl else DEFAULT_RESULT_TTL,
        failure_ttl=int(failure_ttl) if failure_ttl else DEFAULT_FAILURE_TTL,
    )


def _decompress(data: bytes) -> bytes:
    try:
        return zlib.decompress(data)
    except zlib.error:
        return data


def _ts(dt: datetime) -> float:
    return dt.timestamp()


def worker_key(worker: str) -> str:
    return f"{rq.defaults.RQ_KEY_PREFIX}:worker:{worker}"


def start_call(worker: str, executions: Sequence[Execution], ttl: int) -> ScriptCall:
    """``lua/rq_start_jobs.lua`` for these executions (RQ's records of jobs that start)."""
    now = clock.now()
    call_keys = [_worker_executions_key(worker), worker_key(worker)]
    args: list[Any] = [_ts(now), utcformat(now), ttl, worker]
    for execution in executions:
        execution.started = now
        job = execution.job
        call_keys += [
            job_key(job.id),
            execution.key,
            _executions_key(job.id),
            started_key(job.queue),
        ]
        args += [job.id, execution.id]
    return ("rq_start_jobs", call_keys, args)


def finish_call(
    worker: str, ended: Sequence[tuple[Execution, str | None]], idle: bool
) -> ScriptCall:
    """``lua/rq_finish_jobs.lua``: RQ's records of jobs that returned (error None) or raised
    (the error's text, as RQ stores a failure)."""
    now = clock.now()
    call_keys = [_worker_executions_key(worker), worker_key(worker)]
    args: list[Any] = [_ts(now), utcformat(now), worker, "idle" if idle else ""]
    for execution, error in ended:
        job = execution.job
        failed = error is not None
        registry = FailedJobRegistry if failed else FinishedJobRegistry
        call_keys += [
            job_key(job.id),
            f"{rq.defaults.RQ_KEY_PREFIX}:results:{job.id}",
            registry.key_template.format(job.queue),
            execution.key,
            _executions_key(job.id),
            started_key(job.queue),
        ]
        args += [
            job.id,
            execution.id,
            _ts(execution.started),
            (JobStatus.FAILED if failed else JobStatus.FINISHED).value,
            job.failure_ttl if failed else job.result_ttl,
            b64encode(zlib.compress(str(error).encode())).decode() if failed else "",
        ]
    return ("rq_finish_jobs", call_keys, args)


def heartbeat(
    pipe: Pipeline,
    worker: str,
    executions: Sequence[Execution],
    ttl: int,
    state: str,
    job_heartbeat_sha: str,
) -> None:
    """RQ's worker, execution, started-registry and job heartbeats (RQ's maintain_heartbeats);
    the job hashes are refreshed by ``rq_heartbeat_jobs`` (its SHA given), which leaves a job
    deleted meanwhile deleted. The last two replies say whether the worker's hash is whole and
    whether workers are suspended (``rq suspend``)."""
    now = clock.now()
    stamp = int(_ts(now))
    key = worker_key(worker)
    pipe.hset(key, mapping={"last_heartbeat": utcformat(now), "state": state})
    pipe.expire(key, WORKER_TTL)
    pipe.expire(_worker_executions_key(worker), WORKER_TTL)
    for execution in executions:
        job = execution.job
        pipe.hset(execution.key, "last_heartbeat", _ts(now))
        pipe.expire(execution.key, ttl)
        pipe.zadd(started_key(job.queue), {execution.composite: stamp + ttl}, xx=True)
        pipe.zadd(_executions_key(job.id), {execution.id: stamp + ttl + 60}, xx=True)
        pipe.expire(_executions_key(job.id), ttl + 60)
    if executions:
        jobs = [job_key(execution.job.id) for execution in executions]
        pipe.evalsha(job_heartbeat_sha, len(jobs), *jobs, utcformat(now))
    pipe.hexists(key, "birth")
    pipe.exists(SUSPENDED)
