"""Fairness benchmark (not a test): how long one agent's single run waits while another agent
has 10,000 runs queued, and what the per-agent limits cost end to end.

Runs on its own ``redis-server`` (``app.embedded_redis``), never on the machine's Redis.

Part 1, B's wait. Agent A queues N = 10,000 runs (``run_now`` through the task store, ten
runs of each of 1,000 tasks, the queued ones put on RQ as the API does) at priority 1, each a
pipeline of one ``sleep`` of ``--sleep`` seconds, while one ``chime worker`` at its defaults
runs; once A's runs are running, agent B creates one run of a task at priority 5 (a ``log``
step). B's wait = its run's ``started_at`` - ``created_at``. In the same run:

- ``alone``: B's run with nothing else queued;
- ``flood, limits``: A at the default limits (``max_running`` 100: A's excess waits ``pending``
  in its own line, B's run is queued behind at most A's 100);
- ``flood, no bound``: A's ``max_running`` raised to 100,000 (every run of A on RQ at once, as
  before the limits).

Part 2, the cost of the limits (``--baseline DIR``: a tree of Chime without them, e.g.
``git archive <commit> | tar -x -C DIR``): ``bench/throughput.py``'s end-to-end case (``once``
tasks of one agent, one ``log`` step each, all due at T; one ``chime scheduler``, W ``chime
worker``) with this tree at the default limits (``max_running`` 100 binds: 2,000 runs of one
agent fall due at once), with this tree and the agent's ``max_running`` raised above them (the
limits' bookkeeping without their bound), and with DIR; each round runs the three in another
order, on the same Redis. Ratios = this tree / DIR, over the sums of the rounds.

Usage: ``.venv/bin/python bench/fairness.py [--flood 10000] [--sleep 0.5] [--baseline DIR]
[--runs 2000] [--rounds 2]``
"""

import argparse
import os
import subprocess
import sys
import time
import uuid
from pathlib import Path

import redis
from measure import finished_at, rate_to_last_finish, succeeded, wait_done
from procs import stop

from app import clock
from app.core.task import Task
from app.embedded_redis import EmbeddedRedis
from app.settings import Settings
from app.store.enqueue import enqueue_runs
from app.store.keys import Keys
from app.store.limits import set_overrides
from app.store.scheduling import occurrence_run_id
from app.store.tasks import TaskStore

ROOT = Path(__file__).resolve().parents[1]
AGENT_A = "5b0c6a1e-2f3d-4e5f-8a9b-0c1d2e3f4a5b"
AGENT_B = "6c1d7b2f-3a4e-4f6a-9bac-1d2e3f4a5b6c"
LOG = {"steps": [{"name": "hello", "action": "log", "params": {"message": "hi"}}]}
LEAD_SECONDS = 4.0
RUNS_PER_TASK = 10


def env_for(url: str, tree: Path) -> dict[str, str]:
    base = {k: v for k, v in os.environ.items() if not k.startswith("CHIME_")}
    base.update({"REDIS_URL": url, "CHIME_LOG_LEVEL": "WARNING", "PYTHONPATH": str(tree)})
    return base


def start(url: str, tree: Path, what: str) -> "subprocess.Popen[bytes]":
    """``chime <what>`` of the tree at ``tree`` (its ``app`` and ``lua`` come first on the path)."""
    code = f"import sys; from app.cli import main; sys.exit(main([{what!r}]))"
    return subprocess.Popen(
        [sys.executable, "-c", code],
        env=env_for(url, tree),
        cwd=tree,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )


def wait_ready(client: redis.Redis, timeout: float = 60) -> None:
    """Until a worker has registered with RQ, and a moment more for its loop to start."""
    deadline = time.monotonic() + timeout
    while not client.smembers("rq:workers"):
        if time.monotonic() > deadline:
            raise SystemExit("no worker registered")
        time.sleep(0.05)
    time.sleep(1.0)


def task(agent: str, payload: dict[str, object], priority: int, **kw: object) -> Task:
    now = clock.now_ms()
    fields: dict[str, object] = {
        "id": str(uuid.uuid4()),
        "title": "bench",
        "description": "",
        "schedule_kind": "event",
        "payload": payload,
        "created_by": agent,
        "created_at": now,
        "updated_at": now,
        "priority": priority,
    }
    fields.update(kw)
    return Task(**fields)  # type: ignore[arg-type]


def wait_for(client: redis.Redis, key: str, field: str, timeout: float) -> int:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = client.hget(key, field)
        if value:
            return int(value)
        time.sleep(0.01)
    raise SystemExit(f"timed out waiting for {key} {field}")


