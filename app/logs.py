"""One structured line per event, in logfmt, with secrets masked.

Call sites log an event name as the message and its facts as ``extra`` fields::

    log.info("run.transition", extra={"task_id": t, "run_id": r, "attempt": 1, "status": "running"})

which prints ``ts=2026-01-01T00:00:00.000Z level=info logger=chime.worker event=run.transition
task_id=... run_id=... attempt=1 status=running``. A field whose name looks like a credential
(authorization, cookie, token, secret, password, api-key) is printed as ``***``, and so is any
such key inside a dict-valued field, so a header set or step params can be logged as they are.
"""

import logging
import re
import sys
from collections.abc import Mapping
from typing import Any
from urllib.parse import urlsplit, urlunsplit

from app import clock

MASK = "***"
_SENSITIVE = re.compile(r"authorization|cookie|token|secret|passw|api[-_]?key|credential", re.I)
_BARE = re.compile(r"^[^\s=\"\\]+$")
#: LogRecord attributes that are not event fields.
_STANDARD = frozenset(vars(logging.LogRecord("", 0, "", 0, "", None, None))) | {
    "message",
    "asctime",
    "taskName",
    "color_message",  # uvicorn's ANSI-coloured copy of the message
}


#: Libraries whose INFO lines would repeat what Chime logs itself, unmasked.
_QUIET = ("httpx", "httpcore")
#: Loggers that frameworks give handlers of their own.
_OWN_HANDLERS = ("litestar",)


def is_sensitive(name: str) -> bool:
    """Whether a header or field named ``name`` may carry a credential."""
    return bool(_SENSITIVE.search(name))


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


def one_line(error: BaseException) -> str:
    """An exception's message on one line (its type when it has none)."""
    return " ".join(str(error).split()) or type(error).__name__


def mask_headers(headers: Mapping[str, Any] | None) -> dict[str, Any]:
    """A copy of ``headers`` with the values of credential-like names replaced by ``***``."""
    if not headers:
        return {}
    return {k: MASK if is_sensitive(str(k)) else v for k, v in headers.items()}


def mask(value: Any) -> Any:
    """``value`` with credential-like keys masked at any depth of dicts and lists."""
    if isinstance(value, Mapping):
        return {k: MASK if is_sensitive(str(k)) else mask(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [mask(v) for v in value]
    return value


class LogfmtFormatter(logging.Formatter):
    """``key=value`` pairs on one line: ts, level, logger, event, then the record's extras."""

    def format(self, record: logging.LogRecord) -> str:
        pairs: list[tuple[str, Any]] = [
            ("ts", clock.iso(clock.ms(record.created))),
            ("level", record.levelname.lower()),
            ("logger", record.name),
            ("event", record.getMessage()),
        ]
        for name, value in record.__dict__.items():
            if name in _STANDARD or name.startswith("_"):
                continue
            pairs.append((name, MASK if is_sensitive(name) else mask(value)))
        if record.exc_info:
            pairs.append(("error", self.formatException(record.exc_info)))
        return " ".join(f"{k}={_quote(v)}" for k, v in pairs)


def _quote(value: Any) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "true" if value else "false"
    text = value if isinstance(value, str) else str(value)
    if text and _BARE.match(text):
        return text
    escaped = text.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n")
    return f'"{escaped}"'


def configure_logging(level: str = "INFO") -> None:
    """Send every log record to stderr as one logfmt line; call once at process start."""
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(LogfmtFormatter())
    root = logging.getLogger()
    for old in list(root.handlers):
        root.removeHandler(old)
    root.addHandler(handler)
    root.setLevel(level.upper())
    # httpx logs each request's full URL, query string and all: a step's URL may carry a key,
    # and the worker logs its own masked line instead.
    for name in _QUIET:
        logging.getLogger(name).setLevel(logging.WARNING)
    # a framework that installed its own handlers (Litestar does, when its app is built) is
    # sent back through ours, so every line of every process has the same shape
    for name in _OWN_HANDLERS:
        framework = logging.getLogger(name)
        for old in list(framework.handlers):
            framework.removeHandler(old)
        framework.propagate = True
