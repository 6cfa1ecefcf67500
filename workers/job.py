"""The RQ job function: one attempt of one run (RQ job id = run id).

``chime worker`` does not call it: it recognizes Chime's jobs by this function's name and runs
hundreds at once (``workers/worker.py``). ``execute_run`` stays the job's function so that jobs
already queued, and any plain ``rq worker`` on Chime's queues, still run: it starts the run if it
is still ``queued``, runs the pipeline on an event loop of its own with a heartbeat renewing
the attempt's lease, and records the outcome (``workers/attempts.py``).
"""

import asyncio

from app.settings import Settings, get_settings
from app.store import connection
from app.store.keys import Keys
from workers.attempts import JobDeps, open_runtime, run_one

__all__ = ["JobDeps", "configure", "default_deps", "execute_run", "run_job"]

_deps: dict[int, JobDeps] = {}
_configured: Settings | None = None


def configure(settings: Settings) -> None:
    """Use these settings for the jobs of this process."""
    global _configured
    _configured = settings


def default_deps() -> JobDeps:
    """One set of synchronous clients per settings object in this process."""
    settings = _configured or get_settings()
    found = _deps.get(id(settings))
    if found is None or found.settings is not settings:
        found = _deps[id(settings)] = JobDeps(
            settings=settings,
            client=connection.client(settings.redis_url),
            rq=connection.rq_client(settings.redis_url),
            keys=Keys(settings.key_prefix),
        )
    return found


def execute_run(run_id: str) -> None:
    """RQ entry point (``workers.job.execute_run``): one attempt of run ``run_id``."""
    run_job(run_id, default_deps())


def run_job(run_id: str, deps: JobDeps) -> str | None:
    """One attempt on an event loop of its own; the run's status afterwards (None when the job
    did nothing)."""

    async def one() -> str | None:
        async with open_runtime(deps, max_connections=10) as rt:
            return await run_one(rt, run_id)

    return asyncio.run(one())
