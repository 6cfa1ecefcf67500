"""One structured log line per run transition, and masking of secrets before anything is logged.

Lines are ``logfmt`` (``event=run.transition task_id=... run_id=... attempt=2 status=running``)
so log search can filter on any field. A header or field named like authorization, cookie,
token, secret, password or api-key never reaches a log line or a stored step output.
"""

import logging
import re
from collections.abc import Mapping
from typing import Any
from urllib.parse import urlsplit, urlunsplit

logger = logging.getLogger("chime.worker")

SENSITIVE = re.compile(
    r"authorization|cookie|token|secret|passw|api[-_]?key|session|credential", re.I
)
MASK = "***"


def is_sensitive(name: str) -> bool:
    return bool(SENSITIVE.search(name))


def mask_headers(headers: Mapping[str, Any]) -> dict[str, Any]:
    """A copy with the values of sensitive headers replaced by ``***``."""
    return {k: MASK if is_sensitive(k) else v for k, v in headers.items()}


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


def _value(v: Any) -> str:
    text = str(v)
    if text == "" or re.search(r'[\s="]', text):
        return '"' + text.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n") + '"'
    return text


def logfmt(event: str, **fields: Any) -> str:
    parts = [f"event={event}"]
    for k, v in fields.items():
        if v is None:
            continue
        parts.append(f"{k}={MASK if is_sensitive(k) else _value(v)}")
    return " ".join(parts)


def log_transition(
    task_id: str, run_id: str, attempt: int, status: str, level: int = logging.INFO, **extra: Any
) -> None:
    """The one line a run transition logs (task id, run id, attempt, status, extras)."""
    logger.log(
        level,
        logfmt(
            "run.transition",
            task_id=task_id,
            run_id=run_id,
            attempt=attempt,
            status=status,
            **extra,
        ),
    )
