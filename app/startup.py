"""What a long-running process checks before it serves, so a broken deploy says why at once.

Redis must answer, be new enough for the scripts (6.2: ``ZMSCORE``, ``GETDEL``, ``LPOS``), the
Lua scripts must be in the installation and compile, and RQ must be able to read its queues.
Each failure is one :class:`StartupError` line; the command line prints it and exits with
status 1, instead of a process that retries a fatal problem forever. Later, transient Redis
errors are the loops' business: they retry quietly with backoff.
"""

import re

import redis
from rq import Queue

from app.core.errors import ChimeError
from app.logs import mask_url, one_line
from app.settings import Settings
from app.store import connection, scripts
from app.store.keys import QUEUE_NAMES, Keys
from app.store.limits import publish_defaults

#: the oldest Redis whose commands every script uses
MIN_REDIS_VERSION = (6, 2)
#: seconds a start-up check waits for Redis
TIMEOUT = 5.0


class StartupError(ChimeError):
    """The process cannot start: the message is one line saying why."""


def check(settings: Settings, *, needs_scripts: bool = True) -> None:
    """Raise :class:`StartupError` when Redis, the scripts or RQ are not usable."""
    url = mask_url(settings.redis_url)
    try:
        connection.ping(settings.redis_url, TIMEOUT)
    except (redis.RedisError, ValueError, AttributeError, TypeError) as exc:
        raise StartupError(f"cannot reach Redis at {url}: {one_line(exc)}") from None
    with connection.client(settings.redis_url, socket_timeout=TIMEOUT, retries=1) as client:
        try:
            _check_version(client, url)
            if needs_scripts:
                _check_scripts(client, url)
                # the Lua gates read the per-agent defaults from Redis (app/store/limits.py)
                publish_defaults(client, Keys(settings.key_prefix), settings)
        except (redis.RedisError, ValueError, AttributeError, TypeError) as exc:
            # whatever answers on that address does not behave like the Redis we need
            raise StartupError(f"Redis at {url} failed a start-up check: {one_line(exc)}") from None
    with connection.rq_client(settings.redis_url, socket_timeout=TIMEOUT, retries=1) as rq:
        try:
            Queue(QUEUE_NAMES[0], connection=rq).count  # noqa: B018 - reads the queue
        except redis.RedisError as exc:
            raise StartupError(f"RQ cannot use Redis at {url}: {one_line(exc)}") from None


def _check_version(client: redis.Redis, url: str) -> None:
    found = str(client.info("server").get("redis_version", ""))
    version = parse_version(found)
    if version is None or version < MIN_REDIS_VERSION:
        need = ".".join(map(str, MIN_REDIS_VERSION))
        raise StartupError(f"Redis at {url} is version {found or 'unknown'}; Chime needs {need}+")


def _check_scripts(client: redis.Redis, url: str) -> None:
    for name in scripts.NAMES:
        try:
            client.script_load(scripts.source(name))
        except scripts.ScriptMissing as exc:
            raise StartupError(str(exc)) from None
        except redis.ResponseError as exc:
            raise StartupError(
                f"Redis at {url} refused the Lua script {name}: {one_line(exc)}"
            ) from None


def parse_version(text: str) -> tuple[int, int] | None:
    """``"7.0.15"`` -> ``(7, 0)``; None when the text is no version."""
    m = re.match(r"^(\d+)\.(\d+)", text)
    return (int(m.group(1)), int(m.group(2))) if m else None
