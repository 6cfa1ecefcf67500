"""Revoking an agent stops its tasks as well as its token: every task of the agent is paused
with ``pause_reason: "agent revoked"`` (only the admin may resume it), its runs that have not
started are canceled and taken off RQ, and its running runs finish.

Minted agents are revoked by ``DELETE /agents/{id}`` / ``chime agents revoke``; a static agent
by taking it out of ``CHIME_AGENT_TOKENS``: the web process compares the static agents of its
settings with those the previous one published (:func:`sync_static_agents`) at start-up.
"""

import logging

from app.core.errors import NotFound
from app.core.limits import REVOKED
from app.service.backend import Backend
from app.service.dispatch import withdraw

log = logging.getLogger("chime.revocation")

#: error of the runs canceled by a revocation
REVOKED_RUN_ERROR = "canceled: the task's agent was revoked"


def stop_agent_tasks(backend: Backend, agent_id: str) -> int:
    """Pause every task of the agent and cancel its runs that have not started; returns how
    many tasks it went through. Safe to repeat (a crash half-way is finished by a repeat)."""
    client, keys, store = backend.client, backend.keys, backend.store
    task_ids = [str(t) for t in client.zrange(keys.index(agent_id, None, None), 0, -1)]
    queued: list[str] = []
    for task_id in task_ids:
        try:
            _, ids = store.pause_for(
                task_id, REVOKED, cancel_runs=True, run_error=REVOKED_RUN_ERROR
            )
        except NotFound:
            continue
        queued += ids
    withdraw(backend, queued)
    log.info("agent.revoked", extra={"agent_id": agent_id, "tasks": len(task_ids)})
    return len(task_ids)


def sync_static_agents(backend: Backend) -> list[str]:
    """Stop the tasks of the static agents the previous settings had and these do not (and
    that are not minted agents); publish these settings' static agents. Returns the removed."""
    client, keys = backend.client, backend.keys
    now = set(backend.settings.agent_tokens.values())
    before = {str(a) for a in client.smembers(keys.static_agents)}
    removed = sorted(a for a in before - now if not client.exists(keys.agent(a)))
    for agent_id in removed:
        stop_agent_tasks(backend, agent_id)
    with client.pipeline(transaction=True) as pipe:
        pipe.delete(keys.static_agents)
        if now:
            pipe.sadd(keys.static_agents, *sorted(now))
        pipe.execute()
    return removed
