"""One structured log line per run transition (fields masked by ``app.logs``'s formatter).

``log_transition`` logs ``event=run.transition task_id=... run_id=... attempt=2
status=running``. ``mask_url`` (from ``app.logs``) is re-exported for the worker's step outputs.
"""

import logging
from typing import Any

from app.logs import mask_url

__all__ = ["log_transition", "mask_url"]

logger = logging.getLogger("chime.worker")


def log_transition(
    task_id: str, run_id: str, attempt: int, status: str, level: int = logging.INFO, **extra: Any
) -> None:
    """The one line a run transition logs (task id, run id, attempt, status, extras)."""
    logger.log(
        level,
        "run.transition",
        extra={"task_id": task_id, "run_id": run_id, "attempt": attempt, "status": status, **extra},
    )
