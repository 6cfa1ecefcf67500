"""``/tasks``: create, list, read, change, and the state transitions of a task; its runs.

Create, list and read are ``async`` on the asyncio task store (``Api.tasks``): they are the
busiest, and a thread hop per request costs more than their own work; they take the request
and gather the ``Api`` themselves (:func:`app.api.deps.provide_api`), as Litestar's resolution
of a dependency costs more than the provider. The others are synchronous (the store is), run in
a thread and take ``Api`` as their one dependency. A body is taken raw and decoded
once, strictly, into its struct (:func:`decode`), so ``"5"`` for an int is a 400 rather than
silently coerced; ``opt=answers(...)`` states what each operation answers, for the OpenAPI
document.
"""

import uuid
from typing import Annotated, Any

import msgspec
from litestar import Controller, Request, Response, get, post, put
from litestar.params import FromPath, FromQuery, HeaderParameter, QueryParameter, RawBody

from app import clock
from app.api.auth import AUTHENTICATE
from app.api.deps import AGENT_DEPENDENCIES, ApiDep, provide_api
from app.api.openapi import AUTHED, WITH_BODY, answers
from app.api.schemas import (
    RunOut,
    RunPage,
    SnoozeRequest,
    TaskChanges,
    TaskOut,
    TaskPage,
    decode,
    run_out,
    task_out,
)
from app.core.errors import Conflict, Forbidden
from app.core.pipeline import secret_names
from app.core.status import RunStatus, ScheduleKind, TaskStatus
from app.core.task import SCHEDULE_FIELDS
from app.core.taskspec import TaskSpec, changed_fields, new_task, spec_fields
from app.service import tasks as service
from app.store import history
from app.store.limits import check_interval
from app.store.secrets import check_secrets_exist

MAX_LIMIT = 500
DEFAULT_LIMIT = 50
#: a page further than this is refused (400) rather than passed to Redis as a huge index
MAX_OFFSET = 1_000_000_000
IDEMPOTENCY_KEY_MAX = 200
#: visible ASCII, inner spaces allowed: what survives an HTTP header unchanged
IDEMPOTENCY_KEY_PATTERN = r"^[!-~]([ -~]*[!-~])?$"

Limit = Annotated[int, QueryParameter(ge=1, le=MAX_LIMIT, description=f"page size, 1..{MAX_LIMIT}")]
Offset = Annotated[int, QueryParameter(ge=0, le=MAX_OFFSET, description="items to skip, >= 0")]
IdempotencyKey = Annotated[
    str | None,
    HeaderParameter(
        name="Idempotency-Key",
        min_length=1,
        max_length=IDEMPOTENCY_KEY_MAX,
        pattern=IDEMPOTENCY_KEY_PATTERN,
        description="a repeat within 24 h by the same agent returns the first task (200); "
        "visible ASCII characters, spaces only inside",
    ),
]


