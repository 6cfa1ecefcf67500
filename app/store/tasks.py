"""The task store: every change to a task is one Lua script over its hash, its listing indexes
and its place in ``due``.

The store decides a change from a snapshot of the task (its status and ``sched_version``) and the
script applies it only if the snapshot still holds; a stale snapshot is read again and retried,
so concurrent requests and a racing scheduler never interleave half-changes.
"""

import builtins
import uuid
from collections.abc import Callable, Mapping
from typing import Any, TypeVar

import msgspec
import redis
import redis.asyncio

from app import clock
from app.core.errors import Conflict, Forbidden, NotFound, ValidationError
from app.core.jitter import placed
from app.core.limits import REVOKED, TooManyTasks
from app.core.pipeline import secret_names
from app.core.planning import first_run_at, plan_new
from app.core.status import TASK_FINAL, ScheduleKind, TaskStatus
from app.core.task import SCHEDULE_FIELDS, Run, Task
from app.settings import Settings
from app.store import packed, scripts
from app.store.codec import encode_value, from_hash, to_hash
from app.store.keys import Keys
from app.store.limits import INTERVAL_KINDS, check_interval_against
from app.store.scripts import ErrorCode
from app.store.secrets import missing_secret

IDEMPOTENCY_TTL_MS = 24 * 3600 * 1000
_msgpack = msgspec.msgpack.Encoder()
#: what a transition plan returns: (script, KEYS, ARGV after now/status/version), or None
_Step = tuple[str, list[str], list[Any]] | None
_RETRIES = 20


