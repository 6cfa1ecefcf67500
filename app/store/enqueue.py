"""Put queued runs on RQ.

A run becomes ``queued`` inside a Lua script that also adds it to the outbox, the ledger of
queued runs until a worker starts them (``app/store/outbox.py``); this module then writes the
RQ jobs (job id = run id, queue ``chime-p{priority}``) in one MULTI/EXEC and leaves the outbox
entries alone. A process that dies in between, or a job that gets lost on the way to a worker,
leaves the run in the outbox, and the outbox pass enqueues it again; a job that did reach RQ
twice is harmless because the worker only starts a run that is still ``queued``.

A queued job hash has no TTL (a retry or a hand-over enqueues the same job id again, so the TTL
its previous run left is removed); it gets one when its run ends (RQ keeps finished and failed
jobs for a day), and a cancel deletes the jobs of runs that had not started.

The run was queued when its script ran, but the enqueue comes a moment later, from Python: a
cancel in between ends the run and finds no job to delete, and the enqueue would then write a
job without a TTL for a run that is over. So the same MULTI/EXEC that writes the jobs reads the
runs' statuses, and the jobs of runs that have ended are taken off again; a cancel after the
EXEC finds the job and deletes it itself.
"""

from collections.abc import Iterable, Mapping, Sequence

import redis
from rq import Queue
from rq.job import Job

from app.core.pipeline import MAX_STEP_TIMEOUT, MAX_STEPS
from app.core.status import RUN_TERMINAL
from app.store.codec import text_or_none as _text
from app.store.keys import Keys, queue_name

#: The RQ job function, by name, so the web process never imports the worker code.
JOB_FUNC = "workers.job.execute_run"
#: RQ's own timeout for one job: the longest pipeline the contract allows, plus a margin for
#: recording; each step has its own, shorter timeout.
JOB_TIMEOUT_SECONDS = int(MAX_STEPS * MAX_STEP_TIMEOUT) + 300
#: RQ keeps finished job records this long, for the dashboard.
RESULT_TTL_SECONDS = 24 * 3600


def enqueue_runs(
    rq: redis.Redis,
    keys: Keys,
    runs: Iterable[tuple[str, int]],
    *,
    requeue: bool = False,
    descriptions: Mapping[str, str] | None = None,
) -> list[str]:
    """Enqueue ``(run_id, priority)`` pairs; returns the run ids enqueued, leaving out the runs
    that had ended by then (their jobs are taken off again). With ``requeue`` (runs the outbox
    pass found on no queue), the jobs also leave what RQ kept of an earlier try: the queue's
    intermediate list (a plain RQ worker that died holding the job) and its failed
    registry. ``descriptions``: job descriptions (:func:`describe`) the caller already has, by
    run id; the others are read (:func:`describe_runs`)."""
    by_queue: dict[int, list[str]] = {}
    for run_id, priority in runs:
        by_queue.setdefault(int(priority), []).append(run_id)
    if not by_queue:
        return []
    descriptions = _described(rq, keys, [r for ids in by_queue.values() for r in ids], descriptions)
    pipe = rq.pipeline(transaction=True)
    done: list[str] = []
    for priority, run_ids in sorted(by_queue.items()):
        queue = Queue(queue_name(priority), connection=rq)
        queue.enqueue_many(
            [
                Queue.prepare_data(
                    JOB_FUNC,
                    args=(run_id,),
                    job_id=run_id,
                    timeout=JOB_TIMEOUT_SECONDS,
                    result_ttl=RESULT_TTL_SECONDS,
                    failure_ttl=RESULT_TTL_SECONDS,
                    description=descriptions[run_id],
                )
                for run_id in run_ids
            ],
            pipeline=pipe,
        )
        for run_id in run_ids:
            pipe.persist(Job.key_for(run_id))
            if requeue:
                pipe.lrem(queue.intermediate_queue_key, 0, run_id)
                pipe.zrem(queue.failed_job_registry.key, run_id)
        done += run_ids
    for run_id in done:
        pipe.hget(keys.run(run_id), "status")
    statuses = pipe.execute()[-len(done) :]
    ended = {r for r, s in zip(done, statuses, strict=True) if _text(s) in RUN_TERMINAL}
    if ended:
        dequeue_runs(rq, sorted(ended))
        return [r for r in done if r not in ended]
    return done


#: a task title is cut to this many characters in a job description
DESCRIPTION_TITLE_MAX = 80


def describe(
    title: str | None, task_id: str | None, agent: str | None, trigger: str | None, run_id: str
) -> str:
    """What rq-dashboard shows for a run's job: the task's title (on one line, cut), the task,
    its agent, the trigger and the run."""
    shown = " ".join((title or "(untitled)").split())
    if len(shown) > DESCRIPTION_TITLE_MAX:
        shown = shown[: DESCRIPTION_TITLE_MAX - 1] + "…"
    return (
        f"{shown} · task {task_id or '?'} · agent {agent or '?'} · {trigger or '?'} · run {run_id}"
    )


def describe_runs(rq: redis.Redis, keys: Keys, run_ids: Sequence[str]) -> dict[str, str]:
    """:func:`describe` of each run, read from its record and its task's (two pipelined reads
    for the whole batch)."""
    pipe = rq.pipeline(transaction=False)
    for run_id in run_ids:
        pipe.hmget(keys.run(run_id), "task_id", "agent_id", "trigger")
    owners = [[_text(v) for v in found] for found in pipe.execute()]
    pipe = rq.pipeline(transaction=False)
    for task_id, _, _ in owners:
        pipe.hget(keys.task(task_id or "-"), "title")
    titles = [_text(t) for t in pipe.execute()]
    return {
        run_id: describe(title, task_id, agent, trigger, run_id)
        for run_id, (task_id, agent, trigger), title in zip(run_ids, owners, titles, strict=True)
    }


def _described(
    rq: redis.Redis, keys: Keys, run_ids: Sequence[str], known: Mapping[str, str] | None
) -> Mapping[str, str]:
    """The description of each run: ``known`` ones as given, the others read."""
    known = known or {}
    missing = [r for r in run_ids if r not in known]
    return {**describe_runs(rq, keys, missing), **known} if missing else known


def dequeue_runs(rq: redis.Redis, run_ids: Sequence[str]) -> None:
    """Take runs that will not start (their task was canceled) off their RQ queues and delete
    their RQ jobs, which would otherwise stay without a TTL. A worker that took one of them off
    its queue a moment before finds the job gone (or its run canceled) and skips it."""
    if not run_ids:
        return
    pipe = rq.pipeline(transaction=False)
    for priority in range(1, 10):
        key = Queue(queue_name(priority), connection=rq).key
        for run_id in run_ids:
            pipe.lrem(key, 0, run_id)
    for run_id in run_ids:
        pipe.delete(Job.key_for(run_id))
    pipe.execute()
