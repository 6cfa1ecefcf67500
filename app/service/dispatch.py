"""The last step of every use case that makes or ends runs: put the new queued runs on RQ, take
the ended ones off, and count what entered which status (``app/store/stats.py``).

The run already is what it is when this runs (the script made it and, when queued, wrote it to
the outbox): a process that dies before RQ has the job leaves it to the outbox pass
(``app/store/outbox.py``), so this step may be lost but never runs a run twice.
"""

from collections.abc import Iterable, Sequence
from typing import Any, NamedTuple

from app.core.status import RunStatus
from app.service.backend import Backend
from app.store import stats
from app.store.enqueue import dequeue_runs, enqueue_runs


class Made(NamedTuple):
    """A run a use case made (or moved) into ``status``: what dispatching it needs."""

    run_id: str
    status: str
    priority: int
    trigger: str
    #: its RQ job's description (``app/store/enqueue.py:describe``) when the use case has
    #: what it names at hand; '' to have it read
    description: str = ""


def dispatch(
    backend: Backend, made: Iterable[Made], *, counted: bool = True, pipe: Any = None
) -> list[str]:
    """Count the runs (unless ``counted`` is False: a run only handed a slot entered no new
    status the stats keep) and enqueue the queued ones; returns the run ids enqueued.

    ``pipe``: a pipeline on ``backend.client`` holding the caller's own counts (the scheduler's
    batch size); the runs' counts are added to it and it is sent here, before the enqueue, so
    the batch's counting costs one round trip. Without it the counts go in a pipeline of their
    own."""
    made = list(made)
    counts = backend.client.pipeline(transaction=False) if pipe is None else pipe
    if counted and made:
        stats.count_entries(counts, backend.keys, ((m.status, m.trigger) for m in made))
    if len(counts):
        counts.execute()
    queued = [m for m in made if m.status == RunStatus.QUEUED]
    if not queued:
        return []
    return enqueue_runs(
        backend.rq,
        backend.keys,
        [(m.run_id, m.priority) for m in queued],
        descriptions={m.run_id: m.description for m in queued if m.description},
    )


def enqueue_handed(backend: Backend, handed: Sequence[tuple[str, int]]) -> list[str]:
    """Enqueue runs handed a freed slot (``(run id, priority)``): they were counted when they
    were made, and their outbox entry is already due."""
    return dispatch(
        backend, (Made(run_id, RunStatus.QUEUED, p, "") for run_id, p in handed), counted=False
    )


def withdraw(backend: Backend, run_ids: Sequence[str]) -> None:
    """Take runs that ended before they started off RQ (their scripts ended them)."""
    if run_ids:
        dequeue_runs(backend.rq, run_ids)