class TaskStore:
    """Tasks in Redis for one key prefix; ``agent=None`` on a call means the admin."""

    def __init__(self, client: redis.Redis, keys: Keys, settings: Settings) -> None:
        self.r = client
        self.keys = keys
        self.settings = settings

    # -- reading ---------------------------------------------------------------------------

    def get(self, task_id: str, agent: str | None = None) -> Task:
        """The task, or :class:`NotFound` when it does not exist or is another agent's."""
        fields = self.r.hgetall(self.keys.task(task_id)) if _plausible_id(task_id) else {}
        return _owned(fields, task_id, agent)

    def list(
        self,
        *,
        agent: str | None,
        status: str | None = None,
        kind: str | None = None,
        limit: int = 50,
        offset: int = 0,
    ) -> tuple[builtins.list[Task], int]:
        """A page of tasks, newest first, read from one index: cost O(log N + limit)."""
        index = self.keys.index(agent, status, kind)
        total, ids = _page(self.r.pipeline(transaction=False), index, limit, offset).execute()
        if not ids:
            return [], int(total)
        hashes = _reads(self.r.pipeline(transaction=False), self.keys, ids).execute()
        return _tasks(hashes), int(total)

    # -- creating --------------------------------------------------------------------------

    def create(
        self,
        task: Task,
        idempotency_key: str | None = None,
        *,
        planned: bool = False,
        checked: bool = False,
    ) -> tuple[Task, bool]:
        """Store a new task, planned here (``next_run_at``, completed when nothing is left)
        unless ``planned`` says :func:`app.core.taskspec.new_task` did; with an idempotency
        key, a repeat by the same agent within 24 h returns the first task and ``False``.

        With ``checked``, the agent's checks that need Redis come first, in the same script
        call and before anything is written: a cron or rrule schedule against the agent's
        ``min_interval_seconds``, then the secrets the payload names (each a
        :class:`ValidationError`, as :func:`app.store.limits.check_interval` and
        :func:`app.store.secrets.check_secrets_exist` raise them)."""
        creation = _Creation(self.keys, self.settings, task, idempotency_key, planned, checked)
        create = scripts.script(self.r, "create_task")
        for _ in range(_RETRIES):
            done, first = creation.reply(create(keys=creation.keys, args=creation.args()))
            if not done:
                continue
            if first is not None:
                return self.get(first), False
            return task, True
        raise _busy(task.id)

    # -- changing --------------------------------------------------------------------------

    def update(self, task_id: str, changes: Mapping[str, Any], agent: str | None) -> Task:
        """Apply validated field changes; a changed schedule recomputes ``next_run_at``.

        A completed task whose schedule changes becomes active again when the new schedule has
        a next run; a schedule change also ends a snooze. A canceled task is a :class:`Conflict`.
        """

        def plan(task: Task, now: int) -> _Step:
            if task.status == TaskStatus.CANCELED:
                raise Conflict("update", task.status)
            given = dict(changes)
            due: str | int = "keep"
            status = task.status
            if any(f in given and given[f] != getattr(task, f) for f in SCHEDULE_FIELDS):
                # a new schedule starts clean: a snooze of the old one does not carry over
                given.update(snoozed_until=None, snooze_reason=None)
                changed = Task(**{**_as_dict(task), **given})
                nxt, occurrence = placed(changed, first_run_at(changed, now))
                given["next_occurrence"] = None if nxt is None else occurrence
                due = "clear" if task.status == TaskStatus.PAUSED or nxt is None else nxt
                if task.status != TaskStatus.PAUSED:
                    kind = given.get("schedule_kind", task.schedule_kind)
                    ends = nxt is None and kind != ScheduleKind.EVENT
                    status = TaskStatus.COMPLETED if ends else TaskStatus.ACTIVE
            kind = given.get("schedule_kind", task.schedule_kind)
            sets = [x for n, v in given.items() if v is not None for x in (n, encode_value(n, v))]
            deletes = ",".join(n for n, v in given.items() if v is None)
            return (
                "update_task",
                self._moving(task, status, kind),
                [due, self.keys.wake, status, deletes, *sets],
            )

        return self._transition(task_id, agent, plan)[0]

    def pause(self, task_id: str, agent: str | None) -> Task:
        """Pause: no scheduled or event runs. Idempotent; canceled or completed is a 409."""

        def plan(task: Task, now: int) -> _Step:
            if task.status == TaskStatus.PAUSED:
                return None
            if task.status in TASK_FINAL:
                raise Conflict("pause", task.status)
            return "pause_task", self._moving(task, TaskStatus.PAUSED), []

        return self._transition(task_id, agent, plan)[0]

    def resume(self, task_id: str, agent: str | None) -> Task:
        """Resume from now: occurrences missed while paused are not caught up.

        Idempotent on an active task; canceled (or completed) is a 409.
        """

        def plan(task: Task, now: int) -> _Step:
            if task.status == TaskStatus.ACTIVE:
                return None
            if task.status in TASK_FINAL:
                raise Conflict("resume", task.status)
            if task.pause_reason == REVOKED and agent is not None:
                raise Forbidden(
                    "this task was paused when its agent was revoked: only the admin may resume it"
                )
            nxt, occurrence = placed(task, first_run_at(task, now))
            ends = nxt is None and task.schedule_kind != ScheduleKind.EVENT
            status = TaskStatus.COMPLETED if ends else TaskStatus.ACTIVE
            return (
                "resume_task",
                self._moving(task, status),
                [
                    "" if nxt is None else nxt,
                    status,
                    self.keys.wake,
                    "" if occurrence is None else occurrence,
                ],
            )

        return self._transition(task_id, agent, plan)[0]

    def snooze(
        self, task_id: str, delay_seconds: int, reason: str | None, agent: str | None
    ) -> Task:
        """Move the next occurrence to ``next_run_at + delay``; canceled or completed is a 409."""

        def plan(task: Task, now: int) -> _Step:
            if task.status in TASK_FINAL:
                raise Conflict("snooze", task.status)
            base = now if task.next_run_at is None else task.next_run_at
            if base + clock.ms(delay_seconds) > clock.MAX_MS:
                raise ValidationError("delay_seconds", "would move the task past year 9999")
            keys = [self.keys.task(task.id), self.keys.due]
            return "snooze_task", keys, [clock.ms(delay_seconds), reason or "", self.keys.wake]

        return self._transition(task_id, agent, plan)[0]

    def cancel(self, task_id: str, agent: str | None) -> tuple[Task, builtins.list[str]]:
        """Cancel for good; returns the task and the ids of runs that were queued on RQ (the
        caller takes them off their queues). Repeating it changes nothing."""

        def plan(task: Task, now: int) -> _Step:
            if task.status == TaskStatus.CANCELED:
                return None
            runs_key = self.keys.task_runs(task.id)
            ckey = task.concurrency_key
            keys = [
                *self._moving(task, TaskStatus.CANCELED),
                runs_key,
                self.keys.delayed,
                self.keys.outbox,
                self.keys.semaphore_queue(task.created_by, ckey) if ckey else runs_key,
                self.keys.semaphore(task.created_by, ckey) if ckey else runs_key,
            ]
            lease_ms = clock.ms(self.settings.semaphore_lease_seconds)
            return "cancel_task", keys, [self.keys.run(""), lease_ms, self.keys.wake]

        task, result = self._transition(task_id, agent, plan)
        return task, builtins.list(result[1:])

    def run_now(self, task_id: str, agent: str | None) -> Run:
        """Create a run outside the schedule (``queued``, ``deduped`` by the task's dedupe
        window as it is now, ``pending`` or ``skipped``); the caller enqueues it on RQ.
        Another agent's task is a 404; canceled or completed is a 409."""
        task = self.get(task_id, agent)
        if task.status in TASK_FINAL:
            raise Conflict("run", task.status)
        run_id = str(uuid.uuid4())
        result = scripts.script(self.r, "run_now")(
            keys=[
                self.keys.task(task_id),
                self.keys.task_runs(task_id),
                self.keys.run(run_id),
                self.keys.outbox,
                self.keys.delayed,
            ],
            args=[
                clock.now_ms(),
                run_id,
                self.keys.run(""),
                self.settings.run_history,
                clock.ms(self.settings.enqueue_grace_seconds),
            ],
        )
        self._retry(result, task_id, "run")
        return from_hash(Run, self.r.hgetall(self.keys.run(run_id)))

    def pause_for(
        self, task_id: str, reason: str, *, cancel_runs: bool, run_error: str = ""
    ) -> tuple[Task, builtins.list[str]]:
        """Pause the task for a reason of the system's (``lua/pause_for.lua``), and with
        ``cancel_runs`` cancel its runs that have not started; returns the task and the ids of
        canceled runs that were queued on RQ (the caller takes them off their queues)."""

        def plan(task: Task, now: int) -> _Step:
            if task.status == TaskStatus.PAUSED and task.pause_reason == reason and not cancel_runs:
                return None
            target = (
                TaskStatus.PAUSED.value
                if task.status in (TaskStatus.ACTIVE, TaskStatus.PAUSED)
                else task.status
            )
            sem, fifo = (
                (
                    self.keys.semaphore(task.created_by, task.concurrency_key),
                    self.keys.semaphore_queue(task.created_by, task.concurrency_key),
                )
                if task.concurrency_key
                else (self.keys.task_runs(task.id), self.keys.task_runs(task.id))
            )
            keys = [
                *self._moving(task, target),
                self.keys.task_runs(task.id),
                self.keys.delayed,
                self.keys.outbox,
                fifo,
                sem,
                self.keys.agent_slots(task.created_by),
            ]
            args = [reason, "1" if cancel_runs else "0", self.keys.run(""), run_error]
            return "pause_for", keys, args

        task, result = self._transition(task_id, None, plan)
        return task, [str(x) for x in result[1:]]

    def _moving(self, task: Task, status: str, kind: str | None = None) -> builtins.list[str]:
        """KEYS[1..18] of a transition script: the task, due, and its indexes before/after."""
        return [
            self.keys.task(task.id),
            self.keys.due,
            *self.keys.indexes(task.created_by, task.status, task.schedule_kind),
            *self.keys.indexes(task.created_by, status, kind or task.schedule_kind),
        ]

    def _transition(
        self, task_id: str, agent: str | None, plan: Callable[[Task, int], _Step]
    ) -> tuple[Task, Any]:
        """Read a snapshot, let ``plan`` decide the script (None: nothing to do), run it with
        the snapshot's status and sched_version, and start over if the script found it stale."""
        for _ in range(_RETRIES):
            task = self.get(task_id, agent)
            now = clock.now_ms()
            step = plan(task, now)
            if step is None:
                return task, ["ok"]
            name, keys, args = step
            result = scripts.script(self.r, name)(
                keys=keys, args=[now, task.status, task.sched_version, *args]
            )
            if self._retry(result, task_id, name.removesuffix("_task")):
                continue
            return self.get(task_id), result
        raise _busy(task_id)

    def _retry(self, result: Any, task_id: str, action: str) -> bool:
        """True when the script found the snapshot stale; raise on other refusals."""
        try:
            scripts.check(result)
        except scripts.ScriptError as e:
            if e.code is scripts.ErrorCode.STALE:
                return True
            if e.code is scripts.ErrorCode.NOT_FOUND:
                raise NotFound("task", task_id) from None
            if e.code is scripts.ErrorCode.CONFLICT:
                raise Conflict(action, e.detail) from None
            raise
        return False


