"""Statuses and the other closed vocabularies of tasks and runs, as ``str`` enums."""

from enum import StrEnum


class TaskStatus(StrEnum):
    ACTIVE = "active"
    PAUSED = "paused"
    CANCELED = "canceled"
    COMPLETED = "completed"


#: A task in one of these states takes no further change (run_now, snooze, pause, PUT...).
TASK_FINAL = frozenset({TaskStatus.CANCELED, TaskStatus.COMPLETED})


class RunStatus(StrEnum):
    PENDING = "pending"
    QUEUED = "queued"
    RUNNING = "running"
    SUCCEEDED = "succeeded"
    FAILED = "failed"
    DEDUPED = "deduped"
    SKIPPED = "skipped"
    CANCELED = "canceled"


#: A run in one of these states never changes again.
RUN_TERMINAL = frozenset(
    {
        RunStatus.SUCCEEDED,
        RunStatus.FAILED,
        RunStatus.DEDUPED,
        RunStatus.SKIPPED,
        RunStatus.CANCELED,
    }
)


class Trigger(StrEnum):
    SCHEDULE = "schedule"
    RUN_NOW = "run_now"
    EVENT = "event"
    BACKFILL = "backfill"


class ScheduleKind(StrEnum):
    CRON = "cron"
    RRULE = "rrule"
    ONCE = "once"
    EVENT = "event"


class BackoffStrategy(StrEnum):
    EXPONENTIAL_JITTER = "exponential_jitter"
    LINEAR = "linear"
    FIXED = "fixed"


class OverlapPolicy(StrEnum):
    """What a new run does while an earlier run of its task is in progress."""

    ALLOW = "allow"
    SKIP = "skip"
    BUFFER_ONE = "buffer_one"
    CANCEL_RUNNING = "cancel_running"


class MisfirePolicy(StrEnum):
    RUN_ONCE = "run_once"
    SKIP = "skip"
    RUN_ALL = "run_all"
