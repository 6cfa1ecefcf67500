"""The scheduler's Redis operations: claims with leases, occurrence commits, delayed-run
release, the outbox sweep. What one due occurrence turns into is planned in
``app/core/planning.py``; the commit here applies that plan.

Each operation is one Lua script (``lua/claim_due.lua``, ``commit_occurrence.lua``,
``release_claims.lua``, ``release_delayed.lua``, ``sweep_outbox.lua``). The functions that
build a script call take an optional pipeline, so the scheduler sends a whole batch of commits
in one round trip; ``parse_*`` turn each reply into a record.
"""

import uuid
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

import redis

from app.clock import ms
from app.core.planning import Plan, occurrence_run_id
from app.core.status import RunStatus, TaskStatus
from app.core.task import Task
from app.settings import Settings
from app.store import scripts
from app.store.keys import Keys
from app.store.scripts import ErrorCode

Schedule = Literal["due", "delayed"]


# -- claims ----------------------------------------------------------------------------------


@dataclass(frozen=True)
class Claim:
    """A claimed member (task id or run id) and the token that proves the claim is ours."""

    member: str
    token: int


def _schedule_keys(keys: Keys, schedule: Schedule) -> tuple[str, str]:
    if schedule == "due":
        return keys.due, keys.claims
    return keys.delayed, keys.delayed_claims


def claim(
    client: redis.Redis,
    keys: Keys,
    schedule: Schedule,
    now_ms: int,
    lease_ms: int,
    limit: int,
) -> list[Claim]:
    """Claim up to ``limit`` due tasks (or delayed runs), lapsed claims of others first."""
    if lease_ms <= 0 or limit <= 0:
        raise ValueError("lease and batch size must be positive")
    source, claims = _schedule_keys(keys, schedule)
    flat = scripts.script(client, "claim_due")(
        keys=[source, claims, keys.claim_call(uuid.uuid4().hex)], args=[now_ms, lease_ms, limit]
    )
    return [Claim(str(flat[i]), int(flat[i + 1])) for i in range(0, len(flat), 2)]


def release_claims(
    client: redis.Redis, keys: Keys, schedule: Schedule, claims: Sequence[Claim]
) -> tuple[int, int]:
    """Give claims still ours back to their schedule at the time their record holds now.

    Returns (released, dropped): a record that no longer qualifies only loses its claim.
    """
    if not claims:
        return 0, 0
    source, claims_key = _schedule_keys(keys, schedule)
    status: TaskStatus | RunStatus
    if schedule == "due":
        records = [keys.task(c.member) for c in claims]
        time_field, status = "next_run_at", TaskStatus.ACTIVE
    else:
        records = [keys.run(c.member) for c in claims]
        time_field, status = "next_attempt_at", RunStatus.PENDING
    args: list[Any] = [keys.wake, time_field, status]
    for c in claims:
        args += [c.member, c.token]
    released, dropped = scripts.script(client, "release_claims")(
        keys=[source, claims_key, *records], args=args
    )
    return int(released), int(dropped)


# -- commits ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class Commit:
    """The reply of one occurrence commit.

    ``outcome``: ``committed`` (``runs`` made), ``released`` (the occurrence no longer stood:
    ``reason``), ``lost`` (the claim had been taken over).
    """

    outcome: Literal["committed", "released", "lost"]
    #: (run id, status, priority): status ``queued``, ``deduped``, ``pending``, ``skipped``, or
    #: ``exists`` for a run made before
    runs: list[tuple[str, str, int]] = field(default_factory=list)
    next_run_at: int | None = None
    completed: bool = False
    reason: str = ""


