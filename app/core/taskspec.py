"""The fields an agent sets on a task, declared once, and the rules that need the whole task.

:class:`TaskSpec` is the one declaration of the input fields: their types, defaults, limits,
descriptions and examples. Decoding a body into it (strictly: ``"5"`` is not an int) is the
field-level validation; the API derives its ``PUT`` struct and its OpenAPI schema from it, so a
new field is one annotated line here (and, for storage, one on the :class:`Task` record, which a
test keeps in step). What one field cannot say alone (a schedule that parses, a valid pipeline,
``retry_max_delay_seconds >= retry_delay_seconds``) is checked by :func:`validated` on the whole
task. Pure: no I/O, no clock; every refusal is a :class:`ValidationError` naming the field.
"""

import uuid
from collections.abc import Mapping
from typing import Annotated, Any, cast

import msgspec
from msgspec import Meta

from app.core.errors import ValidationError
from app.core.pipeline import parse_pipeline, pipeline_payload
from app.core.planning import plan_new, task_schedule
from app.core.schedules import EVENT_EXPR_MAX, Schedule
from app.core.status import BackoffStrategy, MisfirePolicy, OverlapPolicy, ScheduleKind
from app.core.task import Task

TITLE_MAX = 200
DESCRIPTION_MAX = 10_000
KEY_MAX = 200
TIMEZONE_MAX = 64
SCHEDULE_EXPR_MAX = 4096
DEFAULT_DEDUPE_WINDOW = 3600
MAX_DEDUPE_WINDOW = 604_800
MAX_JITTER = 3600

Key = Annotated[str, Meta(min_length=1, max_length=KEY_MAX)]


class TaskSpec(msgspec.Struct, kw_only=True, forbid_unknown_fields=True):
    """A task as an agent writes it (``POST /tasks``; ``PUT`` takes any subset)."""

    title: Annotated[
        str,
        Meta(
            min_length=1,
            max_length=TITLE_MAX,
            description="a short name for people and agents",
            examples=["nightly report"],
        ),
    ]
    description: Annotated[
        str,
        Meta(max_length=DESCRIPTION_MAX, description="what the task is for; may be empty"),
    ]
    schedule_kind: Annotated[ScheduleKind, Meta(description="how schedule_expr is read")]
    schedule_expr: (
        Annotated[
            str,
            Meta(
                max_length=SCHEDULE_EXPR_MAX,
                description=(
                    "a cron expression, an RFC 5545 RRULE, an RFC 3339 time or an event name "
                    "pattern, as schedule_kind says; required except for event tasks"
                ),
            ),
        ]
        | None
    ) = None
    timezone: Annotated[
        str,
        Meta(
            min_length=1,
            max_length=TIMEZONE_MAX,
            description="an IANA time zone name; the schedule is read on its wall clock",
            examples=["Europe/Paris"],
            extra_json_schema={"format": "iana-timezone"},
        ),
    ] = "UTC"
    payload: Annotated[
        dict[str, Any],
        Meta(description='the pipeline a run executes: {"steps": [step, ...]}'),
    ]
    created_by: Annotated[
        uuid.UUID,
        Meta(description="the calling agent's id (the admin token may give any agent's)"),
    ]
    priority: Annotated[int, Meta(ge=1, le=9, description="1 runs first")] = 5
    max_retries: Annotated[int, Meta(ge=0, le=25, description="retries after a failed attempt")] = 3
    backoff_strategy: Annotated[
        BackoffStrategy, Meta(description="how the delay before each retry grows")
    ] = BackoffStrategy.EXPONENTIAL_JITTER
    dedupe_key: (
        Annotated[
            str,
            Meta(
                min_length=1,
                max_length=KEY_MAX,
                description="runs of this agent holding the same key within the window are deduped",
            ),
        ]
        | None
    ) = None
    dedupe_window_seconds: (
        Annotated[
            int,
            Meta(
                ge=1,
                le=MAX_DEDUPE_WINDOW,
                description=f"only with a dedupe_key; {DEFAULT_DEDUPE_WINDOW} when a key is set",
            ),
        ]
        | None
    ) = None
    concurrency_key: (
        Annotated[
            str,
            Meta(
                min_length=1,
                max_length=KEY_MAX,
                description="runs of this agent sharing the key share concurrency_limit",
            ),
        ]
        | None
    ) = None
    concurrency_limit: Annotated[
        int, Meta(ge=1, le=1000, description="runs of the concurrency_key running at once")
    ] = 1
    retry_delay_seconds: Annotated[float, Meta(ge=0, le=86_400, description="the backoff base")] = (
        10.0
    )
    retry_max_delay_seconds: Annotated[
        float,
        Meta(ge=0, le=604_800, description="the cap of every retry delay; >= retry_delay_seconds"),
    ] = 3600.0
    misfire_policy: Annotated[
        MisfirePolicy, Meta(description="what happens to occurrences missed while no scheduler ran")
    ] = MisfirePolicy.RUN_ONCE
    overlap_policy: Annotated[
        OverlapPolicy,
        Meta(
            description=(
                "a new run while an earlier one is in progress: allow runs both, skip ends the "
                "new one skipped, buffer_one makes it wait for the earlier one (a third is "
                "skipped), cancel_running cancels the earlier one"
            )
        ),
    ] = OverlapPolicy.ALLOW
    jitter_seconds: Annotated[
        int,
        Meta(
            ge=0,
            le=MAX_JITTER,
            description=(
                "each scheduled occurrence fires up to this many seconds late, by an offset "
                "fixed per (task, occurrence); next_run_at shows the instant"
            ),
        ),
    ] = 0


