"""Use cases on one task that make or end runs: run now, backfill, cancel."""

from app.core.status import Trigger
from app.core.task import Run, Task
from app.service.backend import Backend
from app.service.dispatch import Made, dispatch, withdraw
from app.store.backfill import backfill as backfill_runs


def run_now(backend: Backend, task_id: str, agent: str | None) -> Run:
    """One run now, outside the schedule (``queued``, or ``deduped`` by the dedupe window,
    ``pending`` for a full agent, ``skipped`` by the overlap policy), counted as the scheduler
    counts scheduled runs."""
    run = backend.store.run_now(task_id, agent)
    dispatch(backend, [Made(run.id, run.status, run.priority, Trigger.RUN_NOW)])
    return run


def backfill(
    backend: Backend, task_id: str, start_ms: int, end_ms: int, agent: str | None
) -> list[Run]:
    """The runs of the task's occurrences in ``[start_ms, end_ms)``, oldest first; the runs
    an earlier backfill made are returned as they are, neither counted nor enqueued again."""
    found = backfill_runs(backend.store, task_id, start_ms, end_ms, agent)
    dispatch(
        backend,
        (
            Made(run.id, run.status, run.priority, Trigger.BACKFILL)
            for run, made in zip(found.runs, found.made, strict=True)
            if made
        ),
    )
    return found.runs


def cancel_task(backend: Backend, task_id: str, agent: str | None) -> Task:
    """Cancel the task for good: its runs that had not started end ``canceled`` and leave RQ."""
    task, queued = backend.store.cancel(task_id, agent)
    withdraw(backend, queued)
    return task
