"""Keep this process's clock on Redis server time (see ``app/clock.py``).

:func:`keep_anchored` reads ``TIME`` once (the anchor takes the middle of the round trip) and
again every :data:`REANCHOR_SECONDS` from a daemon thread. A failed read keeps the previous
anchor: between reads the clock runs on the monotonic clock, which a wall-clock jump or a skewed
machine does not move.
"""

import logging
import threading
import time

import redis

from app import clock
from app.store import connection

logger = logging.getLogger("chime.clock")

#: how often the anchor is read again
REANCHOR_SECONDS = 30.0


def anchor_once(client: redis.Redis) -> int:
    """Anchor the clock on ``client``'s server; returns how far the wall clock is off (ms)."""
    before = time.monotonic_ns()
    seconds, micros = client.time()
    after = time.monotonic_ns()
    server_ms = int(seconds) * 1000 + int(micros) // 1000
    clock.anchor(server_ms, (before + after) // 2)
    return clock.wall_ms() - server_ms


def keep_anchored(url: str) -> threading.Thread:
    """Anchor now (raises :class:`redis.RedisError` if Redis does not answer), then keep the
    anchor fresh from a daemon thread for the life of the process."""
    client = connection.client(url, socket_timeout=2.0, retries=1)
    skew = anchor_once(client)
    if abs(skew) > 1000:
        logger.warning("clock.skewed", extra={"wall_minus_redis_ms": skew})

    def refresh() -> None:
        while True:
            time.sleep(REANCHOR_SECONDS)
            try:
                anchor_once(client)
            except redis.RedisError:
                continue

    thread = threading.Thread(target=refresh, name="chime-clock", daemon=True)
    thread.start()
    return thread