#: Task fields an agent may set (POST) or change (PUT), in declaration order.
INPUT_FIELDS: tuple[str, ...] = TaskSpec.__struct_fields__
#: fields a PUT may set to null (the field is then cleared)
NULLABLE_FIELDS = frozenset(
    f.name
    for f in cast(msgspec.inspect.StructType, msgspec.inspect.type_info(TaskSpec)).fields
    if f.default is None
)


def _any_case(word: str) -> str:
    return "".join(f"[{c.upper()}{c.lower()}]" if c.isalpha() else c for c in word)


_CRON_ALIASES = ("@hourly", "@daily", "@midnight", "@weekly", "@monthly", "@yearly", "@annually")
_CRON_PATTERN = (
    r"^\s*("
    + "|".join(_any_case(a) for a in _CRON_ALIASES)
    + r"|[0-9A-Za-z*?/,#-]+(\s+[0-9A-Za-z*?/,#-]+){4,5})\s*$"
)

#: What ``schedule_expr`` holds for each kind: its schema (the API documents each kind as its
#: own variant of the task) and an example task body of that kind.
SCHEDULE_EXPR: Mapping[ScheduleKind, Meta] = {
    ScheduleKind.CRON: Meta(
        min_length=1,
        max_length=SCHEDULE_EXPR_MAX,
        pattern=_CRON_PATTERN,
        description=(
            "5 fields (minute hour day-of-month month day-of-week), or 6 with seconds last, "
            "or @hourly, @daily, @weekly, @monthly, @yearly; read on the timezone's wall clock. "
            "An expression that can never fire (0 0 30 2 *) is refused."
        ),
        examples=["30 2 * * *", "*/15 9-17 * * 1-5", "@daily"],
        extra_json_schema={"format": "cron"},
    ),
    ScheduleKind.RRULE: Meta(
        min_length=1,
        max_length=SCHEDULE_EXPR_MAX,
        pattern=r"(^|[\s:;])" + _any_case("FREQ="),
        description=(
            "an RFC 5545 RRULE line, optionally after a DTSTART line (DTSTART;TZID=Zone:... or "
            "UTC); without DTSTART the rule starts when the task is created, in timezone. A rule "
            "whose COUNT/UNTIL is used up creates the task completed."
        ),
        examples=["FREQ=WEEKLY;BYDAY=MO,WE;BYHOUR=9;BYMINUTE=0", "RRULE:FREQ=DAILY;COUNT=10"],
        extra_json_schema={"format": "rrule"},
    ),
    ScheduleKind.ONCE: Meta(
        min_length=1,
        max_length=SCHEDULE_EXPR_MAX,
        pattern=(
            r"^\s*([0-9]{3}[1-9]|[0-9]{2}[1-9][0-9]|[0-9][1-9][0-9]{2}|[1-9][0-9]{3})"
            r"-(0[1-9]|1[0-2])-(0[1-9]|[12][0-9]|3[01])[Tt ]([01][0-9]|2[0-3]):[0-5][0-9]"
            r"(:[0-5][0-9]([.,][0-9]{1,9})?)?([Zz]|[+-]([01][0-9]|2[0-3]):[0-5][0-9])?\s*$"
        ),
        description=(
            "an RFC 3339 date and time; without an offset it is read in timezone. "
            "A time in the past runs as soon as possible."
        ),
        examples=["2026-12-24T18:00:00Z", "2026-12-24T18:00:00"],
        extra_json_schema={"format": "date-time-local"},
    ),
    ScheduleKind.EVENT: Meta(
        max_length=EVENT_EXPR_MAX,
        description=(
            "the event names that start a run: exact (invoice.paid) or a glob (invoice.*); "
            "empty or null: only run_now starts it"
        ),
        examples=["invoice.*"],
    ),
}

