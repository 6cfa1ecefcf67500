"""Request and response bodies of the HTTP API, as msgspec structs, and their one decoder.

A request body is decoded once, strictly, from the raw bytes into its struct (:func:`decode`):
``"5"`` is not an int, an unknown field is a 400 naming it, and every ``Meta`` limit is checked
on the way. The task's fields come from their one declaration, :class:`TaskSpec`: ``PUT`` takes
:data:`TaskChanges` (every field optional, derived from it) and the response :class:`TaskOut`
extends it. The same structs generate the OpenAPI schema (``app/api/openapi.py``). Response
timestamps are RFC 3339 with a ``Z``; internal fields (``sched_version``, a run's ``agent_id``
and ``priority``) stay inside.
"""

import re
from itertools import accumulate
from typing import Annotated, Any, Literal, TypeVar

import msgspec
from msgspec import UNSET, Meta, UnsetType

from app import clock
from app.core import wholenumbers
from app.core.errors import ValidationError
from app.core.status import RunStatus, TaskStatus, Trigger
from app.core.task import Run, Task
from app.core.taskspec import TaskSpec

_S = TypeVar("_S", bound=msgspec.Struct)

MAX_SNOOZE_SECONDS = 604_800
REASON_MAX = 500
EVENT_NAME_MAX = 200
AGENT_NAME_MAX = 200


def _optional(annotation: Any) -> Any:
    return annotation | UnsetType


#: ``PUT /tasks/{id}``: any field of :class:`TaskSpec`, all optional (absent is UNSET); null
#: clears the nullable ones. Derived, so a new task field needs no change here.
TaskChanges: type[msgspec.Struct] = msgspec.defstruct(
    "TaskChanges",
    [
        (f.name, _optional(TaskSpec.__annotations__[f.name]), UNSET)
        for f in msgspec.inspect.type_info(TaskSpec).fields  # type: ignore[attr-defined]
    ],
    kw_only=True,
    forbid_unknown_fields=True,
    module=__name__,
)


class SnoozeRequest(msgspec.Struct, kw_only=True, forbid_unknown_fields=True):
    """``POST /tasks/{id}/snooze``."""

    delay_seconds: Annotated[
        int,
        Meta(
            ge=1,
            le=MAX_SNOOZE_SECONDS,
            description="seconds added to next_run_at; occurrences before that are skipped",
        ),
    ]
    reason: Annotated[str, Meta(max_length=REASON_MAX, examples=["maintenance window"])] | None = (
        None
    )


class EventRequest(msgspec.Struct, kw_only=True, forbid_unknown_fields=True):
    """``POST /events``."""

    name: Annotated[
        str,
        Meta(
            min_length=1,
            max_length=EVENT_NAME_MAX,
            description="matched against each event task's schedule_expr (exact or glob)",
            examples=["invoice.paid"],
        ),
    ]
    data: Annotated[
        dict[str, Any],
        Meta(description="given to the runs as {{ event.data.FIELD }}", examples=[{"id": "INV-7"}]),
    ] = msgspec.field(default_factory=dict)


class AgentCreate(msgspec.Struct, kw_only=True, forbid_unknown_fields=True):
    """``POST /agents``."""

    name: Annotated[
        str,
        Meta(
            min_length=1,
            max_length=AGENT_NAME_MAX,
            pattern=r"\S",
            description="kept without surrounding spaces",
            examples=["billing-bot"],
        ),
    ]


# -- responses ------------------------------------------------------------------------------


class TaskOut(TaskSpec, kw_only=True, forbid_unknown_fields=True):
    """A task as the API shows it: every :class:`TaskSpec` field, defaults filled in, and what
    the server maintains."""

    id: str
    status: TaskStatus
    next_run_at: str | None
    last_run_at: str | None
    snoozed_until: str | None
    snooze_reason: str | None
    pause_reason: Annotated[
        str | None,
        Meta(
            description='why Chime paused the task: "agent revoked" (only the admin may resume '
            "it), or a schedule whose next occurrence could not be computed; null otherwise"
        ),
    ] = None
    created_at: str
    updated_at: str
    run_count: int


class RunOut(msgspec.Struct, kw_only=True, forbid_unknown_fields=True):
    id: str
    task_id: str
    status: RunStatus
    trigger: Trigger
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
    on_failure_steps: Annotated[
        list[dict[str, Any]] | None,
        Meta(description="records of payload.on_failure steps, once run after the last attempt"),
    ]


