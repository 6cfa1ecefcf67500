"""Scheduler benchmark (not a test): throughput against rq-scheduler, claim cost, lateness.

Runs on its own ``redis-server`` (``app.embedded_redis``), never on the machine's Redis:

1. 100,000 ``once`` tasks due now, created through the task store and snapshotted (SAVE), then
   turned into runs on RQ by one and by two ``python -m workers.scheduler`` processes (the
   snapshot is reloaded between the two). Rate = runs / (last RQ ``enqueued_at`` - first run
   ``created_at``), read back from Redis, so process start-up is not counted.
2. The same number of jobs through rq-scheduler in the same run: ``enqueue_at`` (a time already
   past) then its ``enqueue_jobs()``, which moves the due jobs to their queue. Printed as a
   ratio.
3. Claim cost: ``claim_due`` batches from a ``due`` of 10,000 and of 1,000,000 members (the
   claimed part is the same; the rest lies in the future). Flat means O(log N).
4. Lateness under 1,000 due tasks per second: 3,000 tasks due one per millisecond, with one
   scheduler process idle before; RQ ``enqueued_at`` minus due time, p50 / p99 / max.
5. A burst with ``jitter_seconds`` 60: ``--tasks`` ``once`` tasks due at one instant, fired by
   one scheduler process; runs created per second over the minute after that instant (min,
   max, coefficient of variation), side by side with the same burst without jitter (its peak
   second is the peer).

Usage: ``.venv/bin/python bench/scheduler.py [--tasks 100000] [--skip-rq-scheduler]
[--only-jitter]``
"""

import argparse
import os
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Sequence
from datetime import UTC, datetime
from pathlib import Path

import redis
from once_tasks import AGENT, create_once, once_task
from rq import Queue

from app import clock
from app.embedded_redis import EmbeddedRedis
from app.settings import Settings
from app.store.connection import rq_client
from app.store.keys import Keys, queue_name
from app.store.limits import publish_defaults, set_overrides
from app.store.scheduling import claim
from app.store.tasks import TaskStore

ROOT = Path(__file__).resolve().parents[1]

QUEUE_KEY = Queue.redis_queue_namespace_prefix + queue_name(5)


#: the benchmark's one agent owns every task: its own limits are raised so that its tasks and
#: their runs measure the scheduler, not max_tasks or max_running
SCHEDULER_BENCH_LIMITS = {
    "max_tasks": 10_000_000,
    "max_running": 10_000_000,
    "max_runs_per_minute": 10_000_000,
}


def create_once_tasks(store: TaskStore, times: Sequence[int]) -> float:
    """Create one ``once`` task per due time through the store; returns tasks per second."""
    set_overrides(store.r, store.keys, AGENT, SCHEDULER_BENCH_LIMITS)
    t0 = time.perf_counter()
    create_once(store, times)
    return len(times) / (time.perf_counter() - t0)


def spawn(url: str, **env: str) -> "subprocess.Popen[bytes]":
    base = {k: v for k, v in os.environ.items() if not k.startswith("CHIME_")}
    base.update({"REDIS_URL": url, "CHIME_LOG_LEVEL": "WARNING", **env})
    return subprocess.Popen([sys.executable, "-m", "workers.scheduler"], env=base, cwd=ROOT)


def wait_queue(rq: redis.Redis, count: int, timeout: float = 600) -> None:
    deadline = time.monotonic() + timeout
    while int(rq.llen(QUEUE_KEY)) < count:
        if time.monotonic() > deadline:
            raise RuntimeError(f"only {rq.llen(QUEUE_KEY)} of {count} jobs after {timeout}s")
        time.sleep(0.1)


def rq_enqueued_ms(rq: redis.Redis, job_ids: Sequence[bytes]) -> list[int]:
    out: list[int] = []
    for start in range(0, len(job_ids), 10_000):
        pipe = rq.pipeline(transaction=False)
        for job_id in job_ids[start : start + 10_000]:
            pipe.hget(b"rq:job:" + job_id, "enqueued_at")
        for raw in pipe.execute():
            stamp = datetime.strptime(raw.decode(), "%Y-%m-%dT%H:%M:%S.%fZ").replace(tzinfo=UTC)
            out.append(clock.to_ms(stamp))
    return out


def runs_created_ms(r: redis.Redis, keys: Keys, run_ids: Sequence[str]) -> list[int]:
    out: list[int] = []
    for start in range(0, len(run_ids), 10_000):
        pipe = r.pipeline(transaction=False)
        for run_id in run_ids[start : start + 10_000]:
            pipe.hmget(keys.run(run_id), "created_at", "scheduled_for")
        out += [int(created) for created, _ in pipe.execute()]
    return out


