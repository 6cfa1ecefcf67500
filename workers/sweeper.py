"""The sweep every worker runs: attempts whose lease lapsed (their worker was killed or lost)
count as failed and are retried per their task's backoff; their concurrency slots go to the
runs waiting for them. It runs the outbox pass too (``app/store/outbox.py``), so a queued run
that no one owns is enqueued again even while no scheduler runs.

A run whose last attempt was lost ends ``failed``; its RQ job is failed in RQ at once, with
RQ's own failure record, so it leaves the started registry and gets RQ's failure TTL now rather
than at RQ's next maintenance.
"""

import logging

from rq.exceptions import NoSuchJobError
from rq.executions import Execution
from rq.job import Job, JobStatus
from rq.job_lifecycle import record_job_failure

from app import clock
from app.core.status import RUN_TERMINAL
from app.service.backend import Backend
from app.service.runs import reconcile, recover_lapsed
from app.settings import Settings
from app.store import connection
from app.store.keys import Keys
from app.store.runs import LOST_WORKER_ERROR
from workers.runlog import log_transition

logger = logging.getLogger("chime.worker")

#: the longest a lost attempt waits for a sweep beyond its lease
MAX_SWEEP_SECONDS = 15.0
#: outbox entries judged per sweep
OUTBOX_BATCH = 500


class Sweeper:
    """Counts attempts whose heartbeat lapsed as failed (retry or final), for any worker."""

    def __init__(self, settings: Settings, interval: float | None = None) -> None:
        self.settings = settings
        self.client = connection.client(settings.redis_url)
        self.rq = connection.rq_client(settings.redis_url)
        self.keys = Keys(settings.key_prefix)
        self.backend = Backend(self.client, self.rq, self.keys, settings)
        self.interval = interval or min(
            MAX_SWEEP_SECONDS, max(0.05, settings.semaphore_lease_seconds / 4)
        )

    def sweep(self) -> int:
        """One pass (lost attempts first, then the outbox); returns how many lost attempts it
        recorded."""
        recovered = recover_lapsed(self.backend)
        for r in recovered:
            task_id = self.client.hget(self.keys.run(r.run_id), "task_id") or ""
            log_transition(
                str(task_id), r.run_id, r.attempt, r.finished.status, reason="worker lost"
            )
            if r.finished.status in RUN_TERMINAL:
                self._fail_job(r.run_id)
        self.reconcile()
        return len(recovered)

    def reconcile(self) -> int:
        """The outbox pass: enqueue again the queued runs no one owns; returns how many."""
        found = reconcile(
            self.backend,
            clock.now_ms(),
            clock.ms(self.settings.enqueue_grace_seconds),
            OUTBOX_BATCH,
        )
        if found.requeued:
            logger.warning("sweep.outbox_enqueued_again", extra={"runs": len(found.requeued)})
        return len(found.requeued)

    def _fail_job(self, run_id: str) -> None:
        """The RQ job of a run that ended with its worker lost (no attempt follows): failed in
        RQ as well, with RQ's own failure record, so it leaves the started registry and gets
        RQ's failure TTL now rather than at RQ's next maintenance."""
        try:
            job = Job.fetch(run_id, connection=self.rq)
        except NoSuchJobError:
            return
        if job.get_status() != JobStatus.STARTED:
            return
        with self.rq.pipeline() as pipe:
            for execution_id in job.execution_registry.get_execution_ids():
                execution = Execution(execution_id, job.id, connection=self.rq)
                pipe.delete(execution.key)
                pipe.zrem(job.started_job_registry.key, execution.composite_key)
                pipe.zrem(job.execution_registry.key, execution.id)
            record_job_failure(job, LOST_WORKER_ERROR, pipe)
            pipe.execute()

    def close(self) -> None:
        self.client.close()
        self.rq.close()
