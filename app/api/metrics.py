"""``GET /metrics``: Prometheus text rendered from Redis on each scrape.

Gauges are read from the data itself (index sizes, ``due``, RQ queue lengths), so they are
right whichever process changed them; counters and histograms that only the scheduler and
workers see come from the stats hash (``app/store/stats.py``). Every web process answers the
same numbers, so a scrape may hit any of them.
"""

import hmac
from collections.abc import Iterable
from functools import cache
from typing import Any

import redis
from litestar import Request, Response, get
from litestar.datastructures import State
from rq import Queue

from app import clock
from app.core.status import RunStatus, TaskStatus, Trigger
from app.settings import Settings, get_settings
from app.store import connection, stats
from app.store.codec import text
from app.store.keys import QUEUE_NAMES, Keys

CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"


class _Family:
    """One metric family being written: its HELP/TYPE header then its samples."""

    def __init__(self, lines: list[str], name: str, kind: str, help_text: str) -> None:
        self.lines = lines
        self.name = name
        lines.append(f"# HELP {name} {help_text}")
        lines.append(f"# TYPE {name} {kind}")

    def sample(self, value: float, suffix: str = "", **labels: str) -> None:
        label_text = ",".join(f'{k}="{_escape(v)}"' for k, v in labels.items())
        braces = "{" + label_text + "}" if label_text else ""
        self.lines.append(f"{self.name}{suffix}{braces} {_number(value)}")


#: the claims (longest held first) whose tasks' fire times the lateness reads
CLAIMS_LOOKED_AT = 20


def _claims_lateness(client: "redis.Redis", keys: Keys, claimed: Any, now: int) -> float:
    if not claimed:
        return 0.0
    with client.pipeline(transaction=False) as pipe:
        for task_id in claimed:
            pipe.hget(keys.task(str(task_id)), "next_run_at")
        due = [int(x) for x in pipe.execute() if x]
    return max(((now - d) / 1000 for d in due if d <= now), default=0.0)


def render(client: "redis.Redis", keys: Keys, now_ms: int | None = None) -> str:
    """The whole exposition, from a handful of pipelined reads."""
    now = clock.now_ms() if now_ms is None else now_ms
    statuses = list(TaskStatus)
    with client.pipeline(transaction=False) as pipe:
        for status in statuses:
            pipe.zcard(keys.index(None, status.value, None))
        pipe.zcard(keys.due)
        pipe.zcount(keys.due, "-inf", now)
        pipe.zrange(keys.due, 0, 0, withscores=True)
        pipe.zcard(keys.delayed)
        pipe.zcard(keys.claims)
        pipe.zrange(keys.claims, 0, CLAIMS_LOOKED_AT - 1)
        pipe.zcard(keys.outbox)
        for name in QUEUE_NAMES:
            pipe.llen(Queue.redis_queue_namespace_prefix + name)
        pipe.hgetall(keys.stats)
        replies = pipe.execute()
    it = iter(replies)
    task_counts = [int(next(it)) for _ in statuses]
    due_total, due_now, oldest = int(next(it)), int(next(it)), next(it)
    delayed, claims, claimed, outbox = int(next(it)), int(next(it)), next(it), int(next(it))
    depths = [int(next(it)) for _ in QUEUE_NAMES]
    counters = _numbers(next(it))

    lines: list[str] = []
    f = _Family(lines, "chime_tasks", "gauge", "Tasks by status.")
    for status, count in zip(statuses, task_counts, strict=True):
        f.sample(count, status=status.value)
    _Family(lines, "chime_due_tasks", "gauge", "Scheduled tasks waiting in due.").sample(due_total)
    _Family(lines, "chime_due_backlog", "gauge", "Tasks whose fire time has passed.").sample(
        due_now
    )
    lateness = 0.0
    if oldest and float(oldest[0][1]) <= now:
        lateness = (now - float(oldest[0][1])) / 1000
    # a task a scheduler holds is no longer in due: count how late the longest-held claims are,
    # so a scheduler that stalls on its batch shows here
    lateness = max(lateness, _claims_lateness(client, keys, claimed, now))
    _Family(
        lines,
        "chime_oldest_due_lateness_seconds",
        "gauge",
        "How long the oldest due task has waited past its fire time (claimed ones included).",
    ).sample(lateness)
    _Family(
        lines, "chime_delayed_runs", "gauge", "Runs waiting for a retry delay or snooze."
    ).sample(delayed)
    _Family(lines, "chime_claims_in_flight", "gauge", "Tasks claimed by a scheduler.").sample(
        claims
    )
    _Family(
        lines,
        "chime_queued_runs",
        "gauge",
        "Queued runs not yet started by a worker (on an RQ queue or about to be enqueued).",
    ).sample(outbox)
    f = _Family(lines, "chime_queue_depth", "gauge", "Jobs waiting on each RQ priority queue.")
    for name, depth in zip(QUEUE_NAMES, depths, strict=True):
        f.sample(depth, queue=name, priority=name.removeprefix("chime-p"))

    f = _Family(lines, "chime_runs", "counter", "Runs that entered a status, by trigger.")
    pairs = {(s.value, t.value) for s in RunStatus for t in Trigger}
    for key in counters:
        kind, _, rest = key.partition(":")
        run_status, _, trigger = rest.partition(":")
        if kind == "runs" and run_status and trigger:
            pairs.add((run_status, trigger))
    for run_status, trigger in sorted(pairs):
        f.sample(
            counters.get(stats.run_field(run_status, trigger), 0),
            "_total",
            status=run_status,
            trigger=trigger,
        )
    for field, name, help_text in (
        (stats.RETRIES, "chime_run_retries", "Failed attempts parked for a retry."),
        (stats.DEDUPE_SUPPRESSED, "chime_dedupe_suppressed", "Runs ended deduped."),
        (
            stats.CONCURRENCY_WAITS,
            "chime_concurrency_waits",
            "Runs that waited for a concurrency slot.",
        ),
        (stats.MISFIRES_SKIPPED, "chime_misfires_skipped", "Occurrences dropped as misfired."),
        (
            stats.RUNS_REQUEUED,
            "chime_runs_requeued",
            "Queued runs found on no RQ queue and enqueued again.",
        ),
    ):
        _Family(lines, name, "counter", help_text).sample(counters.get(field, 0), "_total")

    _histogram(
        lines,
        "chime_run_duration_seconds",
        "Run durations.",
        counters,
        stats.DURATION,
        stats.DURATION_BUCKETS,
    )
    _histogram(
        lines,
        "chime_scheduler_claim_batch_size",
        "Due tasks taken per scheduler claim.",
        counters,
        stats.CLAIM_BATCH,
        stats.BATCH_BUCKETS,
    )
    return "\n".join(lines) + "\n"


