"""Per-agent limits in Redis: the defaults the processes publish, the admin's overrides, and
what an agent uses against them.

The Lua gates (``lua/includes/chime_agent_*.lua``) read ``max_running`` and
``max_runs_per_minute`` from the agent's override hash, else from the defaults hash every
process writes at start-up from its settings (``publish_defaults``), so a worker and a
scheduler hold the same limits without passing them along with every run.
"""

from dataclasses import dataclass
from datetime import UTC, datetime

import redis

from app import clock
from app.core.limits import WINDOW_MS, Limits, check_min_interval
from app.core.schedules import parse_schedule
from app.core.schedules.budget import Budget
from app.core.status import ScheduleKind
from app.core.task import Task
from app.settings import Settings
from app.store import scripts
from app.store.keys import Keys


@dataclass(frozen=True)
class Usage:
    #: active + paused tasks (what ``max_tasks`` counts)
    tasks: int
    active_tasks: int
    #: runs running now
    running: int
    #: runs holding one of the agent's slots: queued on RQ or running
    in_flight: int
    #: runs waiting ``pending`` for a slot
    waiting: int
    #: attempts started in the last 60 s (what ``max_runs_per_minute`` counts)
    runs_last_minute: int

    def to_json(self) -> dict[str, int]:
        return {
            "tasks": self.tasks,
            "active_tasks": self.active_tasks,
            "running": self.running,
            "in_flight": self.in_flight,
            "waiting": self.waiting,
            "runs_last_minute": self.runs_last_minute,
        }


def publish_defaults(client: redis.Redis, keys: Keys, settings: Settings) -> None:
    """Write the default limits (and the slot lease) where the Lua gates read them."""
    mapping: dict[str, int] = dict(settings.default_limits.to_json())
    mapping["lease_ms"] = clock.ms(settings.semaphore_lease_seconds)
    client.hset(keys.default_limits, mapping=mapping)  # type: ignore[arg-type]


def agent_limits(client: redis.Redis, keys: Keys, settings: Settings, agent: str) -> Limits:
    """The agent's limits: the settings' defaults with the admin's overrides applied."""
    raw = client.hgetall(keys.limits(agent))
    return settings.default_limits.with_overrides({_s(k): _s(v) for k, v in raw.items()})


def set_overrides(client: redis.Redis, keys: Keys, agent: str, overrides: dict[str, int]) -> None:
    if not overrides:
        return
    client.hset(keys.limits(agent), mapping=dict(overrides))  # type: ignore[arg-type]


def usage(client: redis.Redis, keys: Keys, agent: str, now_ms: int) -> Usage:
    slots = keys.agent_slots(agent)
    with client.pipeline(transaction=False) as pipe:
        pipe.zcard(keys.index(agent, "active", None))
        pipe.zcard(keys.index(agent, "paused", None))
        pipe.zrangebyscore(slots, f"({now_ms}", "+inf")
        pipe.llen(keys.agent_waiting(agent))
        pipe.zcount(keys.agent_starts(agent), f"({now_ms - WINDOW_MS}", "+inf")
        active, paused, holders, waiting, started = pipe.execute()
    with client.pipeline(transaction=False) as pipe:
        for run_id in holders:
            pipe.hget(keys.run(_s(run_id)), "status")
        statuses = [_s(s) for s in pipe.execute() if s is not None]
    return Usage(
        tasks=int(active) + int(paused),
        active_tasks=int(active),
        running=statuses.count("running"),
        in_flight=sum(1 for s in statuses if s in ("queued", "running")),
        waiting=int(waiting),
        runs_last_minute=int(started),
    )


def _s(value: object) -> str:
    return value.decode() if isinstance(value, bytes) else str(value)


#: the schedule kinds whose occurrences ``min_interval_seconds`` spaces out
INTERVAL_KINDS = frozenset({ScheduleKind.CRON, ScheduleKind.RRULE})


def check_interval(client: redis.Redis, keys: Keys, settings: Settings, task: Task) -> None:
    """A cron or rrule task whose consecutive occurrences come closer than its agent's
    ``min_interval_seconds`` is refused (``ValidationError`` on ``schedule_expr``)."""
    if task.schedule_kind not in INTERVAL_KINDS:
        return
    minimum = agent_limits(client, keys, settings, task.created_by).min_interval_seconds
    check_interval_against(task, minimum)


def check_interval_against(task: Task, minimum: int) -> None:
    """:func:`check_interval` with the agent's ``min_interval_seconds`` already read (the create
    script reads it, ``lua/create_task.lua``)."""
    if task.schedule_kind not in INTERVAL_KINDS or minimum <= 1:
        return  # occurrences are whole seconds apart: nothing to look at
    start = datetime.fromtimestamp(task.created_at / 1000, UTC)
    schedule = parse_schedule(task.schedule_kind, task.schedule_expr, task.timezone, start)
    budget = Budget()  # one bound for the whole check, as for one occurrence
    check_min_interval(
        lambda t: schedule.next_after(t, budget), schedule.first(start, budget), minimum
    )


#: agents one sweep of the waiting lines looks at
FILL_BATCH = 100


def hand_free_slots(
    client: redis.Redis, keys: Keys, settings: Settings, now_ms: int
) -> list[tuple[str, int]]:
    """Give slots freed by a lapsed lease to the runs waiting for them (``lua/fill_agents.lua``);
    returns ``(run_id, priority)`` of the runs to enqueue."""
    flat = scripts.script(client, "fill_agents")(
        keys=[keys.awaiting, keys.outbox],
        args=[now_ms, clock.ms(settings.enqueue_grace_seconds), keys.run(""), FILL_BATCH],
    )
    return [(_s(flat[i]), int(flat[i + 1])) for i in range(0, len(flat) - 1, 2)]
