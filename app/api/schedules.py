"""What a schedule will fire: ``GET /tasks/{id}/upcoming`` and ``POST /schedules/preview``.

Both answer with the code the scheduler runs (``app/core/upcoming.py`` replays
``plan_occurrence``), so what they show is what will fire. The preview's fields are declared by
:class:`TaskSpec` itself, so a bad schedule is refused with the very 400 ``POST /tasks`` gives.
"""

from datetime import datetime
from typing import Annotated

import msgspec
from litestar import Controller, get, post
from litestar.params import FromPath, QueryParameter, RawBody
from msgspec import Meta

from app import clock
from app.api.auth import AUTHENTICATE
from app.api.deps import AGENT_DEPENDENCIES, ApiDep
from app.api.openapi import AUTHED, WITH_BODY, answers
from app.api.schemas import decode
from app.core.planning import first_run_at
from app.core.status import ScheduleKind, TaskStatus
from app.core.task import Task
from app.core.taskspec import TaskSpec
from app.core.upcoming import DEFAULT_COUNT, MAX_COUNT, upcoming

_SCHEDULE_FIELDS = ("schedule_kind", "schedule_expr", "timezone")
_AFTER = Annotated[
    datetime,
    Meta(
        tz=True,
        description="show what a task created at this instant would fire (default: now)",
        examples=["2026-12-01T00:00:00Z"],
    ),
]

Count = Annotated[
    int, QueryParameter(ge=1, le=MAX_COUNT, description=f"how many fire times, 1..{MAX_COUNT}")
]

#: ``POST /schedules/preview``: the schedule fields of :class:`TaskSpec` (their declarations,
#: defaults and limits), what to show of it.
SchedulePreview: type[msgspec.Struct] = msgspec.defstruct(
    "SchedulePreview",
    [
        *(
            (f.name, TaskSpec.__annotations__[f.name], f.default)
            if f.required is False
            else (f.name, TaskSpec.__annotations__[f.name])
            for f in msgspec.inspect.type_info(TaskSpec).fields  # type: ignore[attr-defined]
            if f.name in _SCHEDULE_FIELDS
        ),
        (
            "count",
            Annotated[int, Meta(ge=1, le=MAX_COUNT, description=f"fire times, 1..{MAX_COUNT}")],
            DEFAULT_COUNT,
        ),
        ("after", _AFTER | None, None),
    ],
    kw_only=True,
    forbid_unknown_fields=True,
    module=__name__,
)


class FireTimes(msgspec.Struct, kw_only=True, forbid_unknown_fields=True):
    """The instants runs will start, ascending, RFC 3339 in UTC."""

    items: list[str]


def _times(found: list[int]) -> FireTimes:
    return FireTimes(items=[clock.iso(t) or "" for t in found])


class UpcomingController(Controller):
    """The next fire times of one of the calling agent's tasks."""

    path = "/tasks"
    tags = ("tasks",)
    middleware = AUTHENTICATE
    dependencies = AGENT_DEPENDENCIES
    security = ({"BearerToken": []},)

    @get(
        "/{task_id:str}/upcoming",
        sync_to_thread=True,
        opt=answers({200: FireTimes}, errors=(*AUTHED, 404)),
    )
    def upcoming(
        self, task_id: FromPath[str], api: ApiDep, count: Count = DEFAULT_COUNT
    ) -> FireTimes:
        """Snooze, jitter and the rule's end included; a task that is not active has none."""
        task = api.store.get(task_id, api.caller.agent_id)
        grace = clock.ms(api.settings.misfire_grace_seconds)
        return _times(upcoming(task, clock.now_ms(), grace, count))


class PreviewController(Controller):
    """What a schedule would fire, without creating a task."""

    path = "/schedules"
    tags = ("schedules",)
    middleware = AUTHENTICATE
    dependencies = AGENT_DEPENDENCIES
    security = ({"BearerToken": []},)

    @post(
        "/preview",
        sync_to_thread=True,
        status_code=200,
        opt=answers({200: FireTimes}, body=SchedulePreview, errors=(*AUTHED, *WITH_BODY)),
    )
    def preview(self, body: RawBody, api: ApiDep) -> FireTimes:
        """The fire times of a task created with this schedule (at ``after``, default now)."""
        req = msgspec.structs.asdict(decode(body, SchedulePreview))
        after: datetime | None = req.pop("after")
        count: int = req.pop("count")
        at = clock.now_ms() if after is None else clock.to_ms(after)
        kind = ScheduleKind(req.pop("schedule_kind"))
        task = Task(
            id="preview",
            title="preview",
            description="",
            schedule_kind=kind,
            payload={},
            created_by="",
            created_at=at,
            updated_at=at,
            **req,
        )
        # the schedule check of POST /tasks, then the first occurrence as create stores it
        nxt = first_run_at(task, at)
        if nxt is None or kind == ScheduleKind.EVENT:
            return FireTimes(items=[])
        task.next_run_at = nxt
        task.status = TaskStatus.ACTIVE
        grace = clock.ms(api.settings.misfire_grace_seconds)
        return _times(upcoming(task, at, grace, count))
