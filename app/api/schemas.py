"""Request and response bodies of the HTTP API, as msgspec structs.

Request structs carry the contract's limits as ``Meta`` constraints (they also document the
OpenAPI schema) and refuse unknown fields, so a misspelt field is a 400 rather than silently
ignored. Bodies are decoded strictly (:func:`decode_body`): ``"5"`` is not an int.
Response structs show the contract's fields with RFC 3339 ``Z`` timestamps; internal fields
(``sched_version``, a run's ``agent_id`` and ``priority``) stay inside.
"""

import re
from typing import Annotated, Any, TypeVar
from uuid import UUID

import msgspec
from msgspec import UNSET, Meta, UnsetType

from app import clock
from app.core.errors import ValidationError
from app.core.status import BackoffStrategy, MisfirePolicy, RunStatus, ScheduleKind, TaskStatus
from app.core.task import Run, Task
from app.core.taskspec import DESCRIPTION_MAX, KEY_MAX, RANGES, TITLE_MAX

_S = TypeVar("_S", bound=msgspec.Struct)

MAX_SNOOZE_SECONDS = 604_800
REASON_MAX = 500
EVENT_NAME_MAX = 200


def _range(name: str) -> Meta:
    lo, hi = RANGES[name]
    return Meta(ge=lo, le=hi)


Title = Annotated[str, Meta(min_length=1, max_length=TITLE_MAX)]
Description = Annotated[str, Meta(max_length=DESCRIPTION_MAX)]
Key = Annotated[str, Meta(min_length=1, max_length=KEY_MAX)]
Priority = Annotated[int, _range("priority")]
MaxRetries = Annotated[int, _range("max_retries")]
DedupeWindow = Annotated[int, _range("dedupe_window_seconds")]
ConcurrencyLimit = Annotated[int, _range("concurrency_limit")]
RetryDelay = Annotated[float, _range("retry_delay_seconds")]
RetryMaxDelay = Annotated[float, _range("retry_max_delay_seconds")]
Timezone = Annotated[str, Meta(min_length=1, max_length=64)]


class TaskCreate(msgspec.Struct, kw_only=True, forbid_unknown_fields=True):
    """``POST /tasks``."""

    title: Title
    description: Description
    schedule_kind: ScheduleKind
    schedule_expr: str | None = None
    timezone: Timezone = "UTC"
    payload: dict[str, Any]
    created_by: UUID
    priority: Priority = 5
    max_retries: MaxRetries = 3
    backoff_strategy: BackoffStrategy = BackoffStrategy.EXPONENTIAL_JITTER
    dedupe_key: Key | None = None
    dedupe_window_seconds: DedupeWindow | None = None
    concurrency_key: Key | None = None
    concurrency_limit: ConcurrencyLimit = 1
    retry_delay_seconds: RetryDelay = 10.0
    retry_max_delay_seconds: RetryMaxDelay = 3600.0
    misfire_policy: MisfirePolicy = MisfirePolicy.RUN_ONCE


class TaskUpdate(msgspec.Struct, kw_only=True, forbid_unknown_fields=True):
    """``PUT /tasks/{id}``: every field optional; null clears the optional ones."""

    title: Title | UnsetType = UNSET
    description: Description | UnsetType = UNSET
    schedule_kind: ScheduleKind | UnsetType = UNSET
    schedule_expr: str | UnsetType | None = UNSET
    timezone: Timezone | UnsetType = UNSET
    payload: dict[str, Any] | UnsetType = UNSET
    created_by: UUID | UnsetType = UNSET
    priority: Priority | UnsetType = UNSET
    max_retries: MaxRetries | UnsetType = UNSET
    backoff_strategy: BackoffStrategy | UnsetType = UNSET
    dedupe_key: Key | UnsetType | None = UNSET
    dedupe_window_seconds: DedupeWindow | UnsetType | None = UNSET
    concurrency_key: Key | UnsetType | None = UNSET
    concurrency_limit: ConcurrencyLimit | UnsetType = UNSET
    retry_delay_seconds: RetryDelay | UnsetType = UNSET
    retry_max_delay_seconds: RetryMaxDelay | UnsetType = UNSET
    misfire_policy: MisfirePolicy | UnsetType = UNSET


class SnoozeRequest(msgspec.Struct, kw_only=True, forbid_unknown_fields=True):
    """``POST /tasks/{id}/snooze``."""

    delay_seconds: Annotated[int, Meta(ge=1, le=MAX_SNOOZE_SECONDS)]
    reason: Annotated[str, Meta(max_length=REASON_MAX)] | None = None


class EventRequest(msgspec.Struct, kw_only=True, forbid_unknown_fields=True):
    """``POST /events``."""

    name: Annotated[str, Meta(min_length=1, max_length=EVENT_NAME_MAX)]
    data: dict[str, Any] = msgspec.field(default_factory=dict)


class AgentCreate(msgspec.Struct, kw_only=True, forbid_unknown_fields=True):
    """``POST /agents``."""

    name: Annotated[str, Meta(min_length=1, max_length=200)]


# -- responses ------------------------------------------------------------------------------


