"""Worker throughput benchmark (not a test): end-to-end Chime runs/s against plain RQ.

Runs on its own ``redis-server`` (``app.embedded_redis``), never on the machine's Redis. For
1, 2 and 4 worker processes, in the same run:

- Chime: N ``once`` tasks, each a pipeline of one ``log`` step, all due at the same moment T
  (a few seconds ahead, so every process is started and idle by then); one ``chime scheduler``
  and W ``chime worker`` processes. Rate = N / (last run ``finished_at`` - T): task due ->
  run created -> enqueued -> started (slot, lease) -> step -> outcome recorded.
- Plain RQ: W ``rq worker`` processes (``SimpleWorker``, RQ's fastest), idle; N jobs of a
  function that does nothing (``os.getpid``) enqueued with ``enqueue_many`` at T. Rate = N /
  (last job ``ended_at`` - T).

The ratio RQ / Chime is Chime's overhead on work that is all CPU (the contract asks for under
2x). ``chime worker`` runs with its defaults (``CHIME_WORKER_CONCURRENCY``), as users get it.

Usage: ``.venv/bin/python bench/throughput.py [--runs 2000] [--workers 1 2 4]``
"""

import argparse
import os
import subprocess
import sys
import time
from pathlib import Path

import redis
from measure import finished_at, rate_to_last_finish, succeeded, wait_done
from once_tasks import create_once
from procs import stop
from rq import Queue
from rq.job import Job

from app import clock
from app.embedded_redis import EmbeddedRedis
from app.settings import Settings
from app.store.keys import Keys
from app.store.scheduling import occurrence_run_id
from app.store.tasks import TaskStore

ROOT = Path(__file__).resolve().parents[1]
RQ_QUEUE = "bench"
#: processes get this long to start before the moment everything falls due
LEAD_SECONDS = 4.0


#: the empty job plain RQ executes
NOOP = "os.getpid"


def env_for(url: str) -> dict[str, str]:
    base = {k: v for k, v in os.environ.items() if not k.startswith("CHIME_")}
    base.update({"REDIS_URL": url, "CHIME_LOG_LEVEL": "WARNING"})
    return base


def chime_worker(url: str) -> "subprocess.Popen[bytes]":
    """``chime worker`` with its default settings."""
    chime = str(Path(sys.executable).with_name("chime"))
    return subprocess.Popen([chime, "worker"], env=env_for(url), cwd=ROOT)


def rq_worker(url: str) -> "subprocess.Popen[bytes]":
    rq_bin = str(Path(sys.executable).with_name("rq"))
    args = [rq_bin, "worker", "-u", url, "-w", "rq.SimpleWorker", "--logging_level", "WARNING"]
    args.append(RQ_QUEUE)
    return subprocess.Popen(args, env=env_for(url), cwd=ROOT)


def bench_chime(url: str, runs: int, workers: int) -> float:
    client = redis.Redis.from_url(url, decode_responses=True)
    client.flushall()
    keys = Keys("chime")
    store = TaskStore(client, keys, Settings.from_env({"REDIS_URL": url}))
    due = clock.now_ms() + int(LEAD_SECONDS * 1000)
    task_ids = create_once(store, [due] * runs)
    if clock.now_ms() > due - 2000:
        raise SystemExit("creating the tasks took too long: lower --runs")
    run_keys = [keys.run(occurrence_run_id(t, due)) for t in task_ids]
    procs = [
        subprocess.Popen([sys.executable, "-m", "workers.scheduler"], env=env_for(url), cwd=ROOT)
    ]
    procs += [chime_worker(url) for _ in range(workers)]
    try:
        wait_done(lambda: succeeded(client, run_keys), runs, LEAD_SECONDS + runs / 5 + 60)
    finally:
        stop(procs)
    finishes = finished_at(client, run_keys)
    client.close()
    return rate_to_last_finish(runs, due, finishes)


def bench_rq(url: str, runs: int, workers: int) -> float:
    rq = redis.Redis.from_url(url)
    rq.flushall()
    queue = Queue(RQ_QUEUE, connection=rq)
    procs = [rq_worker(url) for _ in range(workers)]
    try:
        time.sleep(LEAD_SECONDS)
        start = time.time()
        jobs = queue.enqueue_many([Queue.prepare_data(NOOP, result_ttl=3600) for _ in range(runs)])
        ids = [j.id for j in jobs]
        wait_done(lambda: len(queue.finished_job_registry), runs, runs / 5 + 60)
    finally:
        stop(procs)
    ended = [j.ended_at for j in Job.fetch_many(ids, connection=rq) if j is not None]
    rq.close()
    return rate_to_last_finish(runs, start * 1000, (e.timestamp() * 1000 for e in ended if e))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=2000)
    parser.add_argument("--workers", type=int, nargs="+", default=[1, 2, 4])
    args = parser.parse_args()
    server = EmbeddedRedis()
    server.start()
    rows: list[tuple[int, float, float]] = []
    try:
        for w in args.workers:
            chime = bench_chime(server.url, args.runs, w)
            plain = bench_rq(server.url, args.runs, w)
            rows.append((w, chime, plain))
            print(
                f"workers={w}  chime {chime:8.1f} runs/s   plain RQ {plain:8.1f}"
                f" jobs/s   overhead {plain / chime:4.2f}x",
                flush=True,
            )
    finally:
        server.stop()
    print()
    print("| workers | Chime runs/s (due -> step done) | RQ no-op jobs/s | RQ / Chime |")
    print("|---|---|---|---|")
    for w, chime, plain in rows:
        print(f"| {w} | {chime:,.0f} | {plain:,.0f} | {plain / chime:.2f}x |")


if __name__ == "__main__":
    main()