class TaskPage(msgspec.Struct, kw_only=True, forbid_unknown_fields=True):
    items: list[TaskOut]
    total: int
    limit: int
    offset: int


class RunPage(msgspec.Struct, kw_only=True, forbid_unknown_fields=True):
    items: list[RunOut]
    total: int
    limit: int
    offset: int


class EventOut(msgspec.Struct, kw_only=True, forbid_unknown_fields=True):
    event_id: str
    runs: list[RunOut]


class AgentOut(msgspec.Struct, kw_only=True, forbid_unknown_fields=True):
    agent_id: str
    name: str
    created_at: str | None


class AgentCreated(msgspec.Struct, kw_only=True, forbid_unknown_fields=True):
    """The token appears here once; only its hash is stored."""

    agent_id: str
    name: str
    token: str


class AgentList(msgspec.Struct, kw_only=True, forbid_unknown_fields=True):
    items: list[AgentOut]


class Health(msgspec.Struct, kw_only=True, forbid_unknown_fields=True):
    status: Literal["ok", "unavailable"]
    redis: Annotated[str, Meta(description='"ok", or "error: <exception class>"')]


class Problem(msgspec.Struct, kw_only=True, forbid_unknown_fields=True):
    key: Annotated[str, Meta(description="the field at fault: payload.steps[0].action")]
    message: str
    source: Literal["body", "query", "header", "path", "cookie"]


class Error(msgspec.Struct, kw_only=True, forbid_unknown_fields=True):
    """Every error answer: Litestar's body."""

    status_code: int
    detail: str


class BadRequest(msgspec.Struct, kw_only=True, forbid_unknown_fields=True):
    """A 400: ``detail`` is ``"<field>: <reason>"``; ``extra`` names each field at fault."""

    status_code: Literal[400]
    detail: str
    extra: list[Problem]


class ConflictState(msgspec.Struct, kw_only=True, forbid_unknown_fields=True):
    status: Annotated[
        str,
        Meta(description="the task's status, or why a change racing others was given up"),
    ]


class Conflict(msgspec.Struct, kw_only=True, forbid_unknown_fields=True):
    """A 409: the task's current status forbids the change."""

    status_code: Literal[409]
    detail: str
    extra: ConflictState


class LimitState(msgspec.Struct, kw_only=True, forbid_unknown_fields=True):
    limit: Annotated[str, Meta(description="the limit reached, e.g. `max_tasks`")]
    value: Annotated[int, Meta(description="its value for this agent")]


class LimitReached(msgspec.Struct, kw_only=True, forbid_unknown_fields=True):
    """A 429: one of the agent's limits is reached; ``detail`` names it."""

    status_code: Literal[429]
    detail: str
    extra: LimitState


class AgentLimits(msgspec.Struct, kw_only=True, forbid_unknown_fields=True):
    """An agent's limits (defaults from the settings, changed per agent by the admin)."""

    max_tasks: Annotated[int, Meta(description="active + paused tasks; over it POST /tasks is 429")]
    max_running: Annotated[
        int, Meta(description="runs queued or running at once; further runs wait `pending`")
    ]
    max_runs_per_minute: Annotated[
        int, Meta(description="attempts started in any 60 s; further runs wait `pending`")
    ]
    min_interval_seconds: Annotated[
        int, Meta(description="shortest gap between two occurrences of a cron/rrule; else 400")
    ]


class LimitsChange(msgspec.Struct, kw_only=True, forbid_unknown_fields=True):
    """``PUT /agents/{id}/limits``: any of the limits; the others keep their value."""

    max_tasks: Annotated[int, Meta(ge=1, le=10_000_000)] | None = None
    max_running: Annotated[int, Meta(ge=1, le=100_000)] | None = None
    max_runs_per_minute: Annotated[int, Meta(ge=1, le=10_000_000)] | None = None
    min_interval_seconds: Annotated[int, Meta(ge=1, le=86_400)] | None = None


class AgentUsage(msgspec.Struct, kw_only=True, forbid_unknown_fields=True):
    tasks: Annotated[int, Meta(description="active + paused tasks (counted by max_tasks)")]
    active_tasks: int
    running: Annotated[int, Meta(description="runs running now")]
    in_flight: Annotated[
        int, Meta(description="runs holding a slot of max_running: queued on RQ or running")
    ]
    waiting: Annotated[int, Meta(description="runs waiting `pending` for a slot")]
    runs_last_minute: Annotated[
        int, Meta(description="attempts started in the last 60 s (counted by max_runs_per_minute)")
    ]


