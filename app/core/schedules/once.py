"""``once``: a single instant given as RFC 3339; one in the past still runs, as soon as possible.

Without an offset the time is read in the task's zone, a missing local time with the offset
before the gap (RFC 5545 section 3.3.5, as for rrule) and a repeated one as its first instance.
"""

import re
from datetime import UTC, datetime, timedelta
from datetime import timezone as dt_timezone
from typing import ClassVar
from zoneinfo import ZoneInfo

from app.core.errors import ScheduleError
from app.core.schedules.base import require_aware
from app.core.schedules.budget import Budget
from app.core.schedules.wallclock import GapRule, to_instant
from app.core.status import ScheduleKind

_RFC3339_RE = re.compile(
    r"(\d{4})-(\d{2})-(\d{2})[Tt ](\d{2}):(\d{2})(?::(\d{2})(?:[.,](\d{1,9}))?)?"
    r"(?:([Zz])|([+-])(\d{2}):(\d{2}))?"
)


class OnceSchedule:
    """A single instant."""

    kind: ClassVar[ScheduleKind] = ScheduleKind.ONCE

    def __init__(self, at: datetime) -> None:
        self.at = at

    def first(self, now: datetime, budget: Budget | None = None) -> datetime | None:
        require_aware(now, "now")
        return self.at

    def next_after(self, t: datetime, budget: Budget | None = None) -> datetime | None:
        require_aware(t, "t")
        return self.at if self.at > t else None

    def between(
        self, start: datetime, end: datetime, limit: int, budget: Budget | None = None
    ) -> list[datetime]:
        require_aware(start, "start")
        require_aware(end, "end")
        return [self.at] if limit > 0 and start < self.at <= end else []


def parse_once(expr: str, tz: ZoneInfo) -> OnceSchedule:
    match = _RFC3339_RE.fullmatch(expr.strip())
    if match is None:
        raise ScheduleError(
            "schedule_expr",
            "expected an RFC 3339 date and time such as 2026-12-01T10:00:00Z "
            "(without an offset it is read in the task's timezone)",
        )
    year, month, day, hour, minute, second, fraction, zulu, sign, off_h, off_m = match.groups()
    try:
        wall = datetime(
            int(year),
            int(month),
            int(day),
            int(hour),
            int(minute),
            int(second or 0),
            int((fraction or "0")[:6].ljust(6, "0")),
        )
        if zulu:
            return OnceSchedule(wall.replace(tzinfo=UTC))
        if sign:
            if int(off_h) > 23 or int(off_m) > 59:
                raise ValueError("UTC offset out of range")
            offset = timedelta(hours=int(off_h), minutes=int(off_m))
            zone = dt_timezone(-offset if sign == "-" else offset)
            return OnceSchedule(wall.replace(tzinfo=zone).astimezone(UTC))
        return OnceSchedule(to_instant(wall, tz, GapRule.OFFSET_BEFORE)[0])
    except (ValueError, OverflowError) as exc:
        raise ScheduleError("schedule_expr", f"invalid date and time: {exc}") from exc
