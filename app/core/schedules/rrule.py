"""RFC 5545 recurrence rules, expanded in naive wall time of their zone.

No rebasing and no iteration from DTSTART: a query computes the FREQ period that holds the
queried time and whether it is in phase with DTSTART (its period index minus DTSTART's is a
multiple of INTERVAL) by arithmetic, then searches forward. Day-level parts are looked up in
per-year masks (:mod:`.calendar`); the search leapfrogs between "the next day that passes" and
"the next period in phase", so a sparse rule costs steps per match found, not per second or
day in between. Every period is the whole period RFC 5545 names (a WEEKLY period is the week
from WKST, also around DTSTART), so BYSETPOS picks the same occurrences wherever a query starts.

Occurrences are absolute seconds ``ordinal * 86400 + second of day``. COUNT is resolved once,
when the rule is built: its last occurrence becomes an upper bound like UNTIL.
"""

import math
from datetime import datetime, timedelta
from typing import ClassVar

from app.core.errors import ScheduleError
from app.core.schedules.base import require_aware
from app.core.schedules.budget import Budget
from app.core.schedules.calendar import DAY, LAST_ORDINAL, DayFilter, month_start
from app.core.schedules.rrule_count import count_last
from app.core.schedules.rrule_text import Freq, RuleSpec
from app.core.schedules.timeset import ListSet, ProductSet, TimeSet, positions
from app.core.schedules.wallclock import GapRule, WallClockSchedule, to_instant
from app.core.status import ScheduleKind

_UNIT = {Freq.HOURLY: 3600, Freq.MINUTELY: 60, Freq.SECONDLY: 1}
#: the most days one period of each coarse FREQ can hold
_MAX_DAYS = {Freq.YEARLY: 366, Freq.MONTHLY: 31, Freq.WEEKLY: 7, Freq.DAILY: 1}
_MEMO_LIMIT = 4096
#: query points a new rule is tried at, spread over its life, to refuse a rule too costly there
PROBES = 8


def abs_seconds(wall: datetime) -> int:
    return wall.toordinal() * DAY + wall.hour * 3600 + wall.minute * 60 + wall.second


def from_abs(seconds: int) -> datetime:
    ordinal, second = divmod(seconds, DAY)
    return datetime.fromordinal(ordinal) + timedelta(seconds=second)