class TaskOut(msgspec.Struct, kw_only=True):
    id: str
    title: str
    description: str
    schedule_kind: ScheduleKind
    schedule_expr: str | None
    timezone: str
    payload: dict[str, Any]
    created_by: str
    priority: int
    max_retries: int
    backoff_strategy: BackoffStrategy
    dedupe_key: str | None
    dedupe_window_seconds: int | None
    concurrency_key: str | None
    concurrency_limit: int
    retry_delay_seconds: float
    retry_max_delay_seconds: float
    misfire_policy: MisfirePolicy
    status: TaskStatus
    next_run_at: str | None
    last_run_at: str | None
    snoozed_until: str | None
    snooze_reason: str | None
    created_at: str
    updated_at: str
    run_count: int


class RunOut(msgspec.Struct, kw_only=True):
    id: str
    task_id: str
    status: RunStatus
    trigger: str
    scheduled_for: str | None
    enqueued_at: str | None
    started_at: str | None
    finished_at: str | None
    attempt: int
    max_attempts: int
    next_attempt_at: str | None
    error: str | None
    steps: list[dict[str, Any]]
    event: dict[str, Any] | None


class TaskPage(msgspec.Struct, kw_only=True):
    items: list[TaskOut]
    total: int
    limit: int
    offset: int


class RunPage(msgspec.Struct, kw_only=True):
    items: list[RunOut]
    total: int
    limit: int
    offset: int


class EventOut(msgspec.Struct, kw_only=True):
    event_id: str
    runs: list[RunOut]


class AgentOut(msgspec.Struct, kw_only=True):
    agent_id: str
    name: str
    created_at: str | None


class AgentCreated(msgspec.Struct, kw_only=True):
    """The token appears here once; only its hash is stored."""

    agent_id: str
    name: str
    token: str


class AgentList(msgspec.Struct, kw_only=True):
    items: list[AgentOut]


class Health(msgspec.Struct, kw_only=True):
    status: str
    redis: str


def task_out(task: Task) -> TaskOut:
    return TaskOut(
        id=task.id,
        title=task.title,
        description=task.description,
        schedule_kind=ScheduleKind(task.schedule_kind),
        schedule_expr=task.schedule_expr,
        timezone=task.timezone,
        payload=task.payload,
        created_by=task.created_by,
        priority=task.priority,
        max_retries=task.max_retries,
        backoff_strategy=BackoffStrategy(task.backoff_strategy),
        dedupe_key=task.dedupe_key,
        dedupe_window_seconds=task.dedupe_window_seconds,
        concurrency_key=task.concurrency_key,
        concurrency_limit=task.concurrency_limit,
        retry_delay_seconds=task.retry_delay_seconds,
        retry_max_delay_seconds=task.retry_max_delay_seconds,
        misfire_policy=MisfirePolicy(task.misfire_policy),
        status=TaskStatus(task.status),
        next_run_at=clock.iso(task.next_run_at),
        last_run_at=clock.iso(task.last_run_at),
        snoozed_until=clock.iso(task.snoozed_until),
        snooze_reason=task.snooze_reason,
        created_at=clock.iso(task.created_at) or "",
        updated_at=clock.iso(task.updated_at) or "",
        run_count=task.run_count,
    )


def run_out(run: Run) -> RunOut:
    return RunOut(
        id=run.id,
        task_id=run.task_id,
        status=RunStatus(run.status),
        trigger=run.trigger,
        scheduled_for=clock.iso(run.scheduled_for),
        enqueued_at=clock.iso(run.enqueued_at),
        started_at=clock.iso(run.started_at),
        finished_at=clock.iso(run.finished_at),
        attempt=run.attempt,
        max_attempts=run.max_attempts,
        next_attempt_at=clock.iso(run.next_attempt_at),
        error=run.error,
        steps=run.steps,
        event=run.event,
    )


def fields_of(body: msgspec.Struct) -> dict[str, Any]:
    """The fields a request gave (UNSET left out), as plain values (UUIDs and enums as str)."""
    out: dict[str, Any] = {}
    for name in body.__struct_fields__:
        value = getattr(body, name)
        if value is UNSET:
            continue
        if isinstance(value, UUID | str):
            value = str(value)
        out[name] = value
    return out


_AT = re.compile(r"^(.*) - at `\$(.*)`$")


def decode_body(raw: bytes, cls: type[_S]) -> _S:
    """Decode a JSON body strictly (no ``"5"`` for 5, no ``5.0`` for an int).

    Litestar's own decoding coerces such values; handlers decode their raw body again with
    this, so a wrong type is a 400 naming the field.
    """
    try:
        return msgspec.json.decode(raw, type=cls, strict=True)
    except msgspec.ValidationError as exc:
        field, reason = _locate(str(exc))
        raise ValidationError(field, reason) from None
    except msgspec.DecodeError as exc:
        raise ValidationError("body", f"malformed JSON: {exc}") from None


def _locate(message: str) -> tuple[str, str]:
    """msgspec's message as (dotted field path, reason)."""
    m = _AT.match(message)
    if m is None:
        found = re.search(r"field `([^`]*)`", message)
        return (found.group(1) if found else "body"), message
    path = m.group(2).lstrip(".")
    found = re.search(r"field `([^`]*)`", m.group(1))
    if found:
        path = f"{path}.{found.group(1)}" if path else found.group(1)
    return path or "body", m.group(1)
