"""Keep this process's clock on Redis server time (see ``app/clock.py``).

:func:`keep_anchored` anchors the clock at start and again every :data:`REANCHOR_SECONDS`
from a daemon thread. An anchor reads ``TIME`` a few times on a connection already open and
keeps the sample with the shortest round trip, taking the middle of it: the server's answer
was read somewhere in that round trip, so the anchor is off by at most half of it. A sample
that waited (a dropped connection retried, a busy process that read the reply late) has a long
round trip and is not used. A new anchor replaces the one in use only when it is about as
precise, or when the one in use is old; a failed read keeps the previous anchor. Between
anchors the clock runs on the monotonic clock, which a wall-clock jump or a skewed machine
does not move.
"""

import logging
import threading
import time
from dataclasses import dataclass

import redis

from app import clock
from app.store import connection

logger = logging.getLogger("chime.clock")

#: how often the anchor is read again
REANCHOR_SECONDS = 30.0
#: ``TIME`` reads per anchor; the one with the shortest round trip is kept
SAMPLES = 5
#: an anchor this old (seconds) is replaced by the next one, however precise
MAX_ANCHOR_AGE_SECONDS = 600.0


@dataclass(frozen=True)
class Sample:
    """One ``TIME`` read: the server's ms, the monotonic ns of the middle of its round trip,
    and the round trip (ns)."""

    server_ms: int
    middle_ns: int
    round_trip_ns: int


def read_time(client: redis.Redis, samples: int = SAMPLES) -> Sample:
    """The most precise of ``samples`` reads of the server's ``TIME``."""
    client.ping()  # the connection is open: the round trips below are TIME alone
    best: Sample | None = None
    for _ in range(max(1, samples)):
        before = time.monotonic_ns()
        seconds, micros = client.time()
        after = time.monotonic_ns()
        sample = Sample(
            int(seconds) * 1000 + int(micros) // 1000, (before + after) // 2, after - before
        )
        if best is None or sample.round_trip_ns < best.round_trip_ns:
            best = sample
    assert best is not None
    return best


class Anchor:
    """The anchor in use and how precise it was."""

    def __init__(self) -> None:
        self.current: Sample | None = None

    def offer(self, sample: Sample) -> bool:
        """Use ``sample`` if it is about as precise as the anchor in use (or that one is old);
        returns whether it is used."""
        current = self.current
        if current is not None:
            age = (sample.middle_ns - current.middle_ns) / 1e9
            precise = sample.round_trip_ns <= 2 * current.round_trip_ns + 1_000_000
            if not precise and age < MAX_ANCHOR_AGE_SECONDS:
                return False
        self.current = sample
        clock.anchor(sample.server_ms, sample.middle_ns)
        return True


def anchor_once(client: redis.Redis, anchor: Anchor | None = None) -> int:
    """Anchor the clock on ``client``'s server; returns how far the wall clock is off (ms)."""
    sample = read_time(client)
    (anchor or Anchor()).offer(sample)
    return clock.wall_ms() - sample.server_ms


def keep_anchored(url: str) -> threading.Thread:
    """Anchor now (raises :class:`redis.RedisError` if Redis does not answer), then keep the
    anchor fresh from a daemon thread for the life of the process."""
    client = connection.client(url, socket_timeout=2.0, retries=1)
    anchor = Anchor()
    skew = anchor_once(client, anchor)
    if abs(skew) > 1000:
        logger.warning("clock.skewed", extra={"wall_minus_redis_ms": skew})

    def refresh() -> None:
        while True:
            time.sleep(REANCHOR_SECONDS)
            try:
                anchor_once(client, anchor)
            except redis.RedisError:
                continue

    thread = threading.Thread(target=refresh, name="chime-clock", daemon=True)
    thread.start()
    return thread
