"""``chime worker``: an RQ worker on ``chime-p1`` .. ``chime-p9``, priority 1 first.

The worker class is RQ's ``SimpleWorker`` (jobs run in the worker process): measured here it
executes ~6x more jobs per second than the forking ``Worker``, and a forked work horse buys no
safety Chime needs: a run whose process dies (``kill -9``, OOM, a lost dyno) is recovered the
same way in both, because the attempt holds a heartbeat lease in Redis. Every worker process
also sweeps lapsed leases (``recover_lapsed_runs``), so another worker, or this one restarted,
counts a dead worker's attempt as failed and retries it, and frees its concurrency slot.
"""

import logging
import threading

import redis
from rq import Queue, SimpleWorker
from rq.worker import BaseWorker

from app.settings import Settings
from app.store import connection
from app.store.enqueue import enqueue_runs
from app.store.keys import QUEUE_NAMES, Keys
from app.store.runs import recover_lapsed_runs
from workers import job
from workers.runlog import log_transition

logger = logging.getLogger("chime.worker")

#: the longest a lost attempt waits for a sweep beyond its lease
MAX_SWEEP_SECONDS = 15.0


class Sweeper:
    """A thread that counts attempts whose heartbeat lapsed as failed (retry or final)."""

    def __init__(self, settings: Settings, interval: float | None = None) -> None:
        self.settings = settings
        self.client = connection.client(settings.redis_url)
        self.rq = connection.rq_client(settings.redis_url)
        self.keys = Keys(settings.key_prefix)
        self.interval = interval or min(
            MAX_SWEEP_SECONDS, max(0.05, settings.semaphore_lease_seconds / 4)
        )
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._loop, name="chime-sweeper", daemon=True)

    def sweep(self) -> int:
        """One pass; returns how many lost attempts it recorded."""
        recovered = recover_lapsed_runs(self.client, self.keys, self.settings)
        handed = [pair for r in recovered for pair in r.finished.handed]
        if handed:
            enqueue_runs(self.rq, self.keys, handed)
        for r in recovered:
            task_id = self.client.hget(self.keys.run(r.run_id), "task_id") or ""
            log_transition(
                str(task_id), r.run_id, r.attempt, r.finished.status, reason="worker lost"
            )
        return len(recovered)

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        self._thread.join()

    def _loop(self) -> None:
        while True:
            try:
                self.sweep()
            except redis.RedisError as exc:
                logger.warning("sweep.failed", extra={"error": str(exc)})
            if self._stop.wait(self.interval):
                return


def main(
    settings: Settings,
    burst: bool = False,
    worker_class: type[BaseWorker] = SimpleWorker,
    name: str | None = None,
) -> bool:
    """Work the priority queues until stopped (or, with ``burst``, until they are empty)."""
    job.configure(settings)
    rq = connection.rq_client(settings.redis_url)
    queues = [Queue(q, connection=rq) for q in QUEUE_NAMES]
    sweeper = Sweeper(settings)
    sweeper.start()
    try:
        worker = worker_class(queues, connection=rq, name=name)
        return bool(worker.work(burst=burst, logging_level=settings.log_level))
    finally:
        sweeper.stop()
