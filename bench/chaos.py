"""Chaos run (not a test): steady load while schedulers, workers, connections and Redis fail.

On its own append-only ``redis-server`` (``app.embedded_redis``), never the machine's Redis:
two ``chime scheduler`` processes (one with its wall clock ``--skew-ms`` ahead) and three
``chime worker`` processes run ``once`` tasks created at a steady rate, each due 1-4 s after its
creation, each one ``http.request`` to a local sink that counts every request it receives
(``Chime-Run-Id``, ``Chime-Attempt``). Meanwhile, every few seconds, one of: ``kill -9`` of a
random scheduler or worker (restarted at once), or ``CLIENT KILL`` of every client; once, in
the middle, Redis is shut down (its AOF kept), left down ``--outage`` seconds and restarted,
then nothing else fails for 15 s while the recovery is measured.

Then the load stops, the run gets time to settle, and it prints:

- occurrences expected (tasks whose create Redis acknowledged) and missing (no run);
- duplicate runs (a task with more than one run), stuck runs (not ended after the settle);
- duplicate executions (a run whose request reached the sink more than once), split into
  repeats of one attempt and retries after a worker died mid-step (the documented
  at-least-once), and runs that ended ``failed`` with their reasons;
- early executions (a request before its task's due time, and by how much: processes run on
  Redis server time, anchored within a round trip, so a few milliseconds at most), lateness
  percentiles;
- worker and scheduler exits not caused by the run's own kills, with their statuses;
- recovery times: after the Redis restart, how long until the tasks due during the outage had
  all been executed, and until the first task due after the restart was.

Usage: ``.venv/bin/python bench/chaos.py [--seconds 150] [--rate 20] [--outage 10]``
"""

import argparse
import json
import os
import random
import signal
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import redis

from app import clock
from app.core.pipeline import parse_pipeline, pipeline_payload
from app.core.status import RUN_TERMINAL
from app.core.task import Task
from app.embedded_redis import EmbeddedRedis
from app.settings import Settings
from app.store import connection
from app.store.keys import Keys
from app.store.tasks import TaskStore

ROOT = Path(__file__).resolve().parents[1]
#: no kill and no CLIENT KILL this long after Redis returns, so its recovery is measured alone
QUIET_AFTER_OUTAGE_SECONDS = 15.0
AGENT = "9c1d2e3f-4a5b-4c6d-8e7f-0a1b2c3d4e5f"
#: leases and graces short enough that a kill is recovered within seconds
FAST = {
    "CHIME_SEMAPHORE_LEASE_SECONDS": "5",
    "CHIME_CLAIM_LEASE_SECONDS": "5",
    "CHIME_ENQUEUE_GRACE_SECONDS": "5",
    "CHIME_HTTP_ALLOW": "127.0.0.0/8",
    "CHIME_LOG_LEVEL": "WARNING",
}


