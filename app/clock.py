"""The one place Chime reads the clock.

Lua scripts take ``now`` as an argument and everything else calls :func:`now_ms`, so tests move
time by shifting this clock instead of sleeping (misfire after an outage, snoozes, leases).

Every process that decides something another process relies on (due times, claims, leases,
hand-overs, retry release) runs on Redis server time: it is anchored once at start and again
every little while (``app/store/servertime.py``), and between anchors it advances with the
monotonic clock. So a machine whose wall clock runs ahead or behind neither fires a task early
nor expires another worker's lease. A process that was never anchored (a test, a one-shot
command) reads its own wall clock.
"""

import os
import time
from datetime import UTC, datetime, timedelta

_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
#: the same instant without a zone, for :func:`iso`
_NAIVE_EPOCH = datetime(1970, 1, 1)
_ONE_MS = timedelta(milliseconds=1)
#: the last millisecond a datetime can hold (9999-12-31T23:59:59.999Z): no time may pass it
MAX_MS = (datetime.max.replace(tzinfo=UTC) - _EPOCH) // _ONE_MS

#: tests only: how far this process's own wall clock is off (a machine with a skewed clock)
SKEW_ENV = "CHIME_TEST_CLOCK_SKEW_MS"

_offset_ms = 0
#: (server ms, monotonic ns) of the last anchor; None: not anchored
_anchor: tuple[int, int] | None = None


def now_ms() -> int:
    """Milliseconds since the epoch (server time when anchored), plus the test offset."""
    anchored = _anchor
    if anchored is not None:
        server_ms, mono_ns = anchored
        return server_ms + (time.monotonic_ns() - mono_ns) // 1_000_000 + _offset_ms
    return wall_ms() + _offset_ms


def wall_ms() -> int:
    """This machine's own wall clock, in milliseconds."""
    return time.time_ns() // 1_000_000 + _skew_ms


def anchor(server_ms: int, at_monotonic_ns: int) -> None:
    """From now on, count time from ``server_ms``, read at ``at_monotonic_ns``."""
    global _anchor
    _anchor = (server_ms, at_monotonic_ns)


def unanchor() -> None:
    global _anchor
    _anchor = None


def anchored() -> bool:
    return _anchor is not None


def now() -> datetime:
    """The current instant as an aware UTC datetime."""
    return from_ms(now_ms())


def shift(ms: int) -> None:
    """Move the clock by ``ms`` (tests only: the wall does not move)."""
    global _offset_ms
    _offset_ms += ms


def reset() -> None:
    """Put the clock back on the wall."""
    global _offset_ms
    _offset_ms = 0


def _skew_from_env() -> int:
    raw = os.environ.get(SKEW_ENV, "")
    try:
        return int(raw) if raw else 0
    except ValueError:
        return 0


_skew_ms = _skew_from_env()


def from_ms(ms: int) -> datetime:
    return _EPOCH + ms * _ONE_MS


def to_ms(dt: datetime) -> int:
    """Whole milliseconds since the epoch, rounded down exactly (a float product could round
    9999-12-31T23:59:59.9999Z up into year 10000, which no datetime can show)."""
    return (dt - _EPOCH) // _ONE_MS


def ms(seconds: float) -> int:
    """A duration in seconds as whole milliseconds, rounded to the nearest: the one rule for
    every duration Chime hands Redis or stores (settings, delays, leases, TTLs)."""
    return round(seconds * 1000)


def iso(ms: int | None) -> str | None:
    """RFC 3339 in UTC with a ``Z`` suffix, as every response gives timestamps."""
    if ms is None:
        return None
    # a naive datetime shows no offset to replace: the same text, for a third less of the time
    return (_NAIVE_EPOCH + ms * _ONE_MS).isoformat(timespec="milliseconds") + "Z"