class _Creation:
    """One create as ``lua/create_task.lua`` takes it (KEYS, ARGV) and what its replies mean,
    for :meth:`TaskStore.create` and :meth:`AsyncTaskStore.create`."""

    def __init__(
        self,
        keys: Keys,
        settings: Settings,
        task: Task,
        idempotency_key: str | None,
        planned: bool,
        checked: bool,
    ) -> None:
        if not planned:
            plan_new(task)
        self.task = task
        agent = task.created_by
        interval = ""
        self.refs: builtins.list[tuple[str, str]] = []
        if checked:
            if task.schedule_kind in INTERVAL_KINDS:
                interval = str(settings.min_interval_seconds)
            self.refs = secret_names(task.payload)
        names = builtins.list(dict.fromkeys(name for _, name in self.refs))
        task_key = keys.task(task.id)
        # the script builds the agent's keys and the task's indexes from the base of keys.due
        self.keys = [
            task_key,
            keys.due,
            keys.idempotency(agent, idempotency_key) if idempotency_key else task_key,
        ]
        self._head: builtins.list[Any] = [
            task.id,
            task.created_at,
            "" if task.next_run_at is None else task.next_run_at,
            IDEMPOTENCY_TTL_MS if idempotency_key else "",
            keys.wake,
            interval,
        ]
        pairs = [x for pair in to_hash(task).items() for x in pair]
        self._tail: builtins.list[Any] = [len(names), *names, _msgpack.encode(pairs)]
        #: the min_interval_seconds the schedule was checked against ('' for none yet)
        self._against = ""

    def args(self) -> builtins.list[Any]:
        return [*self._head, self._against, *self._tail]

    def reply(self, result: Any) -> tuple[bool, str | None]:
        """(done, the id of the first task of the idempotency key or None); not done when the
        schedule had to be checked against the agent's min_interval_seconds: call again."""
        result = _quota_checked(result)
        if result[0] == "check_interval":
            # above 1: check the schedule against it, then create only if that is still the
            # agent's limit
            minimum = int(result[1])
            check_interval_against(self.task, minimum)
            self._against = str(minimum)
            return False, None
        if result[0] == "missing_secret":
            raise missing_secret(self.refs, result[1])
        if result[0] == "existing":
            return True, str(result[1])
        return True, None


