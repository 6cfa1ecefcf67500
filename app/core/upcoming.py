"""The next fire times of a task, as the scheduler will fire them.

Pure: it replays :func:`app.core.planning.plan_occurrence`, the function the scheduler commits,
on a copy of the task, one due occurrence after another. So a snooze, a rule that ends (COUNT,
UNTIL, a ``once`` time) and a missed occurrence come out exactly as they will fire.
"""

import msgspec

from app.core.planning import plan_occurrence
from app.core.schedules import Budget
from app.core.status import TaskStatus
from app.core.task import Task

#: ``count`` of ``GET /tasks/{id}/upcoming`` and ``POST /schedules/preview``
MAX_COUNT = 100
DEFAULT_COUNT = 10


def upcoming(task: Task, now_ms: int, misfire_grace_ms: int, count: int) -> list[int]:
    """Up to ``count`` instants (epoch ms) at which ``task`` will start a scheduled run.

    One instant per run the scheduler's plan makes: the instant its occurrence fires, jitter
    included (an occurrence already due shows that instant: it fires at once; one missed while
    no scheduler ran gets what its misfire policy gives: ``run_all`` one run per caught-up
    occurrence, all at that instant, ``skip`` none; the plans after it start from
    ``now_ms``). A task that is not active, or has no next occurrence, has none. Each
    occurrence is computed within its own default :class:`Budget`, as the scheduler computes
    it: the answer costs at most ``count`` budgets.
    """
    if count < 1:
        raise ValueError("count must be positive")
    if task.status != TaskStatus.ACTIVE:
        return []
    found: list[int] = []
    current = task
    while len(found) < count and current.next_run_at is not None:
        fire = current.next_run_at
        plan = plan_occurrence(current, max(fire, now_ms), misfire_grace_ms, Budget())
        found.extend(fire for _ in plan.runs)
        current = msgspec.structs.replace(
            current,
            next_run_at=plan.next_run_at,
            next_occurrence=plan.next_occurrence,
            snoozed_until=None if plan.clear_snooze else current.snoozed_until,
        )
    return found[:count]
