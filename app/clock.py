"""The one place Chime reads the clock.

Lua scripts take ``now`` as an argument and everything else calls :func:`now_ms`, so tests move
time by shifting this clock instead of sleeping (misfire after an outage, snoozes, leases).
"""

import time
from datetime import UTC, datetime, timedelta

_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_ONE_MS = timedelta(milliseconds=1)
#: the last millisecond a datetime can hold (9999-12-31T23:59:59.999Z): no time may pass it
MAX_MS = (datetime.max.replace(tzinfo=UTC) - _EPOCH) // _ONE_MS

_offset_ms = 0


def now_ms() -> int:
    """Milliseconds since the epoch, plus the test offset."""
    return time.time_ns() // 1_000_000 + _offset_ms


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


def from_ms(ms: int) -> datetime:
    return _EPOCH + ms * _ONE_MS


def to_ms(dt: datetime) -> int:
    """Whole milliseconds since the epoch, rounded down exactly (a float product could round
    9999-12-31T23:59:59.9999Z up into year 10000, which no datetime can show)."""
    return (dt - _EPOCH) // _ONE_MS


def iso(ms: int | None) -> str | None:
    """RFC 3339 in UTC with a ``Z`` suffix, as every response gives timestamps."""
    if ms is None:
        return None
    return from_ms(ms).isoformat(timespec="milliseconds").replace("+00:00", "Z")
