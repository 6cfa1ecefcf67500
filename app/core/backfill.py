"""Backfill: which past occurrences of a task a range covers, and the id of each one's run.

Pure. The occurrences are those of the task's schedule in ``[start, end)``, computed by the
schedule code the scheduler uses (DST included); their run ids are derived from (task,
occurrence) in a namespace of their own, so a repeated backfill names the same runs, and a
backfill never collides with the run the scheduler made for that occurrence.
"""

import uuid

from app import clock
from app.core.errors import ScheduleTooSlow, ValidationError
from app.core.schedules import Budget, parse_schedule
from app.core.status import ScheduleKind
from app.core.task import Task

#: more occurrences than this in one range is refused (400)
MAX_BACKFILL = 1000
#: steps of the one computation that lists a range (a default one finds a single occurrence)
_STEPS = 200_000
_NAMESPACE = uuid.uuid5(uuid.NAMESPACE_URL, "chime:backfill-run")


def backfill_run_id(task_id: str, occurrence_ms: int) -> str:
    return str(uuid.uuid5(_NAMESPACE, f"{task_id}:{occurrence_ms}"))


def occurrences(task: Task, start_ms: int, end_ms: int, now_ms: int) -> list[int]:
    """The task's occurrences in ``[start_ms, end_ms)``, oldest first; a
    :class:`ValidationError` naming the field for a range or a task that cannot be backfilled."""
    if task.schedule_kind not in (ScheduleKind.CRON, ScheduleKind.RRULE):
        raise ValidationError(
            "schedule_kind",
            f"only cron and rrule tasks can be backfilled, not {task.schedule_kind}",
        )
    if end_ms > now_ms:
        raise ValidationError("end", "must not be in the future")
    if start_ms >= end_ms:
        raise ValidationError("start", "must be before end")
    schedule = parse_schedule(
        task.schedule_kind, task.schedule_expr, task.timezone, clock.from_ms(task.created_at)
    )
    try:
        found = schedule.between(
            clock.from_ms(start_ms - 1),
            clock.from_ms(end_ms - 1),
            MAX_BACKFILL + 1,
            Budget(steps=_STEPS, seconds=1.0),
        )
    except ScheduleTooSlow:
        raise ValidationError(
            "end", "this range is too long to compute for this schedule: backfill a shorter one"
        ) from None
    if len(found) > MAX_BACKFILL:
        raise ValidationError(
            "end", f"the range holds more than {MAX_BACKFILL} occurrences: split it"
        )
    return [clock.to_ms(x) for x in found]
