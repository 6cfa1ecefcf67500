"""Use cases on runs: cancel one, and give every queued run an owner (the outbox pass)."""

from app.service.backend import Backend
from app.service.dispatch import enqueue_handed, withdraw
from app.store import stats
from app.store.cancel import Canceled
from app.store.cancel import cancel_run as cancel_run_script
from app.store.enqueue import enqueue_runs
from app.store.limits import hand_free_slots
from app.store.outbox import Reconciled, reconcile_outbox
from app.store.runs import Recovered, recover_lapsed_runs


def cancel_run(backend: Backend, run_id: str, agent: str | None) -> Canceled:
    """Cancel one run (see ``app/store/cancel.py``): an unstarted one leaves RQ, and the runs
    its freed slots went to are enqueued at once."""
    canceled = cancel_run_script(backend.client, backend.keys, backend.settings, run_id, agent)
    if canceled.was_queued:
        withdraw(backend, [run_id])
    enqueue_handed(backend, canceled.handed)
    return canceled


def reconcile(backend: Backend, now_ms: int, grace_ms: int, limit: int) -> Reconciled:
    """One outbox pass (``app/store/outbox.py``): the queued runs no one owns are enqueued
    again, clearing what RQ kept of an earlier try, and counted as ``runs_requeued``."""
    found = reconcile_outbox(backend.client, backend.keys, now_ms, grace_ms, limit)
    if found.lost:
        found.requeued = enqueue_runs(backend.rq, backend.keys, found.lost, requeue=True)
        stats.incr(backend.client, backend.keys, stats.RUNS_REQUEUED, len(found.requeued))
    return found


def fill_agent_lines(backend: Backend, now_ms: int) -> list[str]:
    """Give the agents' slots freed by a lapsed lease to the runs waiting for them, and
    enqueue those runs; returns their ids."""
    handed = hand_free_slots(backend.client, backend.keys, backend.settings, now_ms)
    return enqueue_handed(backend, handed)


def recover_lapsed(backend: Backend) -> list[Recovered]:
    """End (or retry) the attempts whose worker was lost, and enqueue the runs their slots
    went to."""
    recovered = recover_lapsed_runs(backend.client, backend.keys, backend.settings)
    enqueue_handed(backend, [pair for r in recovered for pair in r.finished.handed])
    return recovered
