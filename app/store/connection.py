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

from typing import Any

import redis
import redis.asyncio
from redis.asyncio.retry import Retry as AsyncRetry
from redis.backoff import ExponentialWithJitterBackoff
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import TimeoutError as RedisTimeoutError
from redis.retry import Retry

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
) -> "redis.asyncio.Redis":
    """An asyncio client (``str`` replies unless ``decode=False``)."""
    options = _options(socket_timeout, connect_timeout, retries)
    options["retry"] = AsyncRetry(
        ExponentialWithJitterBackoff(cap=BACKOFF_CAP, base=BACKOFF_BASE),
        retries,
        supported_errors=(RedisConnectionError, RedisTimeoutError),
    )
    return redis.asyncio.Redis.from_url(url, decode_responses=decode, **options)


def ping(url: str, timeout: float = CONNECT_TIMEOUT) -> None:
    """PING once, without retries; raises :class:`redis.RedisError` when Redis does not answer."""
    with client(url, socket_timeout=timeout, connect_timeout=timeout, retries=0) as c:
        c.ping()