def chime_round(server: EmbeddedRedis, processes: int, count: int) -> float:
    """Reload the snapshot and let ``processes`` schedulers turn it into runs; runs/s."""
    server.restart()
    r = redis.Redis.from_url(server.url, decode_responses=True)
    rq = rq_client(server.url)
    keys = Keys()
    assert r.zcard(keys.due) == count, "the snapshot did not load"
    procs = [spawn(server.url) for _ in range(processes)]
    try:
        wait_queue(rq, count)
    finally:
        for proc in procs:
            proc.send_signal(signal.SIGTERM)
        for proc in procs:
            proc.wait(60)
    job_ids = rq.lrange(QUEUE_KEY, 0, -1)
    assert len(set(job_ids)) == count
    first = min(runs_created_ms(r, keys, [j.decode() for j in job_ids]))
    last = max(rq_enqueued_ms(rq, job_ids))
    r.close()
    rq.close()
    return count / max(0.001, (last - first) / 1000)


def rq_scheduler_round(server: EmbeddedRedis, count: int) -> tuple[float, float]:
    """rq-scheduler on the same jobs: (enqueue_at per second, moved to the queue per second)."""
    from rq_scheduler import Scheduler

    server.restart()
    rq = rq_client(server.url)
    rq.flushall()
    scheduler = Scheduler(queue_name=queue_name(5), connection=rq)
    past = datetime.now(UTC).replace(tzinfo=None)
    t0 = time.perf_counter()
    for i in range(count):
        scheduler.enqueue_at(past, "workers.job.execute_run", f"run-{i}", job_id=f"run-{i}")
    scheduled = count / (time.perf_counter() - t0)
    t0 = time.perf_counter()
    scheduler.enqueue_jobs()
    moved = count / (time.perf_counter() - t0)
    assert int(rq.llen(QUEUE_KEY)) == count
    rq.close()
    return scheduled, moved


def claim_cost(server: EmbeddedRedis, size: int, claimed: int = 10_000, batch: int = 500) -> float:
    """Microseconds per claimed task, claiming ``claimed`` from a due set of ``size``."""
    r = redis.Redis.from_url(server.url, decode_responses=True)
    r.flushall()
    keys = Keys()
    now = clock.now_ms()
    for start in range(0, size, 20_000):
        members = {
            f"t{i}": (now - 1 - i if i < claimed else now + 3600_000 + i)
            for i in range(start, min(size, start + 20_000))
        }
        r.zadd(keys.due, members)
    calls = 0
    t0 = time.perf_counter()
    while claim(r, keys, "due", now, 30_000, batch):
        calls += 1
    spent = time.perf_counter() - t0
    assert r.zcard(keys.claims) == claimed and calls == claimed // batch
    r.close()
    return spent / claimed * 1e6


