"""One structured log line per run transition (fields masked by ``app.logs``'s formatter).

``log_transition`` logs ``event=run.transition task_id=... run_id=... attempt=2
status=running``; ``mask_url`` hides a URL's password and credential-like query values before a
URL reaches a log line, an error message or a stored step output.
"""

import logging
from typing import Any
from urllib.parse import urlsplit, urlunsplit

from app.logs import MASK, is_sensitive

logger = logging.getLogger("chime.worker")


def mask_url(url: str) -> str:
    """The URL without a password in its userinfo and without sensitive query values."""
    try:
        parts = urlsplit(url)
    except ValueError:
        return url
    netloc = parts.netloc
    if parts.password:
        netloc = netloc.replace(f":{parts.password}@", f":{MASK}@", 1)
    query = "&".join(
        f"{k}={MASK}" if is_sensitive(k) and sep else f"{k}{sep}{v}"
        for k, sep, v in (p.partition("=") for p in parts.query.split("&") if p)
    )
    return urlunsplit((parts.scheme, netloc, parts.path, query, parts.fragment))


def log_transition(
    task_id: str, run_id: str, attempt: int, status: str, level: int = logging.INFO, **extra: Any
) -> None:
    """The one line a run transition logs (task id, run id, attempt, status, extras)."""
    logger.log(
        level,
        "run.transition",
        extra={"task_id": task_id, "run_id": run_id, "attempt": attempt, "status": status, **extra},
    )
