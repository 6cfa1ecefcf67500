"""Schedule kinds: parse an expression once, then answer "when next?" as UTC instants.

One module per concern: :mod:`.zones` (IANA names), :mod:`.wallclock` (wall time to instant,
DST gaps and repeats), :mod:`.budget` (the bound on one computation), :mod:`.cron_fields` and
:mod:`.cron` (crontab(5) text and its search), :mod:`.rrule_text`, :mod:`.calendar`,
:mod:`.rrule` and :mod:`.rrule_count` (RFC 5545 text, day masks, expansion, COUNT),
:mod:`.once`, :mod:`.event`, and :mod:`.parse` (the entry point). Everything here is pure
computation: no I/O, no clock reads (a budget's deadline reads CPU time).
"""

from app.core.schedules.base import Schedule
from app.core.schedules.budget import Budget
from app.core.schedules.cron import CronSchedule
from app.core.schedules.event import EVENT_EXPR_MAX, EventSchedule
from app.core.schedules.once import OnceSchedule
from app.core.schedules.parse import parse_schedule
from app.core.schedules.rrule import RRuleSchedule
from app.core.schedules.rrule_text import MAX_COUNT, MAX_INTERVAL
from app.core.schedules.zones import load_timezone

__all__ = [
    "EVENT_EXPR_MAX",
    "MAX_COUNT",
    "MAX_INTERVAL",
    "Budget",
    "CronSchedule",
    "EventSchedule",
    "OnceSchedule",
    "RRuleSchedule",
    "Schedule",
    "load_timezone",
    "parse_schedule",
]