def _histogram(
    lines: list[str],
    name: str,
    help_text: str,
    counters: dict[str, float],
    field: str,
    buckets: Iterable[float],
) -> None:
    f = _Family(lines, name, "histogram", help_text)
    total = 0.0
    for bound in (*buckets, float("inf")):
        total += counters.get(stats.bucket_field(field, bound), 0)
        f.sample(total, "_bucket", le=_number(bound))
    f.sample(counters.get(f"{field}:count", 0), "_count")
    f.sample(counters.get(f"{field}:sum", 0), "_sum")


def _numbers(raw: dict[object, object]) -> dict[str, float]:
    out: dict[str, float] = {}
    for k, v in raw.items():
        try:
            out[text(k)] = float(text(v))
        except ValueError:
            continue
    return out


def _number(value: float) -> str:
    if value == float("inf"):
        return "+Inf"
    value = float(value)
    return str(int(value)) if value.is_integer() else repr(value)


def _escape(value: str) -> str:
    return value.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n")


@cache
def _client(url: str) -> "redis.Redis":
    return connection.client(url)


def _settings(state: State) -> Settings:
    found = getattr(state, "settings", None)
    return found if isinstance(found, Settings) else get_settings()


@get("/metrics", sync_to_thread=True, include_in_schema=False, media_type=CONTENT_TYPE)
def metrics(request: Request[Any, Any, Any]) -> Response[str]:
    """Prometheus scrape endpoint (counts, never task content); with CHIME_METRICS_TOKEN set
    it needs that bearer token."""
    state = request.app.state
    settings = _settings(state)
    if settings.metrics_token is not None:
        given = request.headers.get("authorization", "").encode()
        expected = f"Bearer {settings.metrics_token}".encode()
        if not hmac.compare_digest(given, expected):
            return Response(
                "metrics token required\n",
                status_code=401,
                media_type="text/plain",
                headers={"WWW-Authenticate": "Bearer"},
            )
    client = getattr(state, "redis", None)
    if not isinstance(client, redis.Redis):
        client = _client(settings.redis_url)
    body = render(client, Keys(settings.key_prefix))
    return Response(body, media_type=CONTENT_TYPE)
