"""What the benchmarks measure (imported by the scripts beside it): waiting until every run of a
case has ended, and its rate to the last finish."""

import time
from collections.abc import Callable, Iterable, Sequence

import redis


def wait_done(check: Callable[[], int], total: int, timeout: float, every: float = 0.2) -> None:
    """Poll ``check`` (how many are done) every ``every`` seconds until it counts ``total``;
    exit naming how many were done after ``timeout`` seconds."""
    deadline = time.monotonic() + timeout
    while check() < total:
        if time.monotonic() > deadline:
            raise SystemExit(f"timed out: {check()} of {total} done")
        time.sleep(every)


def succeeded(client: redis.Redis, run_keys: Sequence[str]) -> int:
    """How many of the runs at ``run_keys`` have succeeded (one pipelined read)."""
    pipe = client.pipeline(transaction=False)
    for k in run_keys:
        pipe.hget(k, "status")
    return sum(1 for s in pipe.execute() if s == "succeeded")


def finished_at(client: redis.Redis, run_keys: Sequence[str]) -> list[int]:
    """The ``finished_at`` (ms) of each run at ``run_keys``."""
    pipe = client.pipeline(transaction=False)
    for k in run_keys:
        pipe.hget(k, "finished_at")
    return [int(x) for x in pipe.execute()]


def rate_to_last_finish(count: int, due_ms: float, finishes_ms: Iterable[float]) -> float:
    """Runs per second from the moment they all fell due to the last finish: ``count`` /
    (latest of ``finishes_ms`` - ``due_ms``), times in milliseconds."""
    return count / ((max(finishes_ms) - due_ms) / 1000)
