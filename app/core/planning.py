"""When a task first runs, and what one due occurrence of a task turns into: its runs, its next
occurrence, its misfires.

Pure: a request plans a new or restarted task here (:func:`first_run_at`) and the store writes
the result; the scheduler reads the task and the time, plans here, then commits the plan in one
script (``app/store/scheduling.py``). Run ids are derived from (task, occurrence), so whoever
commits an occurrence, however often, creates the same run.
"""

import uuid
from dataclasses import dataclass
from typing import Literal

from app import clock
from app.core.jitter import fire_at, nominal, placed
from app.core.schedules import Budget, Schedule, parse_schedule
from app.core.status import MisfirePolicy, ScheduleKind, TaskStatus
from app.core.task import Task

#: At most this many runs for the occurrences missed during one outage (``run_all``).
MAX_CATCH_UP = 100
#: Missed occurrences are counted up to this many for the ``misfires_skipped`` counter.
MAX_SKIP_COUNT = 1000
_RUN_NAMESPACE = uuid.uuid5(uuid.NAMESPACE_URL, "chime:scheduled-run")


def occurrence_run_id(task_id: str, occurrence_ms: int) -> str:
    """The run id of a task's scheduled occurrence: the same whoever commits it, how often."""
    return str(uuid.uuid5(_RUN_NAMESPACE, f"{task_id}:{occurrence_ms}"))


def task_schedule(task: Task) -> Schedule:
    """The task's parsed schedule (an rrule without DTSTART starts at the task's creation)."""
    return parse_schedule(
        task.schedule_kind, task.schedule_expr, task.timezone, clock.from_ms(task.created_at)
    )


def first_run_at(task: Task, now_ms: int, schedule: Schedule | None = None) -> int | None:
    """``next_run_at`` for a task that starts (or restarts) its schedule at ``now_ms``;
    ``schedule`` is the task's, when the caller parsed it already.

    A snooze still in the future holds: the task does not run before ``snoozed_until``.
    """
    first = (schedule or task_schedule(task)).first(clock.from_ms(now_ms))
    if first is None:
        return None
    first_ms = clock.to_ms(first)
    if task.snoozed_until is not None and first_ms < task.snoozed_until:
        return task.snoozed_until
    return first_ms


def plan_new(task: Task, schedule: Schedule | None = None) -> Task:
    """A new task, planned at its creation: its ``next_run_at``, and completed at once when its
    schedule has no occurrence left (an event task without a next run waits for its events)."""
    task.next_run_at, task.next_occurrence = placed(
        task, first_run_at(task, task.created_at, schedule)
    )
    if task.next_run_at is None and task.schedule_kind != ScheduleKind.EVENT:
        task.status = TaskStatus.COMPLETED
    return task


@dataclass(frozen=True)
class Plan:
    """What committing one due occurrence does."""

    #: the instant the occurrence fired (the task's ``next_run_at``)
    occurrence: int
    #: ``scheduled_for`` of each run to create (empty when the misfire policy skips): nominal
    #: occurrences, whatever the jitter
    runs: tuple[int, ...]
    #: the instant the task fires next (jitter included), None when the schedule has none
    next_run_at: int | None
    #: ``once``: no next occurrence leaves the task active until its run ends
    mode: Literal["repeat", "once"]
    #: the snoozed occurrence fires: the snooze ends
    clear_snooze: bool
    #: occurrences dropped by the misfire policy (counted up to ``MAX_SKIP_COUNT``)
    skipped: int = 0
    #: the nominal occurrence ``next_run_at`` fires for, when jitter moved it
    next_occurrence: int | None = None


def plan_occurrence(
    task: Task, now_ms: int, misfire_grace_ms: int, budget: Budget | None = None
) -> Plan:
    """Decide the runs of ``task``'s due occurrence and its next one.

    On time (within the misfire grace) the occurrence gets one run and the schedule goes on
    from it; a snoozed occurrence goes on from the snoozed time, so occurrences inside the
    snooze are skipped. An occurrence later than the grace was missed while no scheduler ran
    and the task's misfire policy applies: ``run_once`` one catch-up run, then the first
    occurrence after now; ``skip`` no run, then the first occurrence not yet missed (one
    inside the grace still runs); ``run_all`` a run for each missed occurrence (at most
    ``MAX_CATCH_UP``), then the first after now. Lateness counts from when the occurrence
    became due or from the task's last change, whichever is later: a ``once`` task created for
    a time already past is not a misfire.

    With ``jitter_seconds``, ``next_run_at`` is the instant the occurrence fires and the plan
    works on its nominal occurrence (``app/core/jitter.py``): runs are scheduled for it, the
    schedule goes on from it, and lateness counts from the instant it fired.

    Every schedule computation of the plan shares ``budget`` (a default one when None): past
    it, ``ScheduleTooSlow`` is raised and nothing is decided for this task.
    """
    fired = task.next_run_at
    occ = nominal(task)
    if fired is None or occ is None:
        raise ValueError(f"task {task.id} has no next_run_at")
    budget = budget or Budget()
    schedule = task_schedule(task)
    mode: Literal["repeat", "once"] = (
        "once" if task.schedule_kind == ScheduleKind.ONCE else "repeat"
    )
    clear_snooze = task.snoozed_until is not None and task.snoozed_until <= occ

    def after(t: int) -> int | None:
        found = schedule.next_after(clock.from_ms(t), budget)
        return None if found is None else clock.to_ms(found)

    def plan(runs: tuple[int, ...], nxt: int | None, skipped: int = 0) -> Plan:
        fire = None if nxt is None else fire_at(task, nxt, fired)
        jittered = nxt if fire != nxt else None
        return Plan(fired, runs, fire, mode, clear_snooze, skipped, jittered)

    def between(start: int, end: int, limit: int) -> list[int]:
        if end <= start:
            return []
        found = schedule.between(clock.from_ms(start), clock.from_ms(end), limit, budget)
        return [clock.to_ms(x) for x in found]

    late = now_ms - max(fired, task.updated_at) > misfire_grace_ms
    if not late:
        return plan((occ,), after(occ))
    if task.misfire_policy == MisfirePolicy.SKIP:
        cutoff = now_ms - misfire_grace_ms
        skipped = 1 + len(between(occ, cutoff, MAX_SKIP_COUNT))
        return plan((), after(cutoff), skipped)
    if task.misfire_policy == MisfirePolicy.RUN_ALL:
        runs = (occ, *between(occ, now_ms, MAX_CATCH_UP - 1))
        skipped = 0
        if len(runs) == MAX_CATCH_UP:
            skipped = len(between(runs[-1], now_ms, MAX_SKIP_COUNT))
        return plan(runs, after(now_ms), skipped)
    skipped = len(between(occ, now_ms, MAX_SKIP_COUNT))
    return plan((occ,), after(now_ms), skipped)