def lateness(server: EmbeddedRedis, seconds: int = 3, per_second: int = 1000) -> list[int]:
    """ms from each task's due time to its RQ enqueue, at ``per_second`` due tasks per second."""
    server.restart()
    r = redis.Redis.from_url(server.url, decode_responses=True)
    r.flushall()
    rq = rq_client(server.url)
    settings = Settings.from_env({"REDIS_URL": server.url})
    proc = spawn(server.url)
    try:
        time.sleep(1.0)
        count = seconds * per_second
        start = clock.now_ms() + 1000 + count // 2  # creation runs at over 2,000 tasks/s
        times = [start + i * 1000 // per_second for i in range(count)]
        create_once_tasks(TaskStore(r, Keys(), settings), times)
        assert clock.now_ms() < start, "creating the tasks took too long"
        wait_queue(rq, count)
    finally:
        proc.send_signal(signal.SIGTERM)
        proc.wait(60)
    keys = Keys()
    job_ids = rq.lrange(QUEUE_KEY, 0, -1)
    pipe = r.pipeline(transaction=False)
    for job_id in job_ids:
        pipe.hget(keys.run(job_id.decode()), "scheduled_for")
    due = [int(x) for x in pipe.execute()]
    late = [e - d for e, d in zip(rq_enqueued_ms(rq, job_ids), due, strict=True)]
    r.close()
    rq.close()
    return late


#: seconds after the burst's instant over which its runs are counted (the last holds the rest)
WINDOW = 60
#: one agent owns the whole burst: its limits are raised so they measure the scheduler only
BURST_LIMITS = {
    "CHIME_MAX_TASKS": "10000000",
    "CHIME_MAX_RUNNING": "100000",
    "CHIME_MAX_RUNS_PER_MINUTE": "10000000",
}


def burst(server: EmbeddedRedis, count: int, jitter: int) -> list[int]:
    """``count`` once tasks due at one instant with ``jitter_seconds``, fired by one scheduler
    process: runs created in each second after that instant."""
    server.restart()
    r = redis.Redis.from_url(server.url, decode_responses=True)
    r.flushall()
    settings = Settings.from_env({"REDIS_URL": server.url, **BURST_LIMITS})
    publish_defaults(r, Keys(), settings)
    store = TaskStore(r, Keys(), settings)
    proc = spawn(server.url, **BURST_LIMITS)
    try:
        # a margin for the creation (at least 1,000 tasks/s) so that none is due before
        at = (clock.now_ms() // 1000 + 10 + count // 1000) * 1000
        for _ in range(count):
            task = once_task(at)
            task.jitter_seconds = jitter
            store.create(task)
        if clock.now_ms() >= at:
            raise RuntimeError("creating the tasks took longer than the margin")
        deadline = time.monotonic() + (at - clock.now_ms()) / 1000 + jitter + 300
        keys = Keys()
        while r.zcard(keys.due) + r.zcard(keys.claims) > 0:
            if time.monotonic() > deadline:
                raise RuntimeError("the burst did not leave the scheduler in time")
            time.sleep(0.5)
    finally:
        proc.send_signal(signal.SIGTERM)
        proc.wait(60)
    created = runs_created_ms(
        r, keys, [k.removeprefix(keys.run("")) for k in r.scan_iter(keys.run("*"))]
    )
    r.close()
    per_second = [0] * WINDOW
    for t in created:
        per_second[min(WINDOW - 1, max(0, (t - at) // 1000))] += 1
    return per_second


def report_burst(count: int, per_second: list[int], peer_peak: int) -> None:
    mean = statistics.mean(per_second)
    cv = statistics.pstdev(per_second) / mean if mean else 0.0
    print(
        f"burst of {count:,} with jitter_seconds {WINDOW}: runs/s over the minute "
        f"min {min(per_second):,} max {max(per_second):,} mean {mean:,.0f} (cv {cv:.3f}); "
        f"peak second {max(per_second) / max(1, peer_peak):.3f}x the peak without jitter "
        f"({peer_peak:,}/s)",
        flush=True,
    )


def pct(values: Sequence[int], p: float) -> int:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(len(ordered) * p))]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--tasks", type=int, default=100_000)
    parser.add_argument("--skip-rq-scheduler", action="store_true")
    parser.add_argument("--only-jitter", action="store_true", help="only the jitter burst (5)")
    args = parser.parse_args()
    count: int = args.tasks
    if args.only_jitter:
        with tempfile.TemporaryDirectory(prefix="chime-bench-") as tmp:
            server = EmbeddedRedis(data_dir=Path(tmp))
            server.start()
            try:
                jitter_bench(server, count)
            finally:
                server.stop()
        return

    with tempfile.TemporaryDirectory(prefix="chime-bench-") as tmp:
        server = EmbeddedRedis(data_dir=Path(tmp))
        server.start()
        try:
            r = redis.Redis.from_url(server.url, decode_responses=True)
            settings = Settings.from_env({"REDIS_URL": server.url})
            now = clock.now_ms()
            print(f"creating {count:,} once tasks due now through the task store...", flush=True)
            rate = create_once_tasks(TaskStore(r, Keys(), settings), [now] * count)
            print(f"  task creation: {rate:,.0f} tasks/s")
            r.save()
            r.close()

            results: dict[str, float] = {}
            for processes in (1, 2):
                results[f"chime x{processes}"] = chime_round(server, processes, count)
                print(
                    f"chime scheduler, {processes} process(es): "
                    f"{results[f'chime x{processes}']:,.0f} runs created and enqueued/s",
                    flush=True,
                )
            if not args.skip_rq_scheduler:
                scheduled, moved = rq_scheduler_round(server, count)
                print(
                    f"rq-scheduler: enqueue_at {scheduled:,.0f} jobs/s; "
                    f"enqueue_jobs {moved:,.0f} jobs/s moved to the queue"
                )
                for name in ("chime x1", "chime x2"):
                    print(f"  ratio {name} / rq-scheduler move: {results[name] / moved:.1f}x")

            server.restart()
            for size in (10_000, 1_000_000):
                cost = claim_cost(server, size)
                print(
                    f"claim cost with {size:>9,} in due: {cost:.2f} us per claimed task "
                    f"(batches of 500)",
                    flush=True,
                )

            late = lateness(server)
            print(
                f"lateness at 1,000 due tasks/s ({len(late):,} tasks): "
                f"p50 {pct(late, 0.5)} ms, p99 {pct(late, 0.99)} ms, max {max(late)} ms, "
                f"mean {statistics.mean(late):.1f} ms"
            )
            jitter_bench(server, count)
        finally:
            server.stop()


def jitter_bench(server: EmbeddedRedis, count: int) -> None:
    plain = burst(server, count, 0)
    busy = sum(1 for n in plain if n)
    print(
        f"burst of {count:,} without jitter: peak {max(plain):,} runs/s, "
        f"all created within {busy} s of the instant"
    )
    report_burst(count, burst(server, count, WINDOW), max(plain))


if __name__ == "__main__":
    main()
