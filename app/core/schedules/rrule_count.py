"""COUNT: the rule's COUNT-th occurrence, found once when the rule is built.

Never one occurrence at a time. Where every in-phase period is alike (DAILY or sub-daily rules
that keep every day and period, WEEKLY rules limited by weekdays alone) it is arithmetic. Where
every passing day fires at the same times of day (INTERVAL 1 without BYSETPOS, or a sub-daily
FREQ whose INTERVAL divides the day), a whole year counts at one step. Otherwise occurrences are
counted per period (coarse FREQ) or per day (sub-daily).
"""

from collections.abc import Sequence
from typing import TYPE_CHECKING

from app.core.schedules.budget import Budget
from app.core.schedules.calendar import DAY, LAST_ORDINAL
from app.core.schedules.timeset import ListSet, StepSet, TimeSet, positions

if TYPE_CHECKING:
    from app.core.schedules.rrule import RRuleSchedule

_MEMO_LIMIT = 4096


class DaySlots:
    """The seconds of one day a sub-daily rule fires at: in-phase slots x offsets."""

    def __init__(self, slots: TimeSet, offsets: TimeSet, unit: int) -> None:
        self.slots = slots
        self.offsets = offsets
        self.unit = unit
        self.size = slots.size * offsets.size

    def kth(self, k: int) -> int:
        slot, offset = divmod(k, self.offsets.size)
        return self.slots.kth(slot) * self.unit + self.offsets.kth(offset)

    def rank(self, x: int) -> int:
        slot, rest = divmod(x, self.unit)
        below = self.slots.rank(slot) * self.offsets.size
        return below + (self.offsets.rank(rest) if slot in self.slots else 0)


def count_last(rule: "RRuleSchedule", count: int, budget: Budget) -> int | None:
    """The COUNT-th occurrence in absolute seconds; None when the rule has fewer."""
    fixed = _fixed_periods(rule)
    if fixed is not None:
        return _closed_form(rule, fixed, count)
    if rule.coarse:
        if rule.interval == 1 and rule.setpos is None:
            return _uniform(rule, rule.times, count, budget)
        return _by_periods(rule, count, budget)
    if rule.per_day % rule.interval == 0:
        day_slots = _day_slots(rule, rule.phase(0), budget, {})
        if day_slots is None:
            return None
        return _uniform(rule, day_slots, count, budget)
    return _by_days(rule, count, budget)


class _Fixed:
    """Periods of one length, every one in phase firing at the same offsets from its start."""

    def __init__(self, base: int, length: int, offsets: Sequence[int] | TimeSet) -> None:
        self.base = base  # the start of DTSTART's period, absolute seconds
        self.length = length
        self.offsets = offsets
        self.size = len(offsets) if isinstance(offsets, Sequence) else offsets.size

    def kth(self, k: int) -> int:
        return self.offsets[k] if isinstance(self.offsets, Sequence) else self.offsets.kth(k)


