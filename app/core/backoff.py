"""The delay before a retry, as the contract defines it (pure: the random source is injected).

With base ``b`` and cap ``c``, before retry ``n`` (1, 2, ...): ``fixed`` b; ``linear`` b*n;
``exponential_jitter`` uniform(0, min(c, b*2^(n-1))) ("full jitter", so retries of many runs
that failed together spread out instead of hitting a recovering service at once). Every delay is
capped at c.
"""

import random
from collections.abc import Callable

from app.core.status import BackoffStrategy

#: beyond this exponent b*2^(n-1) exceeds any cap a task may set (86400 s)
_MAX_EXPONENT = 40


def retry_delay(
    strategy: str,
    n: int,
    base: float,
    cap: float,
    rand: Callable[[], float] = random.random,
) -> float:
    """Seconds to wait before retry ``n``; ``rand`` returns a float in [0, 1)."""
    if n < 1:
        raise ValueError(f"retry number starts at 1, got {n}")
    if strategy == BackoffStrategy.FIXED:
        delay = base
    elif strategy == BackoffStrategy.LINEAR:
        delay = base * n
    elif strategy == BackoffStrategy.EXPONENTIAL_JITTER:
        delay = rand() * min(cap, base * 2.0 ** min(n - 1, _MAX_EXPONENT))
    else:
        raise ValueError(f"unknown backoff strategy {strategy!r}")
    return max(0.0, min(delay, cap))
