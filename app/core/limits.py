"""Per-agent limits: what one agent may spend, so it can never starve another.

Defaults come from the settings; the admin may override any of them per agent. The gates that
hold ``max_running`` and ``max_runs_per_minute`` live in Lua (``lua/includes/chime_agent_*.lua``);
``max_tasks`` is checked by the create script; ``min_interval_seconds`` here, at create/update
(on create, the create script reads the agent's value and asks for this check when it is above 1).
"""

from collections.abc import Callable, Mapping
from dataclasses import asdict, dataclass, replace
from datetime import datetime, timedelta
from typing import Any

from app.core.errors import ChimeError, ScheduleTooSlow, ValidationError

#: ``pause_reason`` of the tasks of a revoked agent (only the admin may resume them)
REVOKED = "agent revoked"

#: limit name -> (lowest, highest) accepted value
BOUNDS: dict[str, tuple[int, int]] = {
    "max_tasks": (1, 10_000_000),
    "max_running": (1, 100_000),
    "max_runs_per_minute": (1, 10_000_000),
    "min_interval_seconds": (1, 86_400),
}

#: the window ``max_runs_per_minute`` counts starts in
WINDOW_MS = 60_000

#: occurrences looked at when checking ``min_interval_seconds`` (the first gaps of the rule)
INTERVAL_SAMPLE = 16


@dataclass(frozen=True)
class Limits:
    max_tasks: int = 10_000
    max_running: int = 100
    max_runs_per_minute: int = 6_000
    min_interval_seconds: int = 1

    def to_json(self) -> dict[str, int]:
        return asdict(self)

    def with_overrides(self, overrides: Mapping[str, Any]) -> "Limits":
        """These limits with the stored overrides applied (unknown or bad entries ignored)."""
        given: dict[str, int] = {}
        for name, value in overrides.items():
            if name in BOUNDS:
                try:
                    given[name] = int(value)
                except (TypeError, ValueError):
                    continue
        return replace(self, **given)


def check_overrides(body: Mapping[str, Any]) -> dict[str, int]:
    """The limits an admin override names, each a whole number within its bounds."""
    out: dict[str, int] = {}
    for name, value in body.items():
        if name not in BOUNDS:
            raise ValidationError(name, "unknown limit; one of " + ", ".join(BOUNDS))
        lo, hi = BOUNDS[name]
        if isinstance(value, bool) or not isinstance(value, int) or not lo <= value <= hi:
            raise ValidationError(name, f"must be a whole number in {lo}..{hi}")
        out[name] = value
    return out


class TooManyTasks(ChimeError):
    """``max_tasks`` reached: the agent has that many active and paused tasks (429)."""

    def __init__(self, limit: int) -> None:
        super().__init__(
            f"max_tasks: the agent has {limit} active and paused tasks, its limit; cancel some "
            "or ask the admin to raise max_tasks"
        )
        self.limit = limit


def check_min_interval(
    next_after: Callable[[datetime], datetime | None], first: datetime | None, min_seconds: int
) -> None:
    """Refuse a rule two of whose consecutive occurrences (among its first few) are closer
    than ``min_seconds``: ``ValidationError`` on ``schedule_expr`` naming both instants.

    ``next_after`` should share one budget across the calls: when it runs out the gaps seen so
    far decide (the rule itself passed its bound; this check never costs a request more)."""
    if first is None:
        return
    prev = first
    for _ in range(INTERVAL_SAMPLE):
        try:
            nxt = next_after(prev)
        except ScheduleTooSlow:
            return
        if nxt is None:
            return
        if nxt - prev < timedelta(seconds=min_seconds):
            raise ValidationError(
                "schedule_expr",
                f"occurrences {prev.isoformat()} and {nxt.isoformat()} are "
                f"{(nxt - prev).total_seconds():g} s apart, under the agent's "
                f"min_interval_seconds of {min_seconds}",
            )
        prev = nxt