def commit_occurrence(
    client: redis.Redis,
    keys: Keys,
    settings: Settings,
    task: Task,
    token: int,
    plan: Plan,
    now_ms: int,
    pipe: Any = None,
) -> Any:
    """Send the commit of ``plan``; with ``pipe``, queue it there (parse the reply later)."""
    run_ids = [occurrence_run_id(task.id, at) for at in plan.runs]
    key_list = [
        keys.task(task.id),
        keys.due,
        keys.claims,
        keys.task_runs(task.id),
        keys.outbox,
        keys.delayed,
        *keys.indexes(task.created_by, TaskStatus.ACTIVE, task.schedule_kind),
        *keys.indexes(task.created_by, TaskStatus.COMPLETED, task.schedule_kind),
        *(keys.run(run_id) for run_id in run_ids),
    ]
    args: list[Any] = [
        now_ms,
        task.id,
        token,
        task.sched_version,
        plan.occurrence,
        "" if plan.next_run_at is None else plan.next_run_at,
        plan.mode,
        "1" if plan.clear_snooze else "0",
        keys.wake,
        keys.run(""),
        settings.run_history,
        ms(settings.enqueue_grace_seconds),
        "" if plan.next_occurrence is None else plan.next_occurrence,
    ]
    for run_id, at in zip(run_ids, plan.runs, strict=True):
        args += [run_id, at]
    return scripts.script(client, "commit_occurrence")(
        keys=key_list, args=args, client=pipe if pipe is not None else client
    )


def parse_commit(reply: Any) -> Commit:
    if scripts.is_error(reply):
        code = ErrorCode(reply[0])
        if code is ErrorCode.LOST:
            return Commit("lost")
        scripts.check(reply)
    if reply[0] == "released":
        return Commit("released", reason=str(reply[1]))
    runs = [(str(reply[i]), str(reply[i + 1]), int(reply[i + 2])) for i in range(3, len(reply), 3)]
    return Commit(
        "committed",
        runs=runs,
        next_run_at=int(reply[1]) if reply[1] != "" else None,
        completed=bool(int(reply[2])),
    )


# -- delayed runs ----------------------------------------------------------------------------


@dataclass(frozen=True)
class Release:
    """The reply of one delayed-run release.

    ``outcome``: ``queued`` / ``deduped`` (released; ``priority`` set), ``pending`` (released,
    but waiting for a slot or the window of its agent's limits), ``delayed`` (held until
    ``until``), ``dropped`` (not pending any more: ``detail`` is its status), ``lost``.
    """

    outcome: Literal["queued", "deduped", "pending", "delayed", "dropped", "lost"]
    priority: int = 5
    trigger: str = ""
    until: int | None = None
    detail: str = ""


def release_delayed(
    client: redis.Redis,
    keys: Keys,
    settings: Settings,
    run_id: str,
    token: int,
    now_ms: int,
    pipe: Any = None,
) -> Any:
    """Send the release of one claimed delayed run; with ``pipe``, queue it there (the script
    finds the run's task and dedupe window itself)."""
    key_list = [keys.run(run_id), keys.delayed, keys.delayed_claims, keys.outbox]
    args: list[Any] = [now_ms, run_id, token, ms(settings.enqueue_grace_seconds), keys.wake]
    return scripts.script(client, "release_delayed")(
        keys=key_list, args=args, client=pipe if pipe is not None else client
    )


def parse_release(reply: Any) -> Release:
    if scripts.is_error(reply):
        code = ErrorCode(reply[0])
        if code is ErrorCode.LOST:
            return Release("lost")
        scripts.check(reply)
    outcome = str(reply[0])
    if outcome in ("queued", "deduped", "pending"):
        return Release(outcome, priority=int(reply[1]), trigger=str(reply[2]))  # type: ignore[arg-type]
    if outcome == "delayed":
        return Release("delayed", until=int(reply[1]))
    return Release("dropped", detail=str(reply[1]))


# -- outbox ----------------------------------------------------------------------------------


def sweep_outbox(
    client: redis.Redis, keys: Keys, now_ms: int, grace_ms: int, limit: int
) -> list[str]:
    """Take up to ``limit`` queued runs whose enqueue was never confirmed (deadline passed)."""
    if grace_ms <= 0 or limit <= 0:
        raise ValueError("grace and batch size must be positive")
    found = scripts.script(client, "sweep_outbox")(
        keys=[keys.outbox], args=[now_ms, grace_ms, limit]
    )
    return [str(x) for x in found]
