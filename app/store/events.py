"""Events: ``POST /events`` and the ``event.emit`` action start the agent's matching event tasks.

An event task's ``schedule_expr`` is a name or a glob (``invoice.*``) matched against the event
name with :func:`fnmatch.fnmatchcase`; a task without one matches nothing. Candidates are the
agent's active event tasks (one index read); the runs are created by ``lua/emit_event.lua``,
which checks each task again, through the same run creation as scheduled runs.
"""

import uuid
from fnmatch import fnmatchcase
from typing import Any

import msgspec
import redis

from app import clock
from app.clock import ms
from app.core.errors import ChimeError, Conflict, ValidationError
from app.core.status import ScheduleKind, TaskStatus
from app.core.task import Run
from app.settings import Settings
from app.store import scripts
from app.store.codec import from_hash
from app.store.event_records import attach_events
from app.store.keys import Keys

#: Candidates per script call: bounds the KEYS of one call; each task's run stands alone.
CHUNK = 250
EVENT_NAME_MAX = 200
#: an event's ``data`` as JSON, at most (``POST /events`` and ``event.emit`` alike)
EVENT_DATA_MAX = 64 * 1024
#: an event matching more tasks is refused whole: no run is created
FAN_OUT_MAX = 1000
#: the deepest an event may be: one emitted by a run is one hop deeper than what started it
MAX_DEPTH = 8
_RETRIES = 10
_RUN_NAMESPACE = uuid.uuid5(uuid.NAMESPACE_URL, "chime:event-run")
_json = msgspec.json.Encoder()


def matches(pattern: str | None, name: str) -> bool:
    """Whether an event task with this ``schedule_expr`` runs on the event ``name``."""
    if not pattern:
        return False
    return pattern == name or fnmatchcase(name, pattern)


def create_event_runs(
    client: redis.Redis,
    keys: Keys,
    settings: Settings,
    agent_id: str,
    name: str,
    data: dict[str, Any] | None,
    depth: int = 0,
) -> tuple[str, list[Run]]:
    """The runs of an event, created but neither enqueued nor counted: the use case
    (``app/service/events.py``) does both.

    Refused before any run is made: a name or ``data`` over its size (``ValidationError``), a
    ``depth`` past :data:`MAX_DEPTH` (:class:`EventTooDeep`), more than :data:`FAN_OUT_MAX`
    matching tasks (:class:`FanOutTooLarge`)."""
    if not isinstance(name, str) or not name or len(name) > EVENT_NAME_MAX:
        raise ValidationError("name", f"an event name is 1..{EVENT_NAME_MAX} characters")
    if depth > MAX_DEPTH:
        raise EventTooDeep(depth)
    data_json = _json.encode(data or {})
    if len(data_json) > EVENT_DATA_MAX:
        raise ValidationError(
            "data", f"at most {EVENT_DATA_MAX} bytes as JSON, got {len(data_json)}"
        )
    event_id = str(uuid.uuid4())
    # the runs keep the event's id, name and depth; its data is stored once, in the event record
    event: dict[str, Any] = {"id": event_id, "name": name}
    if depth:
        event["depth"] = depth
    event_json = _json.encode(event).decode()
    task_ids = [
        str(t)
        for t in client.zrange(keys.index(agent_id, TaskStatus.ACTIVE, ScheduleKind.EVENT), 0, -1)
    ]
    _check_fan_out(client, keys, name, task_ids)
    made: list[tuple[str, str]] = []
    for start in range(0, len(task_ids), CHUNK):
        made += _emit_chunk(
            client,
            keys,
            settings,
            agent_id,
            name,
            event_id,
            event_json,
            data_json.decode(),
            task_ids[start : start + CHUNK],
        )
    if not made:
        return event_id, []
    pipe = client.pipeline(transaction=False)
    for run_id, _ in made:
        pipe.hgetall(keys.run(run_id))
    runs = [from_hash(Run, fields) for fields in pipe.execute() if fields]
    return event_id, attach_events(client, keys, runs)


class EventTooDeep(ValidationError):
    """An event emitted past :data:`MAX_DEPTH` hops (a loop of events, most likely)."""

    def __init__(self, depth: int) -> None:
        super().__init__(
            "event.depth",
            f"an event emitted by a run is one hop deeper than the event that started it; "
            f"this one would be {depth} deep, past the limit of {MAX_DEPTH}",
        )


class FanOutTooLarge(Conflict):
    """An event matching more than :data:`FAN_OUT_MAX` tasks: refused whole (409)."""

    def __init__(self, name: str, matched: int) -> None:
        ChimeError.__init__(
            self,
            f"event {name!r} matches {matched} event tasks, more than {FAN_OUT_MAX}: "
            "refused whole, no run was created",
        )
        self.action = "emit"
        self.status = f"matches {matched} tasks"


def _check_fan_out(client: redis.Redis, keys: Keys, name: str, task_ids: list[str]) -> None:
    """Refuse the event when more than FAN_OUT_MAX of the candidates match it (the script then
    creates runs only for candidates that still match, never more)."""
    if len(task_ids) <= FAN_OUT_MAX:
        return
    pipe = client.pipeline(transaction=False)
    for task_id in task_ids:
        pipe.hget(keys.task(task_id), "schedule_expr")
    matched = sum(1 for expr in pipe.execute() if matches(expr, name))
    if matched > FAN_OUT_MAX:
        raise FanOutTooLarge(name, matched)


def _emit_chunk(
    client: redis.Redis,
    keys: Keys,
    settings: Settings,
    agent_id: str,
    name: str,
    event_id: str,
    event_json: str,
    data_json: str,
    task_ids: list[str],
) -> list[tuple[str, str]]:
    """Create the runs of the tasks among ``task_ids`` whose pattern matches; retried when a
    task's pattern changed between the read and the script."""
    for _ in range(_RETRIES):
        pipe = client.pipeline(transaction=False)
        for task_id in task_ids:
            pipe.hget(keys.task(task_id), "schedule_expr")
        patterns = pipe.execute()
        key_list = [keys.outbox, keys.delayed, keys.event(event_id)]
        args: list[Any] = [
            clock.now_ms(),
            agent_id,
            event_json,
            keys.run(""),
            settings.run_history,
            ms(settings.enqueue_grace_seconds),
            keys.wake,
            data_json,
        ]
        for task_id, expr in zip(task_ids, patterns, strict=True):
            if not matches(expr, name):
                continue
            run_id = str(uuid.uuid5(_RUN_NAMESPACE, f"{event_id}:{task_id}"))
            key_list += [keys.task(task_id), keys.task_runs(task_id), keys.run(run_id)]
            args += [task_id, run_id, expr]
        if len(key_list) == 3:
            return []
        reply = scripts.script(client, "emit_event")(keys=key_list, args=args)
        if scripts.is_error(reply) and reply[0] == scripts.ErrorCode.STALE:
            continue
        scripts.check(reply)
        return [(str(reply[i]), str(reply[i + 1])) for i in range(0, len(reply), 2)]
    raise Conflict("run", "changing too fast to match the event; try again")
