"""``parse_schedule``: a task's schedule fields to the object that computes its run times.

Parsing validates a rule completely, including that its occurrences can be computed within the
bound of a :class:`Budget`: a rule too sparse or too costly is refused here, with a message that
says why, rather than stalling the scheduler later. Parsed schedules are cached, so the
scheduler, which asks for many tasks per second, pays for that once per rule.
"""

import functools
from datetime import UTC, datetime
from zoneinfo import ZoneInfo

from app.core.errors import ScheduleError, ScheduleTooSlow
from app.core.schedules.base import Schedule, require_aware
from app.core.schedules.budget import Budget
from app.core.schedules.cron import CronSchedule
from app.core.schedules.event import parse_event
from app.core.schedules.once import parse_once
from app.core.schedules.rrule import RRuleSchedule
from app.core.schedules.rrule_text import HAS_DTSTART, Freq, RuleSpec, parse_rrule_text
from app.core.schedules.zones import load_timezone
from app.core.status import ScheduleKind

#: Cron validation computes a next time from here, so the result never depends on the clock.
_CRON_REFERENCE = datetime(2000, 1, 1, tzinfo=UTC)


def _too_slow_hint(spec: RuleSpec) -> str:
    if spec.count is not None:
        return "use UNTIL, or a smaller COUNT"
    if spec.freq > Freq.DAILY:
        return (
            "put the time of day in BYHOUR/BYMINUTE/BYSECOND of a FREQ=DAILY (or coarser) rule "
            "instead of filtering every " + spec.freq.name.lower().removesuffix("ly") + " by date"
        )
    return "use a coarser FREQ or fewer BY parts"


def _parse_rrule(expr: str, tz: ZoneInfo, start: datetime | None) -> RRuleSchedule:
    spec = parse_rrule_text(expr, tz, start)
    budget = Budget()
    try:
        schedule = RRuleSchedule(spec, budget)
        schedule.probe(budget)
    except ScheduleTooSlow as exc:
        raise ScheduleTooSlow(
            f"this rule is too sparse or too costly to compute: {exc.reason}; "
            + _too_slow_hint(spec)
        ) from None
    return schedule


def _parse_cron(expr: str, tz: ZoneInfo) -> CronSchedule:
    schedule = CronSchedule(expr, tz)
    schedule.next_after(_CRON_REFERENCE, Budget())
    return schedule


@functools.lru_cache(maxsize=4096)
def _parse_cached(
    kind: ScheduleKind, expr: str, timezone_name: str, start: datetime | None
) -> Schedule:
    tz = load_timezone(timezone_name)
    if kind is ScheduleKind.CRON:
        return _parse_cron(expr, tz)
    if kind is ScheduleKind.RRULE:
        return _parse_rrule(expr, tz, start)
    return parse_once(expr, tz)


def parse_schedule(kind: str, expr: str | None, timezone: str, start: datetime) -> Schedule:
    """Validate a task's schedule fields and return the object that computes its run times.

    ``start`` is the task's creation instant: an rrule without DTSTART starts there, read in
    ``timezone``. Every problem is a ``ScheduleError`` naming the field at fault; a rule that
    cannot be computed within the bound is a ``ScheduleTooSlow``.
    """
    try:
        schedule_kind = ScheduleKind(kind)
    except ValueError:
        raise ScheduleError(
            "schedule_kind", "must be one of " + ", ".join(k.value for k in ScheduleKind)
        ) from None
    load_timezone(timezone)
    if schedule_kind is ScheduleKind.EVENT:
        return parse_event(expr)
    if expr is None or not expr.strip():
        raise ScheduleError("schedule_expr", f"required for {schedule_kind.value} schedules")
    require_aware(start, "start")
    rule_start: datetime | None = None
    if schedule_kind is ScheduleKind.RRULE and not HAS_DTSTART.search(expr):
        # Only a rule without DTSTART depends on ``start``: leave it out of the cache key.
        rule_start = start.astimezone(UTC).replace(microsecond=0)
    return _parse_cached(schedule_kind, expr.strip(), timezone, rule_start)
