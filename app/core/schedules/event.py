"""``event``: runs only on matching events (``POST /events``); no time of its own."""

from datetime import datetime
from typing import ClassVar

from app.core.errors import ScheduleError
from app.core.schedules.budget import Budget
from app.core.status import ScheduleKind

#: Event patterns are names or globs matched against event names, never parsed.
EVENT_EXPR_MAX = 200


class EventSchedule:
    kind: ClassVar[ScheduleKind] = ScheduleKind.EVENT

    def __init__(self, pattern: str | None) -> None:
        self.pattern = pattern

    def first(self, now: datetime, budget: Budget | None = None) -> datetime | None:
        return None

    def next_after(self, t: datetime, budget: Budget | None = None) -> datetime | None:
        return None

    def between(
        self, start: datetime, end: datetime, limit: int, budget: Budget | None = None
    ) -> list[datetime]:
        return []


def parse_event(expr: str | None) -> EventSchedule:
    if expr is not None and len(expr) > EVENT_EXPR_MAX:
        raise ScheduleError(
            "schedule_expr", f"an event pattern is at most {EVENT_EXPR_MAX} characters"
        )
    return EventSchedule(expr or None)
