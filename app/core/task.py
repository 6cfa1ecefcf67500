"""The task and run records as the domain sees them (times are epoch milliseconds, UTC)."""

from typing import Any

import msgspec

from app.core.status import (
    BackoffStrategy,
    MisfirePolicy,
    OverlapPolicy,
    RunStatus,
    ScheduleKind,
    TaskStatus,
    Trigger,
)


class Task(msgspec.Struct, kw_only=True):
    """A stored task: the fields of ``app.core.taskspec.TaskSpec`` (same names and defaults,
    kept in step by a test) plus what the server maintains."""

    id: str
    title: str
    description: str
    schedule_kind: ScheduleKind
    schedule_expr: str | None = None
    timezone: str = "UTC"
    payload: dict[str, Any]
    created_by: str
    priority: int = 5
    max_retries: int = 3
    backoff_strategy: BackoffStrategy = BackoffStrategy.EXPONENTIAL_JITTER
    dedupe_key: str | None = None
    dedupe_window_seconds: int | None = None
    concurrency_key: str | None = None
    concurrency_limit: int = 1
    retry_delay_seconds: float = 10.0
    retry_max_delay_seconds: float = 3600.0
    misfire_policy: MisfirePolicy = MisfirePolicy.RUN_ONCE
    overlap_policy: OverlapPolicy = OverlapPolicy.ALLOW
    jitter_seconds: int = 0
    status: TaskStatus = TaskStatus.ACTIVE
    next_run_at: int | None = None
    last_run_at: int | None = None
    snoozed_until: int | None = None
    snooze_reason: str | None = None
    #: why the system paused the task (``agent revoked``, a schedule that failed); None when
    #: it was paused by a caller, or is not paused
    pause_reason: str | None = None
    created_at: int
    updated_at: int
    run_count: int = 0
    #: the nominal occurrence ``next_run_at`` fires for, when jitter moved it (else None)
    next_occurrence: int | None = None
    #: bumped by every change that owns the task's place in ``due`` (schedule change, snooze,
    #: pause, resume, cancel); a scheduler commit made against an older version is dropped
    sched_version: int = 0


#: Changing any of these recomputes ``next_run_at``.
SCHEDULE_FIELDS = frozenset({"schedule_kind", "schedule_expr", "timezone", "jitter_seconds"})


class Run(msgspec.Struct, kw_only=True):
    id: str
    task_id: str
    agent_id: str
    status: RunStatus = RunStatus.QUEUED
    trigger: Trigger
    scheduled_for: int | None = None
    enqueued_at: int | None = None
    started_at: int | None = None
    finished_at: int | None = None
    attempt: int = 1
    max_attempts: int = 1
    next_attempt_at: int | None = None
    error: str | None = None
    steps: list[dict[str, Any]] = msgspec.field(default_factory=list)
    event: dict[str, Any] | None = None
    #: the records of ``payload.on_failure`` steps, once they ran after the last attempt
    on_failure_steps: list[dict[str, Any]] | None = None
    priority: int = 5
    created_at: int
