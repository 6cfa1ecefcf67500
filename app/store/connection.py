"""Every Redis client Chime makes, made here and nowhere else.

One shape for all of them: a short connect timeout, a bounded reply timeout, TCP keepalive, a
health check on connections idle for a while, and retries with jittered exponential backoff
on connection errors and timeouts, so a dropped connection or a Redis restart costs a retry,
not a crashed process. Chime's own store reads ``str`` replies (``decode_responses=True``);
RQ needs ``bytes`` replies, so it gets its own client (:func:`rq_client`).

Commands that block on purpose (pub/sub reads, RQ's ``BLPOP``) pass their own timeout; no
other Chime call waits in Redis, so :data:`SOCKET_TIMEOUT` bounds how long a hung Redis holds
a request before it fails.
"""

import logging
import random
import time
from typing import Any

import redis
import redis.asyncio
from redis.asyncio.retry import Retry as AsyncRetry
from redis.backoff import ExponentialWithJitterBackoff
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import TimeoutError as RedisTimeoutError
from redis.retry import Retry

from app.logs import one_line
from app.store.packed import packing

#: seconds to wait for a new connection
CONNECT_TIMEOUT = 2.0
#: seconds to wait for a reply
SOCKET_TIMEOUT = 5.0
#: retries of one command on a connection error or timeout, with backoff between them
RETRIES = 3
#: backoff between retries: jittered, doubling from BASE, at most CAP seconds
BACKOFF_BASE = 0.05
BACKOFF_CAP = 1.0
#: a connection idle this long (seconds) is checked with a PING before it is used again
HEALTH_CHECK_INTERVAL = 15

_RETRY_ERRORS = (RedisConnectionError, RedisTimeoutError, TimeoutError, ConnectionError)


def _options(socket_timeout: float | None, connect_timeout: float, retries: int) -> dict[str, Any]:
    return {
        "socket_connect_timeout": connect_timeout,
        "socket_timeout": socket_timeout,
        "socket_keepalive": True,
        "health_check_interval": HEALTH_CHECK_INTERVAL,
        "retry": Retry(
            ExponentialWithJitterBackoff(cap=BACKOFF_CAP, base=BACKOFF_BASE),
            retries,
            supported_errors=_RETRY_ERRORS,
        ),
    }


def client(
    url: str,
    *,
    socket_timeout: float | None = SOCKET_TIMEOUT,
    connect_timeout: float = CONNECT_TIMEOUT,
    retries: int = RETRIES,
) -> redis.Redis:
    """A client with ``str`` replies, for Chime's own keys."""
    return redis.Redis.from_url(
        url, decode_responses=True, **_options(socket_timeout, connect_timeout, retries)
    )


def rq_client(
    url: str,
    *,
    socket_timeout: float | None = SOCKET_TIMEOUT,
    connect_timeout: float = CONNECT_TIMEOUT,
    retries: int = RETRIES,
) -> redis.Redis:
    """A client with ``bytes`` replies, as RQ needs."""
    return redis.Redis.from_url(url, **_options(socket_timeout, connect_timeout, retries))


def async_client(
    url: str,
    *,
    decode: bool = True,
    socket_timeout: float | None = SOCKET_TIMEOUT,
    connect_timeout: float = CONNECT_TIMEOUT,
    retries: int = RETRIES,
    max_connections: int | None = None,
    wait_for_connection: bool = False,
) -> "redis.asyncio.Redis":
    """An asyncio client (``str`` replies unless ``decode=False``). ``max_connections``: its
    pool's size (redis-py's default is 100; past it a call fails at once instead of waiting,
    unless ``wait_for_connection``: then it waits for a connection to come back). Its
    connections send commands packed by :mod:`app.store.packed` as they are."""
    options = _options(socket_timeout, connect_timeout, retries)
    if max_connections is not None:
        options["max_connections"] = max_connections
    options["retry"] = AsyncRetry(
        ExponentialWithJitterBackoff(cap=BACKOFF_CAP, base=BACKOFF_BASE),
        retries,
        supported_errors=(RedisConnectionError, RedisTimeoutError),
    )
    if wait_for_connection:
        pool = redis.asyncio.BlockingConnectionPool.from_url(
            url, decode_responses=decode, timeout=None, **options
        )
        made = redis.asyncio.Redis.from_pool(pool)
    else:
        made = redis.asyncio.Redis.from_url(url, decode_responses=decode, **options)
    # before any connection is made: the URL's class (TCP, TLS, Unix socket), made to send a
    # command packed by the caller and to bound a write without a task (app/store/packed.py)
    made.connection_pool.connection_class = packing(made.connection_pool.connection_class)
    return made


def ping(url: str, timeout: float = CONNECT_TIMEOUT) -> None:
    """PING once, without retries; raises :class:`redis.RedisError` when Redis does not answer."""
    with client(url, socket_timeout=timeout, connect_timeout=timeout, retries=0) as c:
        c.ping()


class Outage:
    """Quiet, bounded backoff for a loop that meets Redis errors.

    The first error of an outage is logged as a warning, the rest at debug level, and the
    recovery once with how long Redis was away: one line per outage instead of a traceback a
    second. Waits double from :data:`BACKOFF_BASE` up to ``cap`` seconds, so work resumes within
    about ``cap`` seconds of Redis coming back.
    """

    def __init__(self, logger: logging.Logger, name: str, cap: float = 1.0) -> None:
        self.logger, self.name, self.cap = logger, name, cap
        self.failures = 0
        self._since = 0.0

    def failed(self, exc: BaseException) -> float:
        """Record an error; returns how long to wait before trying again."""
        if self.failures == 0:
            self._since = time.monotonic()
            self.logger.warning(f"{self.name}.redis_unavailable", extra={"error": one_line(exc)})
        else:
            self.logger.debug(f"{self.name}.redis_unavailable", extra={"error": one_line(exc)})
        self.failures += 1
        wait: float = min(self.cap, BACKOFF_BASE * 2.0 ** min(self.failures, 16))
        return wait * (0.5 + random.random() / 2)

    def ok(self) -> None:
        """Record a success: ends the outage, if there was one."""
        if self.failures:
            down = round(time.monotonic() - self._since, 3)
            self.logger.info(f"{self.name}.redis_recovered", extra={"down_seconds": down})
            self.failures = 0
