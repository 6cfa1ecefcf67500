"""Request fields to a :class:`Task`: defaults, ranges, cross-field rules, schedule and pipeline.

Pure (no I/O, no clock): the HTTP layer and the command line both build tasks here, so a task
that reaches the store has passed the same checks whichever way it came in. Every refusal is a
:class:`ValidationError` (or ``ScheduleError``/``PipelineError``) naming the field.
"""

import uuid
from collections.abc import Mapping
from typing import Any

import msgspec

from app import clock
from app.core.errors import ValidationError
from app.core.pipeline import parse_pipeline, pipeline_payload
from app.core.schedules import parse_schedule
from app.core.status import BackoffStrategy, MisfirePolicy, ScheduleKind
from app.core.task import TASK_INPUT_FIELDS, Task

TITLE_MAX = 200
DESCRIPTION_MAX = 10_000
KEY_MAX = 200
DEFAULT_DEDUPE_WINDOW = 3600
#: numeric fields: (lowest, highest)
RANGES: Mapping[str, tuple[float, float]] = {
    "priority": (1, 9),
    "max_retries": (0, 25),
    "dedupe_window_seconds": (1, 604_800),
    "concurrency_limit": (1, 1000),
    "retry_delay_seconds": (0, 86_400),
    "retry_max_delay_seconds": (0, 604_800),
}
#: fields a PUT may set to null (the field is then cleared)
NULLABLE_FIELDS = frozenset(
    {"schedule_expr", "dedupe_key", "dedupe_window_seconds", "concurrency_key"}
)
REQUIRED_FIELDS = ("title", "description", "schedule_kind", "payload", "created_by")
_CHOICES: Mapping[str, frozenset[str]] = {
    "schedule_kind": frozenset(k.value for k in ScheduleKind),
    "backoff_strategy": frozenset(b.value for b in BackoffStrategy),
    "misfire_policy": frozenset(m.value for m in MisfirePolicy),
}
_INT_FIELDS = frozenset({"priority", "max_retries", "dedupe_window_seconds", "concurrency_limit"})


def new_task(fields: Mapping[str, Any], *, task_id: str, now_ms: int) -> Task:
    """A validated task from POST fields (absent or None fields take their defaults)."""
    _reject_unknown(fields)
    data = {k: v for k, v in fields.items() if v is not None}
    for name in REQUIRED_FIELDS:
        if name not in data:
            raise ValidationError(name, "required")
    if data.get("schedule_kind") != ScheduleKind.EVENT and "schedule_expr" not in data:
        _check_choice("schedule_kind", data["schedule_kind"])
        raise ValidationError("schedule_expr", f"required for {data['schedule_kind']} schedules")
    try:
        task = Task(id=task_id, created_at=now_ms, updated_at=now_ms, **data)
    except TypeError as exc:
        raise ValidationError("body", str(exc)) from None
    if task.dedupe_key is not None and task.dedupe_window_seconds is None:
        task.dedupe_window_seconds = DEFAULT_DEDUPE_WINDOW
    return validated(task)


def changed_fields(task: Task, changes: Mapping[str, Any]) -> dict[str, Any]:
    """The fields a PUT really changes, validated against the task they produce.

    ``changes`` holds only the fields the request gave; None clears a nullable field. Clearing
    ``dedupe_key`` clears its window too; setting a key on a task without one gives the default
    window. ``created_by`` may be repeated but not changed.
    """
    _reject_unknown(changes)
    given = dict(changes)
    if "created_by" in given and given.pop("created_by") != task.created_by:
        raise ValidationError("created_by", "cannot change: a task keeps its agent")
    for name, value in given.items():
        if value is None and name not in NULLABLE_FIELDS:
            raise ValidationError(name, "cannot be null")
    merged = msgspec.structs.replace(task, **given)
    if "dedupe_key" in given and "dedupe_window_seconds" not in given:
        if merged.dedupe_key is None:
            merged.dedupe_window_seconds = None
        elif merged.dedupe_window_seconds is None:
            merged.dedupe_window_seconds = DEFAULT_DEDUPE_WINDOW
    new = validated(merged)
    return {
        name: getattr(new, name)
        for name in TASK_INPUT_FIELDS
        if getattr(new, name) != getattr(task, name)
    }


def validated(task: Task) -> Task:
    """Check every rule on a whole task; returns it with its pipeline normalized."""
    _check_text("title", task.title, TITLE_MAX, min_length=1)
    _check_text("description", task.description, DESCRIPTION_MAX)
    _check_uuid("created_by", task.created_by)
    for name in ("dedupe_key", "concurrency_key"):
        value = getattr(task, name)
        if value is not None:
            _check_text(name, value, KEY_MAX, min_length=1)
    for name, choices in _CHOICES.items():
        _check_choice(name, getattr(task, name), choices)
    for name, (lo, hi) in RANGES.items():
        _check_number(name, getattr(task, name), lo, hi)
    if task.retry_max_delay_seconds < task.retry_delay_seconds:
        raise ValidationError(
            "retry_max_delay_seconds",
            f"must be >= retry_delay_seconds ({task.retry_delay_seconds:g})",
        )
    if task.dedupe_key is None and task.dedupe_window_seconds is not None:
        raise ValidationError("dedupe_window_seconds", "only applies with a dedupe_key")
    parse_schedule(
        task.schedule_kind, task.schedule_expr, task.timezone, clock.from_ms(task.created_at)
    )
    payload = pipeline_payload(parse_pipeline(task.payload))
    return msgspec.structs.replace(task, payload=payload)


def _reject_unknown(fields: Mapping[str, Any]) -> None:
    for name in fields:
        if name not in TASK_INPUT_FIELDS:
            raise ValidationError(name, "unknown field")


def _check_text(name: str, value: object, max_length: int, min_length: int = 0) -> None:
    if not isinstance(value, str):
        raise ValidationError(name, "must be a string")
    if not min_length <= len(value) <= max_length:
        raise ValidationError(name, f"must be {min_length}..{max_length} characters")


def _check_uuid(name: str, value: object) -> None:
    try:
        canonical = str(uuid.UUID(str(value)))
    except ValueError:
        raise ValidationError(name, "must be a UUID") from None
    if canonical != value:
        raise ValidationError(name, f"must be a lowercase UUID such as {canonical}")


def _check_choice(name: str, value: object, choices: frozenset[str] | None = None) -> None:
    allowed = _CHOICES[name] if choices is None else choices
    if value not in allowed:
        raise ValidationError(name, "must be one of " + ", ".join(sorted(allowed)))


def _check_number(name: str, value: object, lo: float, hi: float) -> None:
    if value is None:
        return
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise ValidationError(name, "must be a number")
    if name in _INT_FIELDS and not isinstance(value, int):
        raise ValidationError(name, "must be a whole number")
    if not lo <= value <= hi:
        raise ValidationError(name, f"must be between {lo:g} and {hi:g}")
