"""The days an rrule's day-level parts let through, year by year.

BYMONTH, BYWEEKNO, BYYEARDAY, BYMONTHDAY and BYDAY each keep or drop a day. Which days of a year
pass depends only on the kind of year (leap or not, the weekday of January 1, and for week
numbers whether the years around it are leap years), at most a few dozen kinds, so each kind is
computed once and a search jumps from year to year at one step each. Days are proleptic
Gregorian ordinals (``date.toordinal()``).

Week numbers follow RFC 5545 with WKST: week 1 is the first week with at least four days in the
year, and a day belongs to the week (and week-numbering year) it falls in, so 2024-12-30 is in
week 1 of 2025 with WKST=MO.
"""

import bisect
from collections.abc import Sequence
from datetime import date

from app.core.schedules.budget import Budget

LAST_ORDINAL = date.max.toordinal()
#: seconds in a day: occurrences are ``ordinal * DAY + second of the day``
DAY = 86_400
_LAST_YEAR = date.max.year
_CYCLE_YEARS = 401
_CUMULATIVE = {
    leap: tuple(
        sum((31, 29 if leap else 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31)[:m]) for m in range(13)
    )
    for leap in (False, True)
}


def is_leap(year: int) -> bool:
    return year % 4 == 0 and (year % 100 != 0 or year % 400 == 0)


def jan1(year: int) -> int:
    """The ordinal of January 1 of ``year``."""
    y = year - 1
    return y * 365 + y // 4 - y // 100 + y // 400 + 1


def weekday(ordinal: int) -> int:
    """Monday 0 .. Sunday 6."""
    return (ordinal + 6) % 7


def month_start(year: int, month: int) -> int:
    """The ordinal of the first day of ``month`` (1..12) of ``year``."""
    return jan1(year) + _CUMULATIVE[is_leap(year)][month - 1]


def _first_week_start(year: int, wkst: int) -> int:
    """The day of the year (0-based, may be negative) where week 1 of ``year`` begins."""
    back = (weekday(jan1(year)) - wkst) % 7
    return -back if back <= 3 else 7 - back


def _weeks_in(year: int, wkst: int) -> int:
    length = 366 if is_leap(year) else 365
    return (length - 4 - _first_week_start(year, wkst)) // 7 + 1