def _fixed_periods(rule: "RRuleSchedule") -> _Fixed | None:
    """DAILY or sub-daily rules that keep every day and period, and WEEKLY rules limited by
    weekdays alone: every in-phase period is alike, so COUNT is arithmetic."""
    days = rule.days
    if not rule.coarse:
        if days.trivial and rule.slots.size == rule.per_day:
            return _Fixed(rule.base * rule.unit, rule.unit, rule.offsets)
        return None
    freq = rule.spec.freq.name
    if freq == "DAILY" and days.trivial:
        return _Fixed(rule.base * DAY, DAY, rule.times)
    weekdays_only = days.weekdays is not None and all(
        part is None
        for part in (days.months, days.weeknos, days.yeardays, days.monthdays, days.nth)
    )
    if freq != "WEEKLY" or not weekdays_only or days.weekdays is None:
        return None
    start = rule.period_start(rule.base)
    if start is None:
        return None
    week = sorted((wd - rule.spec.wkst) % 7 for wd in days.weekdays)
    times = rule.times
    n = len(week) * times.size
    picked = range(n) if rule.setpos is None else positions(rule.setpos, n)
    if len(picked) > _MEMO_LIMIT:
        return None
    offsets = [week[k // times.size] * DAY + times.kth(k % times.size) for k in picked]
    return _Fixed(start * DAY, 7 * DAY, offsets)


def _closed_form(rule: "RRuleSchedule", fixed: _Fixed, count: int) -> int | None:
    lo, hi = 0, fixed.size  # the first offset in DTSTART's period at or after DTSTART
    while lo < hi:
        mid = (lo + hi) // 2
        if fixed.base + fixed.kth(mid) < rule.start:
            lo = mid + 1
        else:
            hi = mid
    index = lo + count - 1
    period, k = divmod(index, fixed.size)
    found = fixed.base + period * rule.interval * fixed.length + fixed.kth(k)
    return found if found < (LAST_ORDINAL + 1) * DAY else None


def _uniform(
    rule: "RRuleSchedule", day: "TimeSet | DaySlots", count: int, budget: Budget
) -> int | None:
    """Every passing day fires at ``day``'s times (those before DTSTART aside)."""
    return _locate(rule, day, rule.start // DAY, count, budget)


def _locate(
    rule: "RRuleSchedule", day: "TimeSet | DaySlots", from_ord: int, count: int, budget: Budget
) -> int | None:
    """The ``count``-th occurrence on passing days from ``from_ord`` on, each firing at
    ``day``'s times."""
    start_ord, start_second = divmod(rule.start, DAY)
    first = rule.days.next_day(from_ord, budget)
    if first is None:
        return None
    remaining = count
    if first == start_ord:
        skip = day.rank(start_second)
        if remaining <= day.size - skip:
            return first * DAY + day.kth(skip + remaining - 1)
        remaining -= day.size - skip
        first += 1
    index, k = divmod(remaining - 1, day.size)
    found = rule.days.nth_day(first, index, budget)
    return None if found is None else found * DAY + day.kth(k)


def _by_periods(rule: "RRuleSchedule", count: int, budget: Budget) -> int | None:
    start_ord = rule.start // DAY
    remaining = count
    period = rule.in_phase_from(rule.period_of(start_ord))
    while True:
        budget.spend()
        start = rule.period_start(period)
        if start is None:
            return None
        day = rule.days.next_day(max(start, start_ord), budget)
        if day is None:
            return None
        holder = rule.period_of(day)
        if holder != period:
            period = rule.in_phase_from(holder)
            continue
        if rule.setpos is not None:
            found = _picked(rule, period, start, budget)
            if len(found) >= remaining:
                return found[remaining - 1]
            remaining -= len(found)
        else:
            lo = max(start, start_ord)
            n = rule.days.count_between(lo, rule.period_end(period), budget) * rule.times.size
            if lo == start_ord == day:
                n -= rule.times.rank(rule.start % DAY)
            if n >= remaining:
                return _locate(rule, rule.times, lo, remaining, budget)
            remaining -= n
        period += rule.interval


def _picked(rule: "RRuleSchedule", period: int, start: int, budget: Budget) -> list[int]:
    """The occurrences BYSETPOS picks in one in-phase period, from DTSTART on."""
    days = rule.days.days_between(start, rule.period_end(period), budget)
    times = rule.times
    picked = positions(rule.setpos or (), len(days) * times.size)
    found = [days[k // times.size] * DAY + times.kth(k % times.size) for k in picked]
    return [x for x in found if x >= rule.start]


def _by_days(rule: "RRuleSchedule", count: int, budget: Budget) -> int | None:
    start_ord, start_second = divmod(rule.start, DAY)
    memo: dict[int, DaySlots | None] = {}
    remaining = count
    day = rule.days.next_day(start_ord, budget)
    while day is not None:
        budget.spend()
        slots = _day_slots(rule, rule.phase(day), budget, memo)
        if slots is not None:
            skip = slots.rank(start_second) if day == start_ord else 0
            if remaining <= slots.size - skip:
                return day * DAY + slots.kth(skip + remaining - 1)
            remaining -= slots.size - skip
        day = rule.days.next_day(day + 1, budget)
    return None


def _day_slots(
    rule: "RRuleSchedule", phase: int, budget: Budget, memo: dict[int, DaySlots | None]
) -> DaySlots | None:
    """The times a day with this phase fires at; None when none."""
    if phase in memo:
        return memo[phase]
    slots: TimeSet | None
    if rule.interval == 1:
        slots = rule.slots
    elif rule.slots.size == rule.per_day:
        slots = StepSet(phase, rule.interval, rule.per_day) if phase < rule.per_day else None
    else:
        found = []
        slot = rule.next_slot(phase, 0, budget)
        while slot is not None:
            found.append(slot)
            slot = rule.next_slot(phase, slot + 1, budget)
        slots = ListSet(found) if found else None
    result = None if slots is None else DaySlots(slots, rule.offsets, rule.unit)
    if len(memo) < _MEMO_LIMIT:
        memo[phase] = result
    return result
