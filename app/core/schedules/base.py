"""What every schedule kind answers: when next, as UTC instants."""

from datetime import datetime
from typing import Protocol

from app.core.schedules.budget import Budget


class Schedule(Protocol):
    """When a task runs. All datetimes in and out are aware; results are in UTC.

    Each call takes an optional :class:`Budget` (a fresh default one when None) and raises
    ``ScheduleTooSlow`` when the computation would exceed it.
    """

    def first(self, now: datetime, budget: Budget | None = None) -> datetime | None:
        """``next_run_at`` for a task created or resumed at ``now``."""
        ...

    def next_after(self, t: datetime, budget: Budget | None = None) -> datetime | None:
        """The first occurrence strictly after ``t``; None when there is none left."""
        ...

    def between(
        self, start: datetime, end: datetime, limit: int, budget: Budget | None = None
    ) -> list[datetime]:
        """Occurrences with ``start < x <= end``, ascending, at most ``limit``: misfire catch-up."""
        ...


def require_aware(value: datetime, what: str) -> None:
    if value.tzinfo is None or value.utcoffset() is None:
        raise ValueError(f"{what} must be a timezone-aware datetime")