class AgentMe(msgspec.Struct, kw_only=True, forbid_unknown_fields=True):
    """``GET /agents/me``."""

    agent_id: str
    name: Annotated[str | None, Meta(description="null for a CHIME_AGENT_TOKENS agent")]
    limits: AgentLimits
    usage: AgentUsage


class AgentLimitsOut(msgspec.Struct, kw_only=True, forbid_unknown_fields=True):
    """``PUT /agents/{id}/limits``: the agent's limits now."""

    agent_id: str
    limits: AgentLimits


#: record fields the API does not show
_HIDDEN = frozenset(Task.__struct_fields__) - frozenset(TaskOut.__struct_fields__)


def task_out(task: Task) -> TaskOut:
    fields = msgspec.structs.asdict(task)
    for name in _HIDDEN:
        del fields[name]
    fields.update(
        status=TaskStatus(task.status),
        next_run_at=clock.iso(task.next_run_at),
        last_run_at=clock.iso(task.last_run_at),
        snoozed_until=clock.iso(task.snoozed_until),
        created_at=clock.iso(task.created_at) or "",
        updated_at=clock.iso(task.updated_at) or "",
    )
    return TaskOut(**fields)


def run_out(run: Run) -> RunOut:
    return RunOut(
        id=run.id,
        task_id=run.task_id,
        status=RunStatus(run.status),
        trigger=Trigger(run.trigger),
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
        on_failure_steps=run.on_failure_steps,
    )


#: deeper bodies are refused whole, as the JSON decoder refuses them
MAX_DEPTH = 1000
_STRING = re.compile(rb'"(?:[^"\\]|\\.)*"')
_STEP = {ord("["): 1, ord("{"): 1, ord("]"): -1, ord("}"): -1}
_AT = re.compile(r"^(.*) - at `\$(.*)`$")
_NAMED = re.compile(r"^Object (missing required|contains unknown) field `([^`]*)`$")


def decode(raw: bytes, cls: type[_S]) -> _S:
    """The body as ``cls``, decoded in one strict pass; a 400 naming the field otherwise.

    Strict except for one thing: an int written ``5.0`` is read as 5 (JSON Schema counts it an
    integer); ``"5"``, ``5.5`` and ``true`` are refused."""
    try:
        return msgspec.json.decode(raw, type=cls, strict=True)
    except msgspec.ValidationError as exc:
        if wholenumbers.is_float_for_int(exc):
            return _decode_whole_numbers(raw, cls)
        if _depth(raw) > MAX_DEPTH:
            # the type check stopped before the depth did: report what the decoder would
            raise ValidationError("body", "nested too deeply") from None
        field, reason = _locate(str(exc))
        raise ValidationError(field, reason) from None
    except msgspec.DecodeError as exc:
        raise ValidationError("body", f"malformed JSON: {exc}") from None


def _decode_whole_numbers(raw: bytes, cls: type[_S]) -> _S:
    """The slow path of :func:`decode` for a body that writes an int as ``5.0``."""
    try:
        return wholenumbers.convert(msgspec.json.decode(raw), cls)
    except msgspec.ValidationError as exc:
        field, reason = _locate(str(exc))
        raise ValidationError(field, reason) from None


def _depth(raw: bytes) -> int:
    """The deepest nesting of arrays and objects in a JSON text (only read on the error path)."""
    text = _STRING.sub(b"", raw)
    return max(accumulate(_STEP.get(c, 0) for c in text), default=0)


def _locate(message: str) -> tuple[str, str]:
    """msgspec's message as (dotted field path, reason)."""
    m = _AT.match(message)
    reason, path = (m.group(1), m.group(2).lstrip(".")) if m else (message, "")
    named = _NAMED.match(reason)
    if reason == "Number out of range":
        # a number no JSON decoder can hold (1e400): the text is at fault, not the field
        return "body", f"malformed JSON: number out of range at {path or 'the top'}"
    if named:
        path = f"{path}.{named.group(2)}" if path else named.group(2)
        reason = "required" if named.group(1) == "missing required" else "unknown field"
    elif not path and reason.startswith("Expected `object`"):
        reason = "a JSON object body is required"
    return path or "body", reason
