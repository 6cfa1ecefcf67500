"""Tasks made through the task store, Redis state read back, and scheduler processes: for the
scheduler's tests and the tests of the scripts it calls."""

import os
import subprocess
import sys
import uuid
from dataclasses import replace
from pathlib import Path
from typing import Any

import redis
from rq import Queue

from app import clock
from app.core.task import Run, Task
from app.settings import Settings
from app.store.codec import from_hash, to_hash
from app.store.keys import QUEUE_NAMES, Keys
from app.store.tasks import TaskStore
from tests.support.records import make_task


def create(store: TaskStore, **kw: Any) -> Task:
    task, _ = store.create(make_task(**kw))
    return task


def once_at(ms: int) -> str:
    """A ``once`` schedule expression for the instant ``ms``."""
    return clock.iso(ms) or ""


def runs_of(r: redis.Redis, keys: Keys, task_id: str) -> list[Run]:
    """The task's runs, oldest occurrence first."""
    ids = r.zrange(keys.task_runs(task_id), 0, -1)
    pipe = r.pipeline(transaction=False)
    for run_id in ids:
        pipe.hgetall(keys.run(run_id))
    return [from_hash(Run, f) for f in pipe.execute() if f]


def rq_job_ids(rq: redis.Redis) -> list[str]:
    """Every job id waiting on Chime's RQ queues, duplicates included."""
    out: list[str] = []
    for name in QUEUE_NAMES:
        key = Queue(name, connection=rq).key
        out += [x.decode() for x in rq.lrange(key, 0, -1)]
    return out


def settings_with(base: Settings, **kw: Any) -> Settings:
    return replace(base, **kw)


def db_state(r: redis.Redis, pattern: str = "*") -> dict[str, Any]:
    """Every key (matching ``pattern``) with its type and content, to assert that a refused
    script changed nothing."""
    out: dict[str, Any] = {}
    for key in sorted(r.keys(pattern)):
        kind = r.type(key)
        if kind == "hash":
            out[key] = (kind, r.hgetall(key))
        elif kind == "zset":
            out[key] = (kind, r.zrange(key, 0, -1, withscores=True))
        elif kind == "list":
            out[key] = (kind, r.lrange(key, 0, -1))
        elif kind == "set":
            out[key] = (kind, sorted(r.smembers(key)))
        else:
            out[key] = (kind, r.get(key), r.pttl(key) > 0)
    return out


def add_run(r: redis.Redis, keys: Keys, task: Task, **kw: Any) -> Run:
    """Store a run of ``task`` directly (for release tests): pending in delayed by default."""
    now = clock.now_ms()
    fields: dict[str, Any] = {
        "id": str(uuid.uuid4()),
        "task_id": task.id,
        "agent_id": task.created_by,
        "trigger": "schedule",
        "scheduled_for": now,
        "created_at": now,
        "status": "pending",
        "attempt": 2,
        "max_attempts": task.max_retries + 1,
        "priority": task.priority,
        "next_attempt_at": now,
    }
    fields.update(kw)
    run = Run(**fields)
    r.hset(keys.run(run.id), mapping=to_hash(run))
    r.zadd(keys.task_runs(task.id), {run.id: run.created_at})
    if run.status == "pending" and run.next_attempt_at is not None:
        r.zadd(keys.delayed, {run.id: run.next_attempt_at})
    return run


ROOT = Path(__file__).resolve().parents[2]


def spawn_scheduler(
    redis_url: str, log: Path, *command: str, **env: str
) -> "subprocess.Popen[bytes]":
    """A scheduler process (``python -m workers.scheduler`` unless ``command`` says otherwise)
    on the test Redis, its log in ``log``; ``env`` adds CHIME_* settings."""
    base = {k: v for k, v in os.environ.items() if not k.startswith("CHIME_") and k != "REDIS_URL"}
    base.update({"REDIS_URL": redis_url, "PYTHONUNBUFFERED": "1", **env})
    argv = command or ("-m", "workers.scheduler")
    with log.open("ab") as out:
        return subprocess.Popen(
            [sys.executable, *argv], env=base, cwd=ROOT, stdout=out, stderr=subprocess.STDOUT
        )


def process_state(pid: int) -> str:
    """The kernel's one-letter state of ``pid`` (``T``: stopped); '' when it is gone."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return ""
    return stat.rsplit(")", 1)[1].split()[0]


def wake_subscribers(r: redis.Redis, keys: Keys) -> int:
    """How many connections listen on the wake channel."""
    return int(dict(r.pubsub_numsub(keys.wake)).get(keys.wake, 0))
