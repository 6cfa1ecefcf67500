"""Wall clocks and instants: cron and rrule are evaluated on the local wall clock of their zone,
then each wall time becomes an instant.

A wall time that exists twice (fall back) fires once, at its first instance. This applies
uniformly: during the repeated hour an hourly cron does not fire again for wall times it already
fired in the first pass. A wall time that does not exist (spring forward) follows the kind's
:class:`GapRule`: cron fires at the first instant after the gap (several wall times of one gap
collapse into one run); rrule and once read it with the offset before the gap (RFC 5545 section
3.3.5: 02:30 on the spring-forward night is 03:30 new time).
"""

import enum
import heapq
import math
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from typing import ClassVar
from zoneinfo import ZoneInfo

from app.core.schedules.base import require_aware
from app.core.schedules.budget import Budget
from app.core.status import ScheduleKind

_ONE_MICROSECOND = timedelta(microseconds=1)
#: Longer than any jump of a zone's offset in the tz database (Pacific/Apia skipped a day).
_MAX_GAP = timedelta(hours=25)
#: Zones of the tz database that are UTC at every instant (UTC and its links, GMT and its
#: links): their wall clock is the UTC clock, with no gap or repeat to search around.
UTC_ZONES = frozenset(
    {
        "UTC", "Etc/UTC", "Etc/UCT", "UCT", "Etc/Universal", "Universal", "Etc/Zulu", "Zulu",
        "GMT", "Etc/GMT", "Etc/GMT0", "Etc/GMT+0", "Etc/GMT-0", "GMT0", "GMT+0", "GMT-0",
        "Etc/Greenwich", "Greenwich",
    }
)  # fmt: skip


class GapRule(enum.Enum):
    """Where a wall time inside a spring-forward gap fires."""

    #: the first instant after the gap (cron, as cronie does)
    AFTER_GAP = "after_gap"
    #: the wall time read with the offset before the gap (RFC 5545 section 3.3.5)
    OFFSET_BEFORE = "offset_before"


def _offset_at(seconds: int, tz: ZoneInfo) -> timedelta | None:
    return datetime.fromtimestamp(seconds, UTC).astimezone(tz).utcoffset()


def _transition(tz: ZoneInfo, lo: datetime, hi: datetime) -> datetime:
    """The instant in ``(lo, hi]`` where ``tz`` switches to the offset it has at ``hi``."""
    lo_s, hi_s = math.floor(lo.timestamp()), math.ceil(hi.timestamp())
    target = _offset_at(hi_s, tz)
    while hi_s - lo_s > 1:
        mid = (lo_s + hi_s) // 2
        if _offset_at(mid, tz) == target:
            hi_s = mid
        else:
            lo_s = mid
    return datetime.fromtimestamp(hi_s, UTC)


def to_instant(wall: datetime, tz: ZoneInfo, rule: GapRule) -> tuple[datetime, bool]:
    """The UTC instant a naive wall time fires at, and whether that wall time exists.

    A repeated wall time takes its first instance (fold=0). For a missing one, fold=0 applies
    the offset from before the gap, which is :attr:`GapRule.OFFSET_BEFORE`; fold=1 the offset
    after it, so the gap's end lies between the two readings.
    """
    instant = wall.replace(tzinfo=tz).astimezone(UTC)
    if instant.astimezone(tz).replace(tzinfo=None) == wall:
        return instant, True
    if rule is GapRule.OFFSET_BEFORE:
        return instant, False
    other = wall.replace(tzinfo=tz, fold=1).astimezone(UTC)
    return _transition(tz, min(instant, other), max(instant, other)), False


def wall_threshold(t: datetime, tz: ZoneInfo) -> datetime:
    """The latest wall time whose instant is at or before ``t`` (gaps aside).

    Existing wall times map to instants monotonically, so "existing wall times firing after
    ``t``" is exactly "wall times after this threshold".
    """
    local = t.astimezone(tz)
    wall = local.replace(tzinfo=None)
    if local.fold == 0:
        return wall
    first_offset = local.replace(fold=0).utcoffset()
    second_offset = local.utcoffset()
    if first_offset is None or second_offset is None or first_offset == second_offset:
        return wall
    # ``t`` is in the second pass of a repeated hour: every wall time of that hour already
    # fired in the first pass, so the threshold is the end of the repeated hour.
    utc = t.astimezone(UTC)
    switch = _transition(tz, utc - (first_offset - second_offset), utc)
    return (switch + first_offset).replace(tzinfo=None) - _ONE_MICROSECOND


def gap_shadow(t: datetime, tz: ZoneInfo) -> timedelta:
    """How long a spring-forward gap just before ``t`` is, if its wall times fire after ``t``.

    Under :attr:`GapRule.OFFSET_BEFORE` a wall time in a gap of length d fires at the instant of
    the wall time d later, so for d after the gap ends, wall times up to d before the threshold
    of ``t`` still fire after ``t``.
    """
    try:
        now_offset = t.astimezone(tz).utcoffset()
        before_offset = (t - _MAX_GAP).astimezone(tz).utcoffset()
    except OverflowError:
        return timedelta(0)
    if now_offset is None or before_offset is None or now_offset <= before_offset:
        return timedelta(0)
    utc = t.astimezone(UTC)
    switch = _transition(tz, utc - _MAX_GAP, utc)
    old = (switch - timedelta(seconds=1)).astimezone(tz).utcoffset()
    if old is None:
        return timedelta(0)
    gap = now_offset - old
    return gap if gap > timedelta(0) and utc < switch + gap else timedelta(0)


