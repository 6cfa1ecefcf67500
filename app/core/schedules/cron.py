"""Cron schedules: the next wall time a :class:`CronSpec` matches, month by month.

The days of a month that match depend only on its length and the weekday of its first day (28
kinds of month), so they are computed once per kind; a search then costs one step per month it
looks at, and at most 400 years separate two matches (the Gregorian calendar repeats).

Day of month and day of week, as crontab(5) says: when both fields are restricted (neither
starts with ``*``) a day matching either fires; when one starts with ``*`` (``*``, ``*/2``), a
day must match both, so ``0 0 */2 * 1`` is odd days that are Mondays.
"""

import bisect
import calendar
from datetime import date, datetime, timedelta
from zoneinfo import ZoneInfo

from app.core.errors import ScheduleError
from app.core.schedules.budget import Budget
from app.core.schedules.cron_fields import parse_cron
from app.core.schedules.timeset import ProductSet
from app.core.schedules.wallclock import GapRule, WallClockSchedule
from app.core.status import ScheduleKind

_LAST_YEAR = datetime.max.year
_LAST_SECOND = datetime.max.replace(microsecond=0)
#: possible lengths of each month, over the 400-year cycle
_MONTH_LENGTHS = {
    m: ((28, 29) if m == 2 else (calendar.monthrange(2001, m)[1],)) for m in range(1, 13)
}


def _nearest_weekday(n: int, length: int, first_weekday: int) -> int:
    """The Monday-to-Friday day nearest day ``n`` (the last day if shorter), in the month."""
    day = min(n, length)
    weekday = (first_weekday + day - 1) % 7  # Monday 0
    if weekday == 5:  # Saturday: the Friday before, or the Monday after the 1st
        return day - 1 if day > 1 else day + 2
    if weekday == 6:  # Sunday: the Monday after, or the Friday before the month's end
        return day + 1 if day < length else day - 2
    return day


class CronSchedule(WallClockSchedule):
    """A 5-field cron (or 6 with seconds last, or an @alias) read in ``tz``."""

    kind = ScheduleKind.CRON
    gap_rule = GapRule.AFTER_GAP

    def __init__(self, expr: str, tz: ZoneInfo) -> None:
        super().__init__(tz)
        self.expr = expr
        self.spec = parse_cron(expr)
        self._times = ProductSet(
            (self.spec.hours, self.spec.minutes, self.spec.seconds), (3600, 60, 1)
        )
        self._months = tuple(sorted(self.spec.months))
        self._kinds: dict[tuple[int, int], tuple[int, ...]] = {}
        if not any(
            self._days(length, first)
            for month in self._months
            for length in _MONTH_LENGTHS[month]
            for first in range(7)
        ):
            raise ScheduleError("schedule_expr", "the cron expression matches no date")

    def _days(self, length: int, first_weekday: int) -> tuple[int, ...]:
        """The matching days of a month of ``length`` days starting on ``first_weekday``."""
        key = (length, first_weekday)
        days = self._kinds.get(key)
        if days is None:
            days = tuple(d for d in range(1, length + 1) if self._matches(d, length, first_weekday))
            self._kinds[key] = days
        return days

    def _matches(self, day: int, length: int, first_weekday: int) -> bool:
        dom, dow = self.spec.dom, self.spec.dow
        on_dom = (
            day in dom.days
            or (dom.last and day == length)
            or (
                dom.nearest is not None
                and day == _nearest_weekday(dom.nearest, length, first_weekday)
            )
        )
        weekday = (first_weekday + day) % 7  # Sunday 0, from Monday-0 weekdays
        on_dow = (
            weekday in dow.days
            or (weekday, (day - 1) // 7 + 1) in dow.nth
            or (weekday in dow.last and day + 7 > length)
        )
        if dom.star or dow.star:
            return on_dom and on_dow
        return on_dom or on_dow

    def _next_wall(
        self, after: datetime, bound: datetime | None, budget: Budget
    ) -> datetime | None:
        if after >= _LAST_SECOND:
            return None
        start = after.replace(microsecond=0) + timedelta(seconds=1)
        year, month, day = start.year, start.month, start.day
        second = start.hour * 3600 + start.minute * 60 + start.second
        i = bisect.bisect_left(self._months, month)
        while True:
            budget.spend()
            if i == len(self._months):
                i, year, day, second = 0, year + 1, 1, 0
                if year > _LAST_YEAR:
                    return None
            if self._months[i] != month:
                month, day, second = self._months[i], 1, 0
            if bound is not None and datetime(year, month, 1) > bound:
                return None
            first_weekday = date(year, month, 1).weekday()
            days = self._days(calendar.monthrange(year, month)[1], first_weekday)
            j = bisect.bisect_left(days, day)
            if j < len(days):
                if days[j] == day:
                    found = self._times.next_ge(second)
                    if found is not None:
                        return datetime(year, month, day) + timedelta(seconds=found)
                    j += 1
                if j < len(days):
                    return datetime(year, month, days[j]) + timedelta(seconds=self._times.first())
            i += 1
            month = 0
