"""The one place Chime reads the clock.

Lua scripts take ``now`` as an argument and everything else calls :func:`now_ms`, so tests move
time by shifting this clock instead of sleeping (misfire after an outage, snoozes, leases).
"""

import time
from datetime import UTC, datetime

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
    return datetime.fromtimestamp(ms / 1000, UTC)


def to_ms(dt: datetime) -> int:
    return int(dt.timestamp() * 1000)


def iso(ms: int | None) -> str | None:
    """RFC 3339 in UTC with a ``Z`` suffix, as every response gives timestamps."""
    if ms is None:
        return None
    return from_ms(ms).isoformat(timespec="milliseconds").replace("+00:00", "Z")