class WallClockSchedule:
    """Shared logic of cron and rrule: search wall times, turn them into UTC instants."""

    kind: ClassVar[ScheduleKind]
    gap_rule: ClassVar[GapRule]

    def __init__(self, tz: ZoneInfo) -> None:
        self.tz = tz
        #: the last instant that may fire (an rrule's UNTIL given in UTC), if any
        self.last_instant: datetime | None = None
        #: the zone's wall clock is UTC's: a wall time is its instant (see :meth:`_fired`)
        self._utc = getattr(tz, "key", None) in UTC_ZONES

    def _next_wall(
        self, after: datetime, bound: datetime | None, budget: Budget
    ) -> datetime | None:
        """The first wall time strictly after ``after``; None when none is left (or none is at
        or before ``bound``, when given)."""
        raise NotImplementedError

    def _instants_after(
        self, t: datetime, end: datetime | None, budget: Budget
    ) -> Iterator[datetime]:
        """Instants strictly after ``t``, ascending, each once."""
        for instant in _in_order(self._fired(t, end, budget), t):
            if self.last_instant is not None and instant > self.last_instant:
                return
            yield instant

    def _fired(
        self, t: datetime, end: datetime | None, budget: Budget
    ) -> Iterator[tuple[datetime, bool]]:
        """(instant, wall time exists) for each wall time that may fire after ``t``, in wall
        order; a gap's wall times may fire out of instant order."""
        if self._utc:
            yield from self._fired_utc(t, end, budget)
            return
        # Near year 9999 a wall time and its instant may lie on opposite sides of the end of
        # the calendar: what cannot be represented never occurs, so the walk ends there.
        try:
            wall = wall_threshold(t, self.tz)
            if self.gap_rule is GapRule.OFFSET_BEFORE:
                wall -= gap_shadow(t, self.tz)
        except OverflowError:
            return
        try:
            bound = None if end is None else wall_threshold(end, self.tz)
        except OverflowError:
            bound = None
        yield from self._walk(wall, bound, budget, self._instant)

    def _instant(self, wall: datetime) -> tuple[datetime, bool]:
        return to_instant(wall, self.tz, self.gap_rule)

    def _walk(
        self,
        wall: datetime,
        bound: datetime | None,
        budget: Budget,
        instant: Callable[[datetime], tuple[datetime, bool]],
    ) -> Iterator[tuple[datetime, bool]]:
        """``instant`` of each wall time after ``wall`` (up to ``bound``), in wall order; the
        walk ends where an instant cannot be represented."""
        while True:
            found = self._next_wall(wall, bound, budget)
            if found is None:
                return
            wall = found
            try:
                yield instant(wall)
            except OverflowError:
                return

    def _fired_utc(
        self, t: datetime, end: datetime | None, budget: Budget
    ) -> Iterator[tuple[datetime, bool]]:
        """:meth:`_fired` in a zone whose wall clock is UTC's: every wall time exists once,
        at the instant that reads the same, so the thresholds and instants are the UTC times
        themselves (what :func:`wall_threshold` and :func:`to_instant` give for such a zone,
        without their conversions)."""
        try:
            wall = t.astimezone(UTC).replace(tzinfo=None)
        except OverflowError:
            return
        try:
            bound = None if end is None else end.astimezone(UTC).replace(tzinfo=None)
        except OverflowError:
            bound = None
        yield from self._walk(wall, bound, budget, _utc_instant)

    def first(self, now: datetime, budget: Budget | None = None) -> datetime | None:
        return self.next_after(now, budget)

    def next_after(self, t: datetime, budget: Budget | None = None) -> datetime | None:
        require_aware(t, "t")
        if self._utc:
            # the first of _fired_utc, without the generators that order gap wall times
            try:
                wall = t.astimezone(UTC).replace(tzinfo=None)
            except OverflowError:
                return None
            found = self._next_wall(wall, None, budget or Budget())
            if found is None:
                return None
            instant = found.replace(tzinfo=UTC)
            if self.last_instant is not None and instant > self.last_instant:
                return None
            return instant
        return next(self._instants_after(t, None, budget or Budget()), None)

    def between(
        self, start: datetime, end: datetime, limit: int, budget: Budget | None = None
    ) -> list[datetime]:
        require_aware(start, "start")
        require_aware(end, "end")
        found: list[datetime] = []
        if limit <= 0 or end <= start:
            return found
        for instant in self._instants_after(start, end, budget or Budget()):
            if instant > end:
                break
            found.append(instant)
            if len(found) >= limit:
                break
        return found


def _in_order(fired: Iterator[tuple[datetime, bool]], after: datetime) -> Iterator[datetime]:
    """The instants after ``after`` in ascending order, each once.

    Existing wall times fire in order, and every wall time after an existing one fires after
    it; only gap wall times may fire early, so they wait in a heap until an existing wall
    time's instant passes them.
    """
    pending: list[datetime] = []
    last = after
    for instant, exists in fired:
        if not exists:
            heapq.heappush(pending, instant)
            continue
        while pending and pending[0] <= instant:
            early = heapq.heappop(pending)
            if early > last:
                yield early
                last = early
        if instant > last:
            yield instant
            last = instant
    for early in sorted(pending):
        if early > last:
            yield early
            last = early


def _utc_instant(wall: datetime) -> tuple[datetime, bool]:
    """The instant of a wall time of UTC's clock: the same reading; it always exists."""
    return wall.replace(tzinfo=UTC), True
