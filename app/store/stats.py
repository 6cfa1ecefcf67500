"""Counters and histograms that only the scheduler and the workers can see, kept for /metrics.

Everything lives in one hash, ``keys.stats``, so any number of processes add to the same
numbers and ``GET /metrics`` reads them with one HGETALL. The functions take a client or a
pipeline (a pipeline lets a caller add a count to a write it already sends); Lua scripts may
also ``HINCRBY`` the same fields when ``keys.stats`` is passed in KEYS.

Fields of ``keys.stats`` (what increments them):

==================================  ==========================================================
field                               meaning
==================================  ==========================================================
runs:<status>:<trigger>             runs that entered ``status`` (queued, running, succeeded,
                                    failed, deduped, canceled, pending, skipped), by
                                    trigger: ``count_entries`` for runs a use case made
                                    (``app/service/dispatch.py``), the workers for the rest
retries                             attempts that failed and were parked for a retry
dedupe_suppressed                   runs ended ``deduped`` because the window was held
concurrency_waits                   runs parked as pending for want of a concurrency slot
misfires_skipped                    occurrences dropped by a misfire policy
runs_requeued                       queued runs the outbox pass found owned by no one (on no
                                    RQ queue) and enqueued again (``app/store/outbox.py``)
duration:le:<bound> / :sum / :count run durations in seconds (``observe_duration``): the
                                    count of runs that fell in that bucket (not cumulative)
claim_batch:le:<bound> / :sum /     tasks per scheduler claim (``observe_batch``), likewise
:count
==================================  ==========================================================
"""

from collections import Counter
from collections.abc import Iterable, Sequence
from typing import Any

import redis

from app.store.codec import text
from app.store.keys import Keys

RETRIES = "retries"
DEDUPE_SUPPRESSED = "dedupe_suppressed"
CONCURRENCY_WAITS = "concurrency_waits"
MISFIRES_SKIPPED = "misfires_skipped"
RUNS_REQUEUED = "runs_requeued"
DURATION = "duration"
CLAIM_BATCH = "claim_batch"

#: Upper bounds (seconds) of the run duration buckets; a last ``+Inf`` bucket is implied.
DURATION_BUCKETS: tuple[float, ...] = (0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 300, 900)
#: Upper bounds of the claim batch size buckets.
BATCH_BUCKETS: tuple[float, ...] = (0, 1, 5, 10, 50, 100, 250, 500, 1000, 5000)


def run_field(status: str, trigger: str) -> str:
    return f"runs:{status}:{trigger}"


def bucket_field(histogram: str, bound: float) -> str:
    return f"{histogram}:le:{_fmt(bound)}"


def incr(client: "redis.Redis", keys: Keys, name: str, by: int = 1) -> Any:
    """Add ``by`` to the counter ``name`` (one of the fields above)."""
    return client.hincrby(keys.stats, name, by)


def count_entries(client: "redis.Redis", keys: Keys, entries: Iterable[tuple[str, str]]) -> None:
    """Count runs entering a status, as ``(status, trigger)`` pairs; a run ``deduped`` is also
    a ``dedupe_suppressed`` (the one place of that rule). A run with no trigger recorded (one
    written before triggers were) is not counted."""
    for (status, trigger), n in sorted(Counter(e for e in entries if e[1]).items()):
        client.hincrby(keys.stats, run_field(status, trigger), n)
        if status == "deduped":
            client.hincrby(keys.stats, DEDUPE_SUPPRESSED, n)


def observe_duration(client: "redis.Redis", keys: Keys, seconds: float) -> None:
    """Record one run's duration (start of its first step to its outcome)."""
    _observe(client, keys, DURATION, DURATION_BUCKETS, max(0.0, seconds))


def observe_batch(client: "redis.Redis", keys: Keys, size: int) -> None:
    """Record how many due tasks one scheduler claim took."""
    _observe(client, keys, CLAIM_BATCH, BATCH_BUCKETS, max(0, size))


def _observe(
    client: "redis.Redis", keys: Keys, name: str, buckets: Sequence[float], value: float
) -> None:
    bound = next((b for b in buckets if value <= b), float("inf"))
    if isinstance(client, redis.client.Pipeline):
        _add(client, keys, name, bound, value)
        return
    with client.pipeline(transaction=True) as pipe:
        _add(pipe, keys, name, bound, value)
        pipe.execute()


def _add(pipe: "redis.client.Pipeline", keys: Keys, name: str, bound: float, value: float) -> None:
    pipe.hincrby(keys.stats, bucket_field(name, bound), 1)
    pipe.hincrbyfloat(keys.stats, f"{name}:sum", value)
    pipe.hincrby(keys.stats, f"{name}:count", 1)


def read(client: "redis.Redis", keys: Keys) -> dict[str, float]:
    """Every field of the stats hash as a number."""
    out: dict[str, float] = {}
    for k, v in client.hgetall(keys.stats).items():
        try:
            out[text(k)] = float(v)
        except ValueError:
            continue
    return out


def _fmt(bound: float) -> str:
    if bound == float("inf"):
        return "+Inf"
    return str(int(bound)) if float(bound).is_integer() else repr(float(bound))
