"""Emitting an event (``POST /events`` and the ``event.emit`` action)."""

from typing import Any

from app.core.status import Trigger
from app.core.task import Run
from app.service.backend import Backend
from app.service.dispatch import Made, dispatch
from app.store.events import create_event_runs


def emit_event(
    backend: Backend, agent_id: str, name: str, data: dict[str, Any] | None, depth: int = 0
) -> tuple[str, list[Run]]:
    """Emit an event of ``agent_id``: create its runs (``app/store/events.py``), count them and
    put the queued ones on RQ.

    Returns (event id, the runs: ``queued``, ``deduped``, ``skipped``, or ``pending`` for a
    snoozed task or a full agent). ``depth``: 0 for ``POST /events``, one more than the
    emitting run's event for ``event.emit``.
    """
    event_id, runs = create_event_runs(
        backend.client, backend.keys, backend.settings, agent_id, name, data, depth
    )
    dispatch(backend, (Made(r.id, r.status, r.priority, Trigger.EVENT) for r in runs))
    return event_id, runs