_LOG_STEPS = {"steps": [{"name": "say", "action": "log", "params": {"message": "hello"}}]}
#: One valid ``POST /tasks`` body of each schedule kind (``created_by`` is the caller's id).
EXAMPLES: Mapping[ScheduleKind, dict[str, Any]] = {
    ScheduleKind.CRON: {
        "title": "nightly report",
        "description": "post the report to the hook",
        "schedule_kind": "cron",
        "schedule_expr": "30 2 * * *",
        "timezone": "Europe/Chisinau",
        "created_by": "aaaaaaaa-0000-4000-8000-000000000001",
        "payload": {
            "steps": [
                {
                    "name": "post",
                    "action": "http.request",
                    "params": {
                        "method": "POST",
                        "url": "https://hooks.example.com/report",
                        "json": {"run": "{{ run.id }}"},
                    },
                }
            ]
        },
        "dedupe_key": "nightly-report",
    },
    ScheduleKind.RRULE: {
        "title": "standup reminder",
        "description": "Mondays and Wednesdays at nine",
        "schedule_kind": "rrule",
        "schedule_expr": "DTSTART;TZID=Europe/Paris:20261207T090000\nRRULE:FREQ=WEEKLY;BYDAY=MO,WE",
        "created_by": "aaaaaaaa-0000-4000-8000-000000000001",
        "payload": _LOG_STEPS,
        "priority": 2,
    },
    ScheduleKind.ONCE: {
        "title": "send the invoice",
        "description": "",
        "schedule_kind": "once",
        "schedule_expr": "2026-12-24T18:00:00",
        "timezone": "America/New_York",
        "created_by": "aaaaaaaa-0000-4000-8000-000000000001",
        "payload": _LOG_STEPS,
        "max_retries": 5,
        "backoff_strategy": "linear",
    },
    ScheduleKind.EVENT: {
        "title": "on payment",
        "description": "thank the customer",
        "schedule_kind": "event",
        "schedule_expr": "invoice.*",
        "created_by": "aaaaaaaa-0000-4000-8000-000000000001",
        "payload": {
            "steps": [
                {
                    "name": "thank",
                    "action": "event.emit",
                    "params": {"name": "mail.thanks", "data": {"invoice": "{{ event.data.id }}"}},
                }
            ]
        },
        "concurrency_key": "mailer",
        "concurrency_limit": 5,
    },
}


def spec_fields(spec: msgspec.Struct) -> dict[str, Any]:
    """The fields a decoded request gave (UNSET left out), as the record holds them: UUIDs as
    their strings, enums as their members."""
    out: dict[str, Any] = {}
    for name in spec.__struct_fields__:
        value = getattr(spec, name)
        if value is msgspec.UNSET:
            continue
        if isinstance(value, uuid.UUID):
            value = str(value)
        out[name] = value
    return out


def new_task(spec: TaskSpec, *, task_id: str, now_ms: int) -> Task:
    """A validated task from a decoded POST body (absent or null fields take their defaults),
    planned (:func:`app.core.planning.plan_new`) with the schedule its validation parsed."""
    data = {k: v for k, v in spec_fields(spec).items() if v is not None}
    if spec.schedule_kind != ScheduleKind.EVENT and "schedule_expr" not in data:
        raise ValidationError("schedule_expr", f"required for {spec.schedule_kind} schedules")
    task = Task(id=task_id, created_at=now_ms, updated_at=now_ms, **data)
    if task.dedupe_key is not None and task.dedupe_window_seconds is None:
        task.dedupe_window_seconds = DEFAULT_DEDUPE_WINDOW
    return plan_new(*_checked(task))


def changed_fields(task: Task, changes: Mapping[str, Any]) -> dict[str, Any]:
    """The fields a PUT really changes, validated against the task they produce.

    ``changes`` holds only the fields the request gave, each already checked against its
    declaration; None clears a nullable field. Clearing ``dedupe_key`` clears its window too;
    setting a key on a task without one gives the default window. ``created_by`` may be
    repeated but not changed.
    """
    given = dict(changes)
    for name, value in given.items():
        if name not in INPUT_FIELDS:
            raise ValidationError(name, "unknown field")
        if value is None and name not in NULLABLE_FIELDS:
            raise ValidationError(name, "cannot be null")
    if "created_by" in given and given.pop("created_by") != task.created_by:
        raise ValidationError("created_by", "cannot change: a task keeps its agent")
    merged = msgspec.structs.replace(task, **given)
    if "dedupe_key" in given and "dedupe_window_seconds" not in given:
        if merged.dedupe_key is None:
            merged.dedupe_window_seconds = None
        elif merged.dedupe_window_seconds is None:
            merged.dedupe_window_seconds = DEFAULT_DEDUPE_WINDOW
    new = validated(merged)
    return {
        name: getattr(new, name)
        for name in INPUT_FIELDS
        if getattr(new, name) != getattr(task, name)
    }


def validated(task: Task) -> Task:
    """Check the rules that span fields on a whole task; returns it with its pipeline
    normalized. Each field on its own was checked against :class:`TaskSpec` when decoded."""
    return _checked(task)[0]


def _checked(task: Task) -> tuple[Task, Schedule]:
    """:func:`validated`, and the schedule it parsed."""
    if task.retry_max_delay_seconds < task.retry_delay_seconds:
        raise ValidationError(
            "retry_max_delay_seconds",
            f"must be >= retry_delay_seconds ({task.retry_delay_seconds:g})",
        )
    if task.dedupe_key is None and task.dedupe_window_seconds is not None:
        raise ValidationError("dedupe_window_seconds", "only applies with a dedupe_key")
    schedule = task_schedule(task)
    payload = pipeline_payload(parse_pipeline(task.payload))
    return msgspec.structs.replace(task, payload=payload), schedule