class DayFilter:
    """The day-level parts of one rule.

    ``nth_in_month``: numbered weekdays count within the month (FREQ=MONTHLY, or YEARLY with
    BYMONTH), else within the year.
    """

    def __init__(
        self,
        *,
        months: tuple[int, ...] | None = None,
        weeknos: tuple[int, ...] | None = None,
        yeardays: tuple[int, ...] | None = None,
        monthdays: tuple[int, ...] | None = None,
        weekdays: tuple[int, ...] | None = None,
        nth_weekdays: tuple[tuple[int, int], ...] | None = None,
        nth_in_month: bool = False,
        wkst: int = 0,
    ) -> None:
        self.months = None if months is None else frozenset(months)
        self.weeknos = None if weeknos is None else frozenset(weeknos)
        self.yeardays = None if yeardays is None else frozenset(yeardays)
        self.monthdays = None if monthdays is None else frozenset(monthdays)
        self.weekdays = None if weekdays is None else frozenset(weekdays)
        self.nth = None if nth_weekdays is None else frozenset(nth_weekdays)
        self.nth_in_month = nth_in_month
        self.wkst = wkst
        #: every day passes: searches need no masks at all
        self.trivial = all(
            part is None
            for part in (
                self.months,
                self.weeknos,
                self.yeardays,
                self.monthdays,
                self.weekdays,
                self.nth,
            )
        )
        self._kinds: dict[tuple[bool, int, bool, bool], tuple[int, ...]] = {}

    # -- one year ------------------------------------------------------------------------------

    def year_days(self, year: int, budget: Budget) -> tuple[int, ...]:
        """The days of ``year`` that pass, as 0-based days of the year, ascending."""
        key = (
            is_leap(year),
            weekday(jan1(year)),
            self.weeknos is not None and is_leap(year - 1),
            self.weeknos is not None and is_leap(year + 1),
        )
        days = self._kinds.get(key)
        if days is None:
            budget.spend(64)
            days = self._compute(year)
            self._kinds[key] = days
        return days

    def _compute(self, year: int) -> tuple[int, ...]:
        """Each given part as the set of days it keeps, intersected: set work, not day work."""
        leap = is_leap(year)
        length = 366 if leap else 365
        cumulative = _CUMULATIVE[leap]
        first = weekday(jan1(year))
        months = range(1, 13) if self.months is None else sorted(self.months)
        kept: set[int] | None = None
        if self.months is not None:
            kept = {d for m in months for d in range(cumulative[m - 1], cumulative[m])}
        for part in (
            self._by_yearday(length),
            self._by_monthday(cumulative, months),
            self._by_weekday(first, length),
            self._by_nth(first, length, cumulative, months),
            self._by_weekno(year, length),
        ):
            if part is not None:
                kept = part if kept is None else kept & part
        return tuple(range(length)) if kept is None else tuple(sorted(kept))

    def _by_yearday(self, length: int) -> set[int] | None:
        if self.yeardays is None:
            return None
        return {n - 1 if n > 0 else length + n for n in self.yeardays if abs(n) <= length}

    def _by_monthday(self, cumulative: tuple[int, ...], months: Sequence[int]) -> set[int] | None:
        if self.monthdays is None:
            return None
        kept: set[int] = set()
        for m in months:
            start, mlen = cumulative[m - 1], cumulative[m] - cumulative[m - 1]
            for n in self.monthdays:
                if abs(n) <= mlen:
                    kept.add(start + (n - 1 if n > 0 else mlen + n))
        return kept

    def _by_weekday(self, first: int, length: int) -> set[int] | None:
        if self.weekdays is None:
            return None
        return {d for wd in self.weekdays for d in range((wd - first) % 7, length, 7)}

    def _by_nth(
        self, first: int, length: int, cumulative: tuple[int, ...], months: Sequence[int]
    ) -> set[int] | None:
        if self.nth is None:
            return None
        spans = (
            [(cumulative[m - 1], cumulative[m]) for m in months]
            if self.nth_in_month
            else [(0, length)]
        )
        kept: set[int] = set()
        for lo, hi in spans:
            for wd, n in self.nth:
                if n > 0:
                    day = lo + (wd - first - lo) % 7 + (n - 1) * 7
                else:
                    day = hi - 1 - (first + hi - 1 - wd) % 7 + (n + 1) * 7
                if lo <= day < hi:
                    kept.add(day)
        return kept

    def _by_weekno(self, year: int, length: int) -> set[int] | None:
        if self.weeknos is None:
            return None
        start = _first_week_start(year, self.wkst)
        weeks = _weeks_in(year, self.wkst)
        before = _weeks_in(year - 1, self.wkst) if year > 1 else 52
        after = _weeks_in(year + 1, self.wkst) if year < _LAST_YEAR else 52
        kept: set[int] = set()
        for n in self.weeknos:
            number = n if n > 0 else weeks + 1 + n
            if 1 <= number <= weeks:
                lo = start + (number - 1) * 7
                kept.update(range(max(lo, 0), min(lo + 7, length)))
        if before in self.weeknos or -1 in self.weeknos:
            kept.update(range(0, max(start, 0)))  # the last week of the year before
        if 1 in self.weeknos or -after in self.weeknos:
            kept.update(range(start + weeks * 7, length))  # week 1 of the year after
        return kept

    # -- searches ------------------------------------------------------------------------------

    def next_day(self, ordinal: int, budget: Budget) -> int | None:
        """The first passing day at or after ``ordinal``; None past the end of year 9999."""
        if ordinal > LAST_ORDINAL:
            return None
        if self.trivial:
            return ordinal
        year = date.fromordinal(ordinal).year
        # The kinds of year repeat every 400 years: none passing in that long means none ever.
        give_up = year + _CYCLE_YEARS
        while year <= _LAST_YEAR and year <= give_up:
            budget.spend()
            base = jan1(year)
            days = self.year_days(year, budget)
            i = bisect.bisect_left(days, ordinal - base)
            if i < len(days):
                return base + days[i]
            year += 1
        return None

    def days_between(self, lo: int, hi: int, budget: Budget) -> list[int]:
        """Passing days in ``[lo, hi)``."""
        hi = min(hi, LAST_ORDINAL + 1)
        if lo >= hi:
            return []
        if self.trivial:
            return list(range(lo, hi))
        out: list[int] = []
        year = date.fromordinal(lo).year
        while year <= _LAST_YEAR:
            base = jan1(year)
            if base >= hi:
                break
            days = self.year_days(year, budget)
            i = bisect.bisect_left(days, lo - base)
            j = bisect.bisect_left(days, hi - base)
            out.extend(base + d for d in days[i:j])
            budget.spend(1 + (j - i) // 64)
            year += 1
        return out

    def count_between(self, lo: int, hi: int, budget: Budget) -> int:
        """How many days pass in ``[lo, hi)``."""
        hi = min(hi, LAST_ORDINAL + 1)
        if lo >= hi:
            return 0
        if self.trivial:
            return hi - lo
        total = 0
        year = date.fromordinal(lo).year
        while year <= _LAST_YEAR:
            budget.spend()
            base = jan1(year)
            if base >= hi:
                break
            days = self.year_days(year, budget)
            total += bisect.bisect_left(days, hi - base) - bisect.bisect_left(days, lo - base)
            year += 1
        return total

    def nth_day(self, ordinal: int, index: int, budget: Budget) -> int | None:
        """The passing day ``index`` (0-based) counted from ``ordinal`` on; None past 9999."""
        if self.trivial:
            found = ordinal + index
            return found if found <= LAST_ORDINAL else None
        year = date.fromordinal(ordinal).year
        while year <= _LAST_YEAR:
            budget.spend()
            base = jan1(year)
            days = self.year_days(year, budget)
            i = bisect.bisect_left(days, ordinal - base)
            if i + index < len(days):
                return base + days[i + index]
            index -= len(days) - i
            year += 1
            ordinal = jan1(year) if year <= _LAST_YEAR else LAST_ORDINAL + 1
        return None