class TaskController(Controller):
    """Tasks of the calling agent (every agent's for the admin token)."""

    path = "/tasks"
    tags = ("tasks",)
    middleware = AUTHENTICATE
    dependencies = AGENT_DEPENDENCIES
    security = ({"BearerToken": []},)

    @post(
        "/",
        status_code=201,
        opt=answers(
            {201: TaskOut, 200: TaskOut},
            body=TaskSpec,
            errors=(*AUTHED, *WITH_BODY, 403, 429),
            headers={
                201: {"Location": "/tasks/{id}"},
                200: {"Location": "/tasks/{id} of the first task"},
            },
        ),
    )
    async def create_task(
        self,
        body: RawBody,
        request: Request[Any, Any, Any],
        idempotency_key: IdempotencyKey = None,
    ) -> Response[TaskOut]:
        """Create a task: 201; 200 with the first task when the Idempotency-Key was seen."""
        api = provide_api(request)
        spec = decode(body, TaskSpec)
        if not api.caller.is_admin and str(spec.created_by) != api.caller.agent_id:
            raise Forbidden("created_by must be your own agent id")
        task = new_task(spec, task_id=str(uuid.uuid4()), now_ms=clock.now_ms())
        stored, created = await api.tasks.create(task, idempotency_key, planned=True, checked=True)
        return Response(
            task_out(stored),
            status_code=201 if created else 200,
            headers={"Location": f"/tasks/{stored.id}"},
        )

    @get("/", opt=answers({200: TaskPage}, errors=(*AUTHED, 400)))
    async def list_tasks(
        self,
        request: Request[Any, Any, Any],
        status: FromQuery[TaskStatus | None] = None,
        created_by: FromQuery[uuid.UUID | None] = None,
        schedule_kind: FromQuery[ScheduleKind | None] = None,
        limit: Limit = DEFAULT_LIMIT,
        offset: Offset = 0,
    ) -> TaskPage:
        """A page of tasks, newest first; an agent only ever sees its own."""
        api = provide_api(request)
        agent = api.caller.agent_id
        if created_by is not None:
            if agent is not None and str(created_by) != agent:
                return TaskPage(items=[], total=0, limit=limit, offset=offset)
            agent = str(created_by)
        tasks, total = await api.tasks.list(
            agent=agent,
            status=status.value if status else None,
            kind=schedule_kind.value if schedule_kind else None,
            limit=limit,
            offset=offset,
        )
        return TaskPage(items=[task_out(t) for t in tasks], total=total, limit=limit, offset=offset)

    @get("/{task_id:str}", opt=answers({200: TaskOut}, errors=(*AUTHED, 404)))
    async def get_task(self, task_id: FromPath[str], request: Request[Any, Any, Any]) -> TaskOut:
        api = provide_api(request)
        return task_out(await api.tasks.get(task_id, api.caller.agent_id))

    @put(
        "/{task_id:str}",
        sync_to_thread=True,
        opt=answers({200: TaskOut}, body=TaskChanges, errors=(*AUTHED, *WITH_BODY, 404, 409)),
    )
    def update_task(
        self,
        task_id: FromPath[str],
        body: RawBody,
        api: ApiDep,
    ) -> TaskOut:
        """Change the given fields, validated as on create against the resulting task."""
        given = spec_fields(decode(body, TaskChanges))
        task = api.store.get(task_id, api.caller.agent_id)
        if task.status == TaskStatus.CANCELED:
            raise Conflict("update", task.status)
        changes = changed_fields(task, given)
        if SCHEDULE_FIELDS.intersection(changes):
            moved = {k: v for k, v in changes.items() if k in SCHEDULE_FIELDS}
            check_interval(
                api.client, api.keys, api.settings, msgspec.structs.replace(task, **moved)
            )
        if "payload" in changes:
            refs = secret_names(changes["payload"])
            check_secrets_exist(api.client, api.keys, task.created_by, refs)
        return task_out(api.store.update(task_id, changes, api.caller.agent_id))

    @post(
        "/{task_id:str}/run_now",
        sync_to_thread=True,
        status_code=202,
        opt=answers({202: RunOut}, errors=(*AUTHED, 404, 409)),
    )
    def run_now(
        self,
        task_id: FromPath[str],
        api: ApiDep,
    ) -> RunOut:
        """One run now, outside the schedule (queued, or deduped by the dedupe window); counted
        in the stats as the scheduler counts scheduled runs."""
        return run_out(service.run_now(api.backend, task_id, api.caller.agent_id))

    @post(
        "/{task_id:str}/snooze",
        sync_to_thread=True,
        status_code=200,
        opt=answers({200: TaskOut}, body=SnoozeRequest, errors=(*AUTHED, *WITH_BODY, 404, 409)),
    )
    def snooze(
        self,
        task_id: FromPath[str],
        body: RawBody,
        api: ApiDep,
    ) -> TaskOut:
        """Move the next occurrence by ``delay_seconds``; occurrences before it are skipped."""
        req = decode(body, SnoozeRequest)
        return task_out(
            api.store.snooze(task_id, req.delay_seconds, req.reason, api.caller.agent_id)
        )

    @post(
        "/{task_id:str}/pause",
        sync_to_thread=True,
        status_code=200,
        opt=answers({200: TaskOut}, errors=(*AUTHED, 404, 409)),
    )
    def pause(self, task_id: FromPath[str], api: ApiDep) -> TaskOut:
        return task_out(api.store.pause(task_id, api.caller.agent_id))

    @post(
        "/{task_id:str}/resume",
        sync_to_thread=True,
        status_code=200,
        opt=answers({200: TaskOut}, errors=(*AUTHED, 403, 404, 409)),
    )
    def resume(self, task_id: FromPath[str], api: ApiDep) -> TaskOut:
        return task_out(api.store.resume(task_id, api.caller.agent_id))

    @post(
        "/{task_id:str}/cancel",
        sync_to_thread=True,
        status_code=200,
        opt=answers({200: TaskOut}, errors=(*AUTHED, 404, 409)),
    )
    def cancel(self, task_id: FromPath[str], api: ApiDep) -> TaskOut:
        """Cancel for good; runs that had not started end ``canceled`` and leave RQ."""
        return task_out(service.cancel_task(api.backend, task_id, api.caller.agent_id))

    @get(
        "/{task_id:str}/runs",
        sync_to_thread=True,
        opt=answers({200: RunPage}, errors=(*AUTHED, 400, 404)),
    )
    def list_runs(
        self,
        task_id: FromPath[str],
        api: ApiDep,
        status: FromQuery[RunStatus | None] = None,
        limit: Limit = DEFAULT_LIMIT,
        offset: Offset = 0,
    ) -> RunPage:
        """The task's recent runs, newest first (the last ``CHIME_RUN_HISTORY`` are kept)."""
        api.store.get(task_id, api.caller.agent_id)
        runs, total = history.list_runs(
            api.client, api.keys, task_id, status.value if status else None, limit, offset
        )
        return RunPage(items=[run_out(r) for r in runs], total=total, limit=limit, offset=offset)