@dataclass
class Hits:
    """What the sink received: per run id, the attempts and times (epoch ms) of its requests."""

    lock: threading.Lock = field(default_factory=threading.Lock)
    runs: dict[str, list[tuple[int, int]]] = field(default_factory=dict)

    def add(self, run_id: str, attempt: int) -> None:
        with self.lock:
            self.runs.setdefault(run_id, []).append((attempt, time.time_ns() // 1_000_000))


def start_sink(hits: Hits) -> ThreadingHTTPServer:
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def log_message(self, format: str, *args: Any) -> None:
            return

        def do_POST(self) -> None:
            length = int(self.headers.get("Content-Length") or 0)
            if length:
                self.rfile.read(length)
            hits.add(self.headers.get("Chime-Run-Id", "?"), int(self.headers["Chime-Attempt"]))
            body = b'{"ok": true}'
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

    class Server(ThreadingHTTPServer):
        def handle_error(self, request: Any, client_address: Any) -> None:
            return  # a worker killed mid-request resets its connection: expected here

    server = Server(("127.0.0.1", 0), Handler)
    server.daemon_threads = True
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return server


class Fleet:
    """The scheduler and worker processes, restarted when killed, watched for exits."""

    def __init__(self, url: str, logs: Path, skew_ms: int) -> None:
        self.url, self.logs, self.skew_ms = url, logs, skew_ms
        self.procs: dict[str, subprocess.Popen[bytes]] = {}
        self.killed: set[int] = set()
        #: (name, exit status) of every exit the run did not cause
        self.exits: list[tuple[str, int]] = []
        self.kills: Counter[str] = Counter()

    def spawn(self, name: str) -> None:
        env = {k: v for k, v in os.environ.items() if not k.startswith("CHIME_")}
        env.update({"REDIS_URL": self.url, **FAST})
        if name == "scheduler-skewed":
            env["CHIME_TEST_CLOCK_SKEW_MS"] = str(self.skew_ms)
        chime = str(Path(sys.executable).with_name("chime"))
        kind = name.split("-")[0]
        with (self.logs / f"{name}.log").open("ab") as out:
            self.procs[name] = subprocess.Popen(
                [chime, kind], env=env, cwd=ROOT, stdout=out, stderr=subprocess.STDOUT
            )

    def kill(self, name: str) -> None:
        proc = self.procs[name]
        self.killed.add(proc.pid)
        proc.send_signal(signal.SIGKILL)
        proc.wait(10)
        self.kills[name.split("-")[0]] += 1
        self.spawn(name)

    def watch(self) -> None:
        """Record and restart any process that exited on its own."""
        for name, proc in list(self.procs.items()):
            code = proc.poll()
            if code is not None and proc.pid not in self.killed:
                self.exits.append((name, code))
                self.spawn(name)

    def stop(self) -> list[tuple[str, int]]:
        for proc in self.procs.values():
            if proc.poll() is None:
                proc.send_signal(signal.SIGTERM)
        codes = []
        for name, proc in self.procs.items():
            try:
                codes.append((name, proc.wait(40)))
            except subprocess.TimeoutExpired:
                proc.kill()
                codes.append((name, proc.wait(10)))
        return codes


def make_task(due_ms: int, sink: str) -> Task:
    now = clock.now_ms()
    steps = [{"name": "hit", "action": "http.request", "params": {"url": sink, "method": "POST"}}]
    return Task(
        id=str(uuid.uuid4()),
        title="chaos",
        description="",
        schedule_kind="once",
        schedule_expr=clock.iso(due_ms) or "",
        payload=pipeline_payload(parse_pipeline({"steps": steps})),
        created_by=AGENT,
        created_at=now,
        updated_at=now,
        max_retries=3,
        retry_delay_seconds=1.0,
    )


def percentile(values: Sequence[float], q: float) -> float:
    if not values:
        return float("nan")
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=150.0, help="length of the load")
    parser.add_argument("--rate", type=float, default=20.0, help="tasks created per second")
    parser.add_argument("--outage", type=float, default=10.0, help="seconds Redis stays down")
    parser.add_argument("--skew-ms", type=int, default=5000, help="the skewed scheduler's clock")
    parser.add_argument("--settle", type=float, default=90.0, help="longest wait at the end")
    parser.add_argument("--seed", type=int, default=None)
    args = parser.parse_args()
    rng = random.Random(args.seed)

    tmp = Path(tempfile.mkdtemp(prefix="chime-chaos-"))
    server = EmbeddedRedis(data_dir=tmp / "redis", persist=True)
    server.start()
    hits = Hits()
    sink = start_sink(hits)
    sink_url = f"http://127.0.0.1:{sink.server_address[1]}/hit"
    client = connection.client(server.url)
    keys = Keys("chime")
    store = TaskStore(client, keys, Settings.from_env({"REDIS_URL": server.url}))
    fleet = Fleet(server.url, tmp, args.skew_ms)
    for name in ("scheduler-a", "scheduler-skewed", "worker-a", "worker-b", "worker-c"):
        fleet.spawn(name)
    time.sleep(3)

    tasks: dict[str, int] = {}  # task id -> due ms, for creates Redis acknowledged
    refused = 0
    client_kills = 0
    outage: tuple[float, float] | None = None  # (down, back) epoch seconds
    start = time.monotonic()
    next_chaos = start + rng.uniform(2, 5)
    outage_at = start + args.seconds / 2
    print(f"chaos: {args.seconds:.0f} s of load at {args.rate:.0f} tasks/s, logs in {tmp}")
    try:
        while (elapsed := time.monotonic() - start) < args.seconds:
            tick = time.monotonic()
            try:
                due = clock.now_ms() + rng.randint(1000, 4000)
                task, _ = store.create(make_task(due, sink_url))
                tasks[task.id] = due
            except redis.RedisError:
                refused += 1
            fleet.watch()
            if outage is None and tick >= outage_at:
                down = time.time()
                with redis.Redis.from_url(server.url) as admin:
                    admin.shutdown()
                assert server.proc is not None
                server.proc.wait(30)
                server.proc = None
                time.sleep(args.outage)
                server.start()
                outage = (down, time.time())
                # no other fault while the recovery from the outage is measured
                next_chaos = time.monotonic() + QUIET_AFTER_OUTAGE_SECONDS
                print(f"  {elapsed:5.0f} s  Redis shut down for {args.outage:.0f} s, restarted")
            elif tick >= next_chaos:
                what = rng.choice(["worker", "worker", "scheduler", "client_kill"])
                if what == "client_kill":
                    with redis.Redis.from_url(server.url) as admin:
                        admin.client_kill_filter(_type="normal", skipme=True)
                        admin.client_kill_filter(_type="pubsub", skipme=True)
                    client_kills += 1
                else:
                    names = [n for n in fleet.procs if n.startswith(what)]
                    fleet.kill(rng.choice(names))
                next_chaos = time.monotonic() + rng.uniform(1.5, 5)
            time.sleep(max(0.0, 1 / args.rate - (time.monotonic() - tick)))

        # settle: every acknowledged task has its run ended, or the settle time is up
        settle_end = time.monotonic() + args.settle
        ended = False
        while time.monotonic() < settle_end and not ended:
            fleet.watch()
            time.sleep(1)
            ended = _all_ended(client, keys, list(tasks))
        codes = fleet.stop()
        report(client, keys, tasks, hits, fleet, codes, refused, client_kills, outage)
    finally:
        for proc in fleet.procs.values():
            if proc.poll() is None:
                proc.kill()
        sink.shutdown()
        client.close()
        server.stop()


def _runs(client: redis.Redis, keys: Keys, task_ids: list[str]) -> list[list[str]]:
    pipe = client.pipeline(transaction=False)
    for task_id in task_ids:
        pipe.zrange(keys.task_runs(task_id), 0, -1)
    return [list(x) for x in pipe.execute()]


def _all_ended(client: redis.Redis, keys: Keys, task_ids: list[str]) -> bool:
    try:
        runs = [r for ids in _runs(client, keys, task_ids) for r in ids]
        if len(runs) < len(task_ids):
            return False
        pipe = client.pipeline(transaction=False)
        for run_id in runs:
            pipe.hget(keys.run(run_id), "status")
        return all(s in RUN_TERMINAL for s in pipe.execute())
    except redis.RedisError:
        return False


def report(
    client: redis.Redis,
    keys: Keys,
    tasks: dict[str, int],
    hits: Hits,
    fleet: Fleet,
    codes: list[tuple[str, int]],
    refused: int,
    client_kills: int,
    outage: tuple[float, float] | None,
) -> None:
    task_ids = list(tasks)
    runs = _runs(client, keys, task_ids)
    pipe = client.pipeline(transaction=False)
    for ids in runs:
        for run_id in ids:
            pipe.hmget(keys.run(run_id), "status", "attempt", "error")
    records = iter(pipe.execute())
    missing = sum(1 for ids in runs if not ids)
    duplicate_runs = sum(1 for ids in runs if len(ids) > 1)
    statuses: Counter[str] = Counter()
    failures: Counter[str] = Counter()
    stuck = 0
    repeats_same_attempt = retried_after_loss = early = earliest = 0
    lateness: list[float] = []
    first_hit: dict[str, int] = {}
    for task_id, ids in zip(task_ids, runs, strict=True):
        for run_id in ids:
            status, _attempt, error = next(records)
            statuses[status or "?"] += 1
            if status not in RUN_TERMINAL:
                stuck += 1
            if status == "failed":
                failures[(error or "").splitlines()[0][:80] if error else "?"] += 1
            got = hits.runs.get(run_id, [])
            attempts = Counter(a for a, _ in got)
            if any(n > 1 for n in attempts.values()):
                repeats_same_attempt += 1
            elif len(got) > 1:
                retried_after_loss += 1
            if got:
                first = min(t for _, t in got)
                first_hit[task_id] = first
                due = tasks[task_id]
                if first < due:
                    early += 1
                    earliest = max(earliest, due - first)
                lateness.append((first - due) / 1000)
    print()
    print("| what | figure |")
    print("|---|---|")
    print(f"| tasks created (acknowledged) = occurrences expected | {len(tasks):,} |")
    print(f"| creates refused while Redis was down | {refused:,} |")
    print(f"| occurrences missing (no run) | {missing} |")
    print(f"| duplicate runs (a task with more than one run) | {duplicate_runs} |")
    print(f"| stuck runs (not ended after the settle) | {stuck} |")
    print(f"| runs by status | {json.dumps(dict(statuses))} |")
    print(f"| runs failed, by reason | {json.dumps(dict(failures)) if failures else 0} |")
    print(
        f"| duplicate executions: one attempt's request received twice | {repeats_same_attempt} |"
    )
    print(
        "| duplicate executions: a later attempt after a worker died mid-step (at-least-once)"
        f" | {retried_after_loss} |"
    )
    print(
        f"| early executions (request before the due time) | {early}"
        + (f", at most {earliest} ms early |" if early else " |")
    )
    print(
        "| lateness due -> request received, p50 / p99 / max (s) | "
        f"{percentile(lateness, 0.5):.2f} / {percentile(lateness, 0.99):.2f} / "
        f"{max(lateness, default=float('nan')):.2f} |"
    )
    print(
        f"| kills: workers / schedulers / CLIENT KILL rounds | {fleet.kills['worker']} / "
        f"{fleet.kills['scheduler']} / {client_kills} |"
    )
    print(f"| exits the run did not cause (name, status) | {fleet.exits or 'none'} |")
    print(f"| exit statuses on SIGTERM at the end | {sorted({c for _, c in codes})} |")
    if outage is not None:
        down, back = outage
        during = [t for t, due in tasks.items() if down * 1000 <= due <= back * 1000]
        done = [first_hit[t] for t in during if t in first_hit]
        after = [t for got in hits.runs.values() for _, t in got if t > back * 1000]
        if done:
            print(
                f"| Redis restart: the {len(during)} tasks due during the outage all executed"
                f" | {(max(done) / 1000 - back):.2f} s after its return ({len(done)} executed) |"
            )
        if after:
            print(
                f"| Redis restart: first request received after the return | "
                f"{(min(after) / 1000 - back):.2f} s after it |"
            )


if __name__ == "__main__":
    main()
