"""Task and run records as the API would build them."""

import uuid
from typing import Any

from app import clock
from app.core.pipeline import parse_pipeline, pipeline_payload
from app.core.status import RunStatus, ScheduleKind, Trigger
from app.core.task import Run, Task
from tests.support.agents import AGENT

LOG_STEP: dict[str, Any] = {"name": "hello", "action": "log", "params": {"message": "hi"}}
LOG_PIPELINE: dict[str, Any] = {"steps": [LOG_STEP]}


def make_task(steps: list[dict[str, Any]] | None = None, **fields: Any) -> Task:
    """A task record: an every-minute cron task of :data:`AGENT` with one ``log`` step, created
    now (the task store fills in ``next_run_at``). ``steps`` gives the pipeline (normalized as
    the API stores it); any field can be given."""
    now = clock.now_ms()
    payload = pipeline_payload(parse_pipeline({"steps": steps or [LOG_STEP]}))
    record: dict[str, Any] = {
        "id": str(uuid.uuid4()),
        "title": "t",
        "description": "",
        "schedule_kind": ScheduleKind.CRON,
        "schedule_expr": "* * * * *",
        "payload": payload,
        "created_by": AGENT,
        "created_at": now,
        "updated_at": now,
    }
    record.update(fields)
    return Task(**record)


def make_run(task: Task, **fields: Any) -> Run:
    """A queued ``run_now`` run of ``task``, created now; any field can be given."""
    record: dict[str, Any] = {
        "id": str(uuid.uuid4()),
        "task_id": task.id,
        "agent_id": task.created_by,
        "trigger": Trigger.RUN_NOW,
        "scheduled_for": clock.now_ms(),
        "created_at": clock.now_ms(),
        "max_attempts": task.max_retries + 1,
        "priority": task.priority,
        "status": RunStatus.QUEUED,
    }
    record.update(fields)
    return Run(**record)