class AsyncTaskStore:
    """The API's reads and create of :class:`TaskStore` on an asyncio client: the same keys,
    scripts and answers, awaited on the event loop rather than run in a thread."""

    def __init__(self, client: "redis.asyncio.Redis", keys: Keys, settings: Settings) -> None:
        self.r = client
        self.keys = keys
        self.settings = settings

    async def get(self, task_id: str, agent: str | None = None) -> Task:
        """:meth:`TaskStore.get`."""
        fields = await self.r.hgetall(self.keys.task(task_id)) if _plausible_id(task_id) else {}
        return _owned(fields, task_id, agent)

    async def list(
        self,
        *,
        agent: str | None,
        status: str | None = None,
        kind: str | None = None,
        limit: int = 50,
        offset: int = 0,
    ) -> tuple[builtins.list[Task], int]:
        """:meth:`TaskStore.list`."""
        index = self.keys.index(agent, status, kind)
        total, ids = await _page(self.r.pipeline(transaction=False), index, limit, offset).execute()
        if not ids:
            return [], int(total)
        hashes = await _reads(self.r.pipeline(transaction=False), self.keys, ids).execute()
        return _tasks(hashes), int(total)

    async def create(
        self,
        task: Task,
        idempotency_key: str | None = None,
        *,
        planned: bool = False,
        checked: bool = False,
    ) -> tuple[Task, bool]:
        """:meth:`TaskStore.create`."""
        creation = _Creation(self.keys, self.settings, task, idempotency_key, planned, checked)
        create = scripts.script(self.r, "create_task")
        for _ in range(_RETRIES):
            reply = await packed.evalsha(self.r, create, creation.keys, creation.args())
            done, first = creation.reply(reply)
            if not done:
                continue
            if first is not None:
                return await self.get(first), False
            return task, True
        raise _busy(task.id)


