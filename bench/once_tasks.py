"""The tasks the scheduler and throughput benchmarks create: ``once`` tasks of one agent, made
through the task store as ``POST /tasks`` makes them (imported by the scripts beside it)."""

import uuid
from collections.abc import Sequence
from typing import Any

from app import clock
from app.core.status import ScheduleKind
from app.core.task import Task
from app.store.tasks import TaskStore

AGENT = "5b0c6a1e-2f3d-4e5f-8a9b-0c1d2e3f4a5b"
LOG_PAYLOAD: dict[str, Any] = {
    "steps": [{"name": "hello", "action": "log", "params": {"message": "hi"}}]
}


def once_task(at_ms: int, payload: dict[str, Any] = LOG_PAYLOAD) -> Task:
    """A ``once`` task due at ``at_ms``, created now."""
    now = clock.now_ms()
    return Task(
        id=str(uuid.uuid4()),
        title="bench",
        description="",
        schedule_kind=ScheduleKind.ONCE,
        schedule_expr=clock.iso(at_ms) or "",
        payload=payload,
        created_by=AGENT,
        created_at=now,
        updated_at=now,
    )


def create_once(
    store: TaskStore, times: Sequence[int], payload: dict[str, Any] = LOG_PAYLOAD
) -> list[str]:
    """One ``once`` task per due time, through the store; their ids, in order."""
    ids = []
    for at in times:
        task = once_task(at, payload)
        store.create(task)
        ids.append(task.id)
    return ids
