"""Sorted sets of times of day (or of periods of a day), searched without being listed.

Cron's seconds of the day are hours x minutes x seconds; an rrule's are its BYHOUR x BYMINUTE x
BYSECOND. Listing every combination could take 86,400 entries per schedule, so a
:class:`ProductSet` keeps the components and answers with bisection and mixed-radix arithmetic.
"""

import bisect
import math
from collections.abc import Sequence
from typing import Protocol


def positions(setpos: Sequence[int], n: int) -> list[int]:
    """The 0-based indexes BYSETPOS picks from a sorted set of ``n``, ascending."""
    return sorted({p - 1 if p > 0 else n + p for p in setpos if abs(p) <= n})


class TimeSet(Protocol):
    """A finite sorted set of non-negative integers."""

    size: int

    def __contains__(self, x: int) -> bool: ...

    def first(self) -> int: ...

    def next_ge(self, x: int) -> int | None:
        """The smallest member >= ``x``."""
        ...

    def kth(self, k: int) -> int:
        """The member at index ``k`` (0-based) in ascending order."""
        ...

    def rank(self, x: int) -> int:
        """How many members are < ``x``."""
        ...


class ProductSet:
    """Every ``sum(part_i * weight_i)``, one value from each part; parts in ``[0, radix_i)``.

    ``weights`` must be mixed-radix place values: ``weights[i] = weights[i + 1] * radix[i + 1]``
    with the last weight 1 (hours, minutes, seconds: 3600, 60, 1).
    """

    def __init__(self, parts: Sequence[Sequence[int]], weights: Sequence[int]) -> None:
        self.parts = tuple(tuple(sorted(set(p))) for p in parts)
        self.sets = tuple(frozenset(p) for p in self.parts)
        self.weights = tuple(weights)
        self.size = math.prod(len(p) for p in self.parts)
        if self.size == 0:
            raise ValueError("every part needs a value")
        #: the size of the suffix after each level, for ranks and indexes
        self._tails = tuple(
            math.prod(len(p) for p in self.parts[i + 1 :]) for i in range(len(self.parts))
        )
        self._first = sum(p[0] * w for p, w in zip(self.parts, self.weights, strict=True))

    def _digits(self, x: int) -> list[int]:
        digits = []
        for w in self.weights:
            q, x = divmod(x, w)
            digits.append(q)
        return digits

    def __contains__(self, x: int) -> bool:
        if x < 0:
            return False
        return all(d in s for d, s in zip(self._digits(x), self.sets, strict=True))

    def first(self) -> int:
        return self._first

    def next_ge(self, x: int) -> int | None:
        if x <= self._first:
            return self._first
        return self._next_ge(0, self._digits(x))

    def _next_ge(self, level: int, digits: list[int]) -> int | None:
        part = self.parts[level]
        i = bisect.bisect_left(part, digits[level])
        if i < len(part) and part[i] == digits[level]:
            if level + 1 == len(self.parts):
                return part[i] * self.weights[level]
            deeper = self._next_ge(level + 1, digits)
            if deeper is not None:
                return part[i] * self.weights[level] + deeper
            i += 1
        if i == len(part):
            return None
        below = zip(self.parts[level + 1 :], self.weights[level + 1 :], strict=True)
        rest = sum(p[0] * w for p, w in below)
        return part[i] * self.weights[level] + rest

    def kth(self, k: int) -> int:
        total = 0
        for part, weight, tail in zip(self.parts, self.weights, self._tails, strict=True):
            i, k = divmod(k, tail)
            total += part[i] * weight
        return total

    def rank(self, x: int) -> int:
        if x <= self._first:
            return 0
        count = 0
        digits = self._digits(x)
        for part, tail, d, s in zip(self.parts, self._tails, digits, self.sets, strict=True):
            count += bisect.bisect_left(part, d) * tail
            if d not in s:
                return count
        return count


class ListSet:
    """An explicit sorted set (an rrule's times of day after BYSETPOS picked some)."""

    def __init__(self, values: Sequence[int]) -> None:
        self.values = tuple(sorted(set(values)))
        self.size = len(self.values)
        if self.size == 0:
            raise ValueError("a time set needs a value")
        self._set = frozenset(self.values)

    def __contains__(self, x: int) -> bool:
        return x in self._set

    def first(self) -> int:
        return self.values[0]

    def next_ge(self, x: int) -> int | None:
        i = bisect.bisect_left(self.values, x)
        return self.values[i] if i < self.size else None

    def kth(self, k: int) -> int:
        return self.values[k]

    def rank(self, x: int) -> int:
        return bisect.bisect_left(self.values, x)


class StepSet:
    """``start, start + step, ...`` below ``end``: the in-phase periods of a day when the rule
    allows every period."""

    def __init__(self, start: int, step: int, end: int) -> None:
        self.start = start
        self.step = step
        self.size = max(0, -(-(end - start) // step))
        if self.size == 0:
            raise ValueError("a time set needs a value")

    def __contains__(self, x: int) -> bool:
        return x >= self.start and (x - self.start) % self.step == 0 and self.rank(x) < self.size

    def first(self) -> int:
        return self.start

    def next_ge(self, x: int) -> int | None:
        k = self.rank(x)
        return self.kth(k) if k < self.size else None

    def kth(self, k: int) -> int:
        return self.start + k * self.step

    def rank(self, x: int) -> int:
        return min(self.size, max(0, -(-(x - self.start) // self.step)))