_Pipe = TypeVar("_Pipe", "redis.client.Pipeline", "redis.asyncio.client.Pipeline")


def _page(pipe: _Pipe, index: str, limit: int, offset: int) -> _Pipe:
    """``pipe`` (sync or asyncio) with a page's reads of ``index`` queued: its size, then the
    ids of the page, newest first."""
    pipe.zcard(index)
    pipe.zrevrange(index, offset, offset + limit - 1)
    return pipe


def _reads(pipe: _Pipe, keys: Keys, ids: builtins.list[str]) -> _Pipe:
    """``pipe`` with the hash of each task of ``ids`` queued."""
    for task_id in ids:
        pipe.hgetall(keys.task(task_id))
    return pipe


def _tasks(hashes: builtins.list[Any]) -> builtins.list[Task]:
    """The tasks of a page's hash reads; a task deleted since the index read is left out."""
    return [from_hash(Task, f) for f in hashes if f]


def _owned(fields: Mapping[Any, Any], task_id: str, agent: str | None) -> Task:
    """The task of a hash read, or :class:`NotFound` when there was none or it is another
    agent's (``agent`` None: the admin, who sees every task)."""
    if not fields or (agent is not None and fields.get("created_by") != agent):
        raise NotFound("task", task_id)
    return from_hash(Task, fields)


def _as_dict(task: Task) -> dict[str, Any]:
    return {f: getattr(task, f) for f in task.__struct_fields__}


def _plausible_id(task_id: str) -> bool:
    """Task ids are UUIDs; anything else cannot name a task (and must not build odd keys)."""
    try:
        uuid.UUID(task_id)
    except ValueError:
        return False
    return True


def _busy(task_id: str) -> Conflict:
    return Conflict("change", f"changing too fast to apply (task {task_id}); try again")


def _quota_checked(reply: Any) -> Any:
    """The create script's reply; its quota refusal as :class:`TooManyTasks` (429)."""
    if scripts.is_error(reply) and int(reply[0]) == ErrorCode.QUOTA:
        raise TooManyTasks(int(reply[1]))
    return scripts.check(reply)