class RRuleSchedule(WallClockSchedule):
    """A parsed rule, ready to answer queries; built with the budget of its validation."""

    kind: ClassVar[ScheduleKind] = ScheduleKind.RRULE
    gap_rule: ClassVar[GapRule] = GapRule.OFFSET_BEFORE

    def __init__(self, spec: RuleSpec, budget: Budget) -> None:
        super().__init__(spec.tz)
        self.spec = spec
        self.last_instant = spec.until_instant
        self.interval = spec.interval
        self.start = abs_seconds(spec.dtstart)
        self.days = _day_filter(spec)
        self.coarse = spec.freq <= Freq.DAILY
        hours, minutes, seconds = _time_parts(spec)
        self.setpos = spec.bysetpos
        if self.coarse:
            self.times: TimeSet = ProductSet((hours, minutes, seconds), (3600, 60, 1))
            self._fold_daily_setpos()
            self.base = self.period_of(spec.dtstart.toordinal())
        else:
            self._build_fine(hours, minutes, seconds)
        self._memo: dict[int, int | None] = {}
        #: the last occurrence allowed (UNTIL, or the COUNT-th), absolute seconds
        self.last: int | None = None if spec.until is None else abs_seconds(spec.until)
        first = None if self._never() else self.search(self.start - 1, None, budget)
        #: the first occurrence, absolute seconds; None when the rule never fires
        self.first_occurrence = None if first is None or first > (self.last or first) else first
        if spec.count is not None and self.first_occurrence is not None:
            self.last = count_last(self, spec.count, budget)

    # -- construction ----------------------------------------------------------------------------

    def _fold_daily_setpos(self) -> None:
        """A DAILY period's candidates are its times of day: BYSETPOS picks a fixed subset.
        For coarser FREQs, a BYSETPOS past the most candidates a period can hold is refused."""
        if self.setpos is None:
            return
        most = self._most_days() * self.times.size
        if self.spec.freq is Freq.DAILY:
            picked = positions(self.setpos, self.times.size)
            if not picked:
                raise self._never_matches(most)
            self.times = ListSet([self.times.kth(i) for i in picked])
            self.setpos = None
        elif min(abs(p) for p in self.setpos) > most:
            raise self._never_matches(most)

    def _most_days(self) -> int:
        """An upper bound on the days one period of a coarse FREQ lets through."""
        days, freq = self.days, self.spec.freq
        bounds = [_MAX_DAYS[freq]]
        weeks = {Freq.YEARLY: 53, Freq.MONTHLY: 5, Freq.WEEKLY: 1, Freq.DAILY: 1}[freq]
        months = {Freq.YEARLY: 12, Freq.MONTHLY: 1, Freq.WEEKLY: 2, Freq.DAILY: 1}[freq]
        if days.weekdays is not None:
            bounds.append(weeks * len(days.weekdays))
        if days.nth is not None:
            bounds.append(len(days.nth) * (months if days.nth_in_month else 1))
        if days.monthdays is not None:
            bounds.append(len(days.monthdays) * months)
        if days.yeardays is not None:
            bounds.append(len(days.yeardays) * (2 if freq is Freq.WEEKLY else 1))
        if days.weeknos is not None:  # and up to 3 days each of the weeks around the year
            bounds.append(7 * len(days.weeknos) + 6)
        return min(bounds)

    def _build_fine(
        self, hours: tuple[int, ...], minutes: tuple[int, ...], seconds: tuple[int, ...]
    ) -> None:
        freq = self.spec.freq
        self.unit = _UNIT[freq]
        self.per_day = DAY // self.unit
        offsets: TimeSet
        if freq is Freq.HOURLY:
            self.slots = ProductSet((hours,), (1,))
            offsets = ProductSet((minutes, seconds), (60, 1))
        elif freq is Freq.MINUTELY:
            self.slots = ProductSet((hours, minutes), (60, 1))
            offsets = ProductSet((seconds,), (1,))
        else:
            self.slots = ProductSet((hours, minutes, seconds), (3600, 60, 1))
            offsets = ListSet([0])
        if self.setpos is not None:
            picked = positions(self.setpos, offsets.size)
            if not picked:
                raise self._never_matches(offsets.size)
            offsets = ListSet([offsets.kth(i) for i in picked])
        self.offsets = offsets
        dt = self.spec.dtstart
        self.base = dt.toordinal() * self.per_day + abs_seconds(dt) % DAY // self.unit

    def _never_matches(self, most: int) -> ScheduleError:
        setpos = ",".join(str(p) for p in self.spec.bysetpos or ())
        return ScheduleError(
            "schedule_expr",
            f"BYSETPOS={setpos} can never match: one {self.spec.freq.name} period of this rule "
            f"holds at most {most} occurrence{'s' if most != 1 else ''}",
        )

    def _never(self) -> bool:
        """Cheap proofs that the rule never fires, where a search would be long: the months or
        the weekdays and times of day that INTERVAL can reach miss every one the rule allows."""
        spec = self.spec
        if spec.freq is Freq.MONTHLY and self.days.months is not None:
            first = spec.dtstart.month - 1
            reachable = {(first + k * self.interval) % 12 + 1 for k in range(12)}
            return not reachable & self.days.months
        if spec.freq is Freq.DAILY:
            if self.days.weekdays is None or self.interval % 7:
                return False
            return (self.base + 6) % 7 not in self.days.weekdays
        if self.coarse:
            return False
        return not self._reachable(self.per_day) or not self._reachable(7 * self.per_day)

    def _reachable(self, cycle: int) -> bool:
        """Whether some allowed slot, on some allowed weekday when ``cycle`` is a week, lies in
        phase: the slots in phase are ``base`` modulo gcd(INTERVAL, cycle), ``cycle`` slots
        long. Unproven (True) when that takes too long to tell."""
        step = math.gcd(self.interval, cycle)
        weekly = cycle > self.per_day
        weekdays = self.days.weekdays if weekly else None
        if cycle // step <= 4096:
            for x in range(self.base % step, cycle, step):
                ordinal, slot = divmod(x, self.per_day)
                if slot in self.slots and (weekdays is None or (ordinal + 6) % 7 in weekdays):
                    return True
            return False
        if self.slots.size * (7 if weekly else 1) > 4096:
            return True
        for k in range(self.slots.size):
            slot = self.slots.kth(k)
            for ordinal in range(7) if weekly else (0,):
                weekday_ok = weekdays is None or (ordinal + 6) % 7 in weekdays
                if weekday_ok and (ordinal * self.per_day + slot - self.base) % step == 0:
                    return True
        return False

    # -- periods (coarse FREQ) ---------------------------------------------------------------------

    def period_of(self, ordinal: int) -> int:
        freq = self.spec.freq
        if freq is Freq.DAILY:
            return ordinal
        if freq is Freq.WEEKLY:
            return (ordinal - self.spec.wkst - 1) // 7
        day = datetime.fromordinal(ordinal)
        return day.year if freq is Freq.YEARLY else day.year * 12 + day.month - 1

    def period_start(self, period: int) -> int | None:
        """The first day of ``period``; None when it begins after year 9999."""
        freq = self.spec.freq
        if freq is Freq.DAILY:
            start = period
        elif freq is Freq.WEEKLY:
            start = 7 * period + self.spec.wkst + 1
        elif freq is Freq.MONTHLY:
            if period // 12 > 9999:
                return None
            start = month_start(period // 12, period % 12 + 1)
        else:
            if period > 9999:
                return None
            start = month_start(period, 1)
        return start if start <= LAST_ORDINAL else None

    def period_end(self, period: int) -> int:
        end = self.period_start(period + 1)
        return LAST_ORDINAL + 1 if end is None else end

    def in_phase_from(self, period: int) -> int:
        """The first period at or after ``period`` whose distance from DTSTART's is a multiple
        of INTERVAL."""
        return period + (self.base - period) % self.interval

    # -- search ------------------------------------------------------------------------------------

    def search(self, lower: int, bound_ord: int | None, budget: Budget) -> int | None:
        """The first occurrence after ``lower`` (absolute seconds); the search stops past the
        day ``bound_ord`` and past the rule's last day, but may return an occurrence later on
        that day than the last allowed."""
        lower = max(lower, self.start - 1)
        if self.last is not None:
            last_ord = self.last // DAY
            bound_ord = last_ord if bound_ord is None else min(bound_ord, last_ord)
        if self.coarse:
            return self._coarse_next(lower, bound_ord, budget)
        return self._fine_next(lower, bound_ord, budget)

    def _coarse_next(self, lower: int, bound_ord: int | None, budget: Budget) -> int | None:
        low_ord = lower // DAY
        period = self.in_phase_from(self.period_of(low_ord))
        while True:
            budget.spend()
            start = self.period_start(period)
            if start is None:
                return None
            day = self.days.next_day(max(start, low_ord), budget)
            if day is None or (bound_ord is not None and day > bound_ord):
                return None
            holder = self.period_of(day)
            if holder != period:
                period = self.in_phase_from(holder)
                continue
            found = self._in_period(period, start, lower, day, budget)
            if found is not None:
                return found
            period += self.interval

    def _in_period(
        self, period: int, start: int, lower: int, day: int, budget: Budget
    ) -> int | None:
        """The first occurrence after ``lower`` in an in-phase period; ``day`` its first day at
        or after ``lower``'s that passes."""
        end = self.period_end(period)
        times = self.times
        if self.setpos is not None:
            days = self.days.days_between(start, end, budget)
            for k in positions(self.setpos, len(days) * times.size):
                found = days[k // times.size] * DAY + times.kth(k % times.size)
                if found > lower:
                    return found
            return None
        low_ord, low_second = divmod(lower, DAY)
        current: int | None = day
        while current is not None and current < end:
            budget.spend()
            second = times.next_ge(low_second + 1) if current == low_ord else times.first()
            if second is not None:
                return current * DAY + second
            current = self.days.next_day(current + 1, budget)
        return None

    def _fine_next(self, lower: int, bound_ord: int | None, budget: Budget) -> int | None:
        low_ord, low_second = divmod(lower, DAY)
        day = self.days.next_day(low_ord, budget)
        while day is not None and (bound_ord is None or day <= bound_ord):
            budget.spend()
            phase = self.phase(day)
            if day == low_ord:
                second = self._in_day_after(phase, low_second, budget)
            else:
                second = self._in_day_first(phase, budget)
            if second is not None:
                return day * DAY + second
            day = self.days.next_day(day + 1, budget)
        return None

    def phase(self, day: int) -> int:
        """The residue, modulo INTERVAL, of the periods of ``day`` that are in phase."""
        return (self.base - day * self.per_day) % self.interval

    def _in_day_after(self, phase: int, second: int, budget: Budget) -> int | None:
        slot = second // self.unit
        if slot in self.slots and (slot - phase) % self.interval == 0:
            offset = self.offsets.next_ge(second - slot * self.unit + 1)
            if offset is not None:
                return slot * self.unit + offset
        found = self.next_slot(phase, slot + 1, budget)
        return None if found is None else found * self.unit + self.offsets.first()

    def _in_day_first(self, phase: int, budget: Budget) -> int | None:
        if phase in self._memo:
            found = self._memo[phase]
        else:
            found = self.next_slot(phase, 0, budget)
            if len(self._memo) < _MEMO_LIMIT:
                self._memo[phase] = found
        return None if found is None else found * self.unit + self.offsets.first()

    def next_slot(self, phase: int, start: int, budget: Budget) -> int | None:
        """The first slot (period of the day) at or after ``start`` that the rule allows and
        that is in phase; by stepping whichever of the two is sparser."""
        interval, per_day, slots = self.interval, self.per_day, self.slots
        if start >= per_day:
            return None
        if (per_day - start) // interval < slots.size:
            slot = start + (phase - start) % interval
            while slot < per_day:
                budget.spend()
                if slot in slots:
                    return slot
                slot += interval
            return None
        found = slots.next_ge(start)
        while found is not None:
            budget.spend()
            if (found - phase) % interval == 0:
                return found
            found = slots.next_ge(found + 1)
        return None

    # -- the schedule ------------------------------------------------------------------------------

    def _next_wall(
        self, after: datetime, bound: datetime | None, budget: Budget
    ) -> datetime | None:
        if self.first_occurrence is None:
            return None
        lower = abs_seconds(after)
        if self.last is not None and lower >= self.last:
            return None
        found = self.search(lower, None if bound is None else bound.toordinal(), budget)
        if found is None or (self.last is not None and found > self.last):
            return None
        return from_abs(found)

    def first(self, now: datetime, budget: Budget | None = None) -> datetime | None:
        """The first occurrence after ``now``; DTSTART itself when ``now`` is within its second
        (a rule without DTSTART starts at the task's creation, which counts if it matches)."""
        require_aware(now, "now")
        try:
            start, _ = to_instant(self.spec.dtstart, self.tz, self.gap_rule)
        except OverflowError:
            return self.next_after(now, budget)
        if start <= now < start + timedelta(seconds=1):
            now = start - timedelta(microseconds=1)
        return self.next_after(now, budget)

    def probe(self, budget: Budget) -> None:
        """Search from points spread over the rule's life, so that a rule whose next occurrence
        is too costly to find somewhere is refused now rather than when it gets there."""
        if self.first_occurrence is None:
            return
        low = self.first_occurrence
        high = self.last if self.last is not None else LAST_ORDINAL * DAY
        for i in range(PROBES + 1):
            point = low + (high - low) * i // PROBES
            self.search(point, None, budget)


def _day_filter(spec: RuleSpec) -> DayFilter:
    """The day-level parts, with RFC 5545's defaults from DTSTART when the rule gives none."""
    months, monthdays, weekdays = spec.bymonth, spec.bymonthday, spec.byweekday
    if not (spec.byweekno or spec.byyearday or monthdays or weekdays or spec.bynweekday):
        if spec.freq is Freq.YEARLY:
            months = months or (spec.dtstart.month,)
            monthdays = (spec.dtstart.day,)
        elif spec.freq is Freq.MONTHLY:
            monthdays = (spec.dtstart.day,)
        elif spec.freq is Freq.WEEKLY:
            weekdays = (spec.dtstart.weekday(),)
    return DayFilter(
        months=months,
        weeknos=spec.byweekno,
        yeardays=spec.byyearday,
        monthdays=monthdays,
        weekdays=weekdays,
        nth_weekdays=spec.bynweekday,
        nth_in_month=spec.freq is Freq.MONTHLY
        or (spec.freq is Freq.YEARLY and spec.bymonth is not None),
        wkst=spec.wkst,
    )


def _time_parts(spec: RuleSpec) -> tuple[tuple[int, ...], tuple[int, ...], tuple[int, ...]]:
    """BYHOUR/BYMINUTE/BYSECOND, or DTSTART's value for parts finer than FREQ, or every value."""
    dt = spec.dtstart
    hours = spec.byhour or ((dt.hour,) if spec.freq < Freq.HOURLY else tuple(range(24)))
    minutes = spec.byminute or ((dt.minute,) if spec.freq < Freq.MINUTELY else tuple(range(60)))
    seconds = spec.bysecond or ((dt.second,) if spec.freq < Freq.SECONDLY else tuple(range(60)))
    return hours, minutes, seconds