def b_wait(url: str, flood: int, sleep: float, bounded: bool) -> float:
    """Seconds B's one run waited (``started_at - created_at``)."""
    client = redis.Redis.from_url(url, decode_responses=True)
    rq = redis.Redis.from_url(url)
    client.flushall()
    keys = Keys("chime")
    settings = Settings.from_env({"REDIS_URL": url})
    store = TaskStore(client, keys, settings)
    if not bounded:
        set_overrides(client, keys, AGENT_A, {"max_running": 100_000})
    worker = start(url, ROOT, "worker")
    try:
        wait_ready(client)
        if flood:
            sleep_step = {"name": "s", "action": "sleep", "params": {"seconds": sleep}}
            # ten runs per task: a task's history is capped, and A's load is in its runs
            tasks = [
                store.create(task(AGENT_A, {"steps": [sleep_step]}, 1))[0]
                for _ in range(max(1, flood // RUNS_PER_TASK))
            ]
            made = [store.run_now(t.id, AGENT_A) for t in tasks for _ in range(RUNS_PER_TASK)][
                :flood
            ]
            enqueue_runs(rq, keys, [(r.id, r.priority) for r in made if r.status == "queued"])
            wait_for(client, keys.run(made[0].id), "started_at", 60)
        b, _ = store.create(task(AGENT_B, LOG, 5))
        run = store.run_now(b.id, AGENT_B)
        if run.status == "queued":
            enqueue_runs(rq, keys, [(run.id, run.priority)])
        started = wait_for(client, keys.run(run.id), "started_at", 600)
        created = int(client.hget(keys.run(run.id), "created_at") or 0)
    finally:
        stop([worker])
        client.close()
        rq.close()
    return (started - created) / 1000


def throughput(url: str, tree: Path, runs: int, workers: int, unbound: bool = False) -> float:
    """``bench/throughput.py``'s Chime case with the processes of ``tree``: runs/s. With
    ``unbound``, the agent's ``max_running`` is raised above ``runs`` (the limits' bookkeeping
    without their bound)."""
    client = redis.Redis.from_url(url, decode_responses=True)
    client.flushall()
    keys = Keys("chime")
    if unbound:
        set_overrides(client, keys, AGENT_A, {"max_running": 100_000})
    store = TaskStore(client, keys, Settings.from_env({"REDIS_URL": url}))
    due = clock.now_ms() + int(LEAD_SECONDS * 1000)
    ids = []
    for _ in range(runs):
        t = task(AGENT_A, LOG, 5, schedule_kind="once", schedule_expr=clock.iso(due) or "")
        store.create(t)
        ids.append(t.id)
    if clock.now_ms() > due - 2000:
        raise SystemExit("creating the tasks took too long: lower --runs")
    run_keys = [keys.run(occurrence_run_id(t, due)) for t in ids]
    procs = [start(url, tree, "scheduler")] + [start(url, tree, "worker") for _ in range(workers)]
    try:
        wait_done(lambda: succeeded(client, run_keys), runs, LEAD_SECONDS + runs / 5 + 60)
    finally:
        stop(procs)
    finishes = finished_at(client, run_keys)
    client.close()
    return rate_to_last_finish(runs, due, finishes)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--flood", type=int, default=10_000)
    parser.add_argument("--sleep", type=float, default=0.5)
    parser.add_argument("--baseline", type=Path, help="a tree of Chime without the limits")
    parser.add_argument("--runs", type=int, default=2000)
    parser.add_argument("--workers", type=int, default=1)
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--skip-wait", action="store_true")
    args = parser.parse_args()
    server = EmbeddedRedis()
    server.start()
    try:
        if not args.skip_wait:
            alone = b_wait(server.url, 0, args.sleep, True)
            bounded = b_wait(server.url, args.flood, args.sleep, True)
            unbounded = b_wait(server.url, args.flood, args.sleep, False)
            print(
                f"B's wait: alone {alone * 1000:.0f} ms, A's flood with limits "
                f"{bounded * 1000:.0f} ms, A's flood without a bound {unbounded * 1000:.0f} ms"
            )
            print(
                f"ratios: limits / alone {bounded / alone:.1f}x, "
                f"no bound / limits {unbounded / bounded:.0f}x",
                flush=True,
            )
        if args.baseline is not None:
            cases = {
                "limits": lambda: throughput(server.url, ROOT, args.runs, args.workers),
                "limits, not binding": lambda: throughput(
                    server.url, ROOT, args.runs, args.workers, unbound=True
                ),
                "without limits": lambda: throughput(
                    server.url, args.baseline.resolve(), args.runs, args.workers
                ),
            }
            got: dict[str, list[float]] = {name: [] for name in cases}
            names = list(cases)
            for n in range(args.rounds):
                # each round in another order, so a noisy moment does not always hit one case
                for name in names[n % 3 :] + names[: n % 3]:
                    got[name].append(cases[name]())
                print(
                    "throughput runs/s: "
                    + ", ".join(f"{name} {got[name][-1]:.0f}" for name in names),
                    flush=True,
                )
            base = sum(got["without limits"])
            for name in names[:2]:
                print(f"throughput ratio, {name} / without, sums: {sum(got[name]) / base:.2f}")
    finally:
        server.stop()


if __name__ == "__main__":
    main()
