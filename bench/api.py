"""HTTP API benchmark (not a test): Chime's endpoints against a bare Litestar app, side by side.

Runs on its own ``redis-server`` (``app.embedded_redis``), never on the machine's Redis, and
drives both servers with ``wrk`` (``apt-get install wrk``). In the same run:

- Chime: ``chime web`` (Litestar on one uvicorn worker, uvloop + httptools), an agent token.
- Bare: the least a Litestar app can do for the same request, on the same uvicorn: a msgspec
  struct of the task's fields as ``data``, an async handler that writes one Redis hash through
  ``redis.asyncio`` and returns the struct with an id (201); ``GET /tasks/{id}`` reads one hash
  and ``GET /tasks?limit=50`` reads 50 ids from a sorted set and their hashes in one pipeline.

For each endpoint, rounds alternate between the two servers (each round warms up, then
measures); the figure is the median req/s over the rounds and the ratio is Chime / bare. The
contract asks ``POST /tasks`` to reach 0.6x of the bare endpoint.

Usage: ``.venv/bin/python bench/api.py [--seconds 8] [--rounds 3] [--connections 32]``
"""

import argparse
import os
import re
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path
from typing import Any

import httpx
import msgspec
from once_tasks import AGENT

from app.embedded_redis import EmbeddedRedis, free_port

ROOT = Path(__file__).resolve().parents[1]
TOKEN = "bench-token-for-the-api-benchmark"
TASK = {
    "title": "hourly report",
    "description": "send the report",
    "schedule_kind": "cron",
    "schedule_expr": "0 * * * *",
    "timezone": "UTC",
    "created_by": AGENT,
    "priority": 5,
    "payload": {"steps": [{"name": "hello", "action": "log", "params": {"message": "hi"}}]},
}
#: tasks each server holds before the reads are measured
PRELOAD = 500

WRK_POST = """
wrk.method = "POST"
wrk.body = [[{body}]]
wrk.headers["Content-Type"] = "application/json"
wrk.headers["Authorization"] = "Bearer {token}"
"""
WRK_GET = """
wrk.headers["Authorization"] = "Bearer {token}"
"""


# -- the bare peer --------------------------------------------------------------------------


def bare_app(redis_url: str) -> Any:
    """The bare Litestar app (built in the server process)."""
    from enum import StrEnum

    import redis.asyncio as aioredis
    from litestar import Litestar, get, post

    class Kind(StrEnum):
        CRON = "cron"
        RRULE = "rrule"
        ONCE = "once"
        EVENT = "event"

    class TaskIn(msgspec.Struct, kw_only=True, forbid_unknown_fields=True):
        title: str
        description: str
        schedule_kind: Kind
        schedule_expr: str | None = None
        timezone: str = "UTC"
        payload: dict[str, Any]
        created_by: uuid.UUID
        priority: int = 5

    class TaskOut(TaskIn, kw_only=True):
        id: str

    class Page(msgspec.Struct):
        items: list[dict[str, Any]]
        total: int

    client = aioredis.Redis.from_url(redis_url, decode_responses=True)
    encoder = msgspec.json.Encoder()

    @post("/tasks", status_code=201)
    async def create(data: TaskIn) -> TaskOut:
        task_id = str(uuid.uuid4())
        fields = msgspec.to_builtins(data)
        fields["payload"] = encoder.encode(data.payload).decode()
        await client.hset(f"bare:task:{task_id}", mapping=fields)
        return TaskOut(**msgspec.structs.asdict(data), id=task_id)

    @get("/tasks/{task_id:str}")
    async def read(task_id: str) -> dict[str, Any]:
        found: dict[str, Any] = await client.hgetall(f"bare:task:{task_id}")
        return found

    @get("/tasks")
    async def listing(limit: int = 50) -> Page:
        ids = await client.zrevrange("bare:index", 0, limit - 1)
        pipe = client.pipeline(transaction=False)
        for task_id in ids:
            pipe.hgetall(f"bare:task:{task_id}")
        items = await pipe.execute()
        return Page(items=items, total=await client.zcard("bare:index"))

    return Litestar([create, read, listing])


def serve_bare(port: int, redis_url: str) -> None:
    import uvicorn

    uvicorn.run(bare_app(redis_url), host="127.0.0.1", port=port, log_level="warning")


# -- running --------------------------------------------------------------------------------


def wait_for(url: str, timeout: float = 20.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            httpx.get(url, timeout=1.0)
            return
        except httpx.HTTPError:
            time.sleep(0.1)
    raise RuntimeError(f"{url} did not answer")


def start_chime(port: int, redis_url: str) -> subprocess.Popen[bytes]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("CHIME_")}
    env.update(
        {
            "REDIS_URL": redis_url,
            "PORT": str(port),
            "CHIME_AGENT_TOKENS": f"{AGENT}:{TOKEN}",
            "CHIME_LOG_LEVEL": "WARNING",
            # the benchmark creates tens of thousands of tasks for one agent: the default
            # max_tasks (10,000) would answer 429 and measure the refusal, not the create
            "CHIME_MAX_TASKS": "10000000",
        }
    )
    chime = Path(sys.executable).with_name("chime")
    proc = subprocess.Popen([str(chime), "web"], env=env, cwd=ROOT)
    wait_for(f"http://127.0.0.1:{port}/healthz")
    return proc


def start_bare(port: int, redis_url: str) -> subprocess.Popen[bytes]:
    proc = subprocess.Popen(
        [sys.executable, __file__, "--serve-bare", str(port), redis_url], cwd=ROOT
    )
    wait_for(f"http://127.0.0.1:{port}/tasks/none")
    return proc


def preload(base: str, index_url: str | None) -> str:
    """PRELOAD tasks through the API; the id of one of them."""
    import redis

    headers = {"Authorization": f"Bearer {TOKEN}"}
    last = ""
    with httpx.Client(base_url=base, headers=headers) as client:
        for _ in range(PRELOAD):
            resp = client.post("/tasks", json=TASK)
            resp.raise_for_status()
            last = resp.json()["id"]
            if index_url:  # the bare app keeps no index: the bench builds the one it reads
                with redis.Redis.from_url(index_url) as r:
                    r.zadd("bare:index", {last: time.time()})
    return last


def wrk(url: str, script: str, seconds: float, connections: int) -> float:
    """Requests per second that ``wrk`` measured (non-2xx answers make it a failure)."""
    with tempfile.NamedTemporaryFile("w", suffix=".lua", delete=False) as f:
        f.write(script)
    try:
        out = subprocess.run(
            ["wrk", "-t1", f"-c{connections}", f"-d{max(1, round(seconds))}s", "-s", f.name, url],
            capture_output=True,
            text=True,
            check=True,
        ).stdout
    finally:
        os.unlink(f.name)
    if "Non-2xx" in out:
        raise RuntimeError(f"{url}: non-2xx answers\n{out}")
    found = re.search(r"Requests/sec:\s+([\d.]+)", out)
    if found is None:
        raise RuntimeError(out)
    return float(found.group(1))


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=8.0)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--connections", type=int, default=32)
    parser.add_argument("--serve-bare", nargs=2, metavar=("PORT", "REDIS_URL"))
    args = parser.parse_args(argv)
    if args.serve_bare:
        serve_bare(int(args.serve_bare[0]), args.serve_bare[1])
        return

    server = EmbeddedRedis(data_dir=Path(tempfile.mkdtemp(prefix="chime-bench-api-")))
    server.start()
    procs: list[subprocess.Popen[bytes]] = []
    try:
        chime_port, bare_port = free_port(), free_port()
        procs.append(start_chime(chime_port, server.url))
        procs.append(start_bare(bare_port, server.url))
        bases = {
            "chime": f"http://127.0.0.1:{chime_port}",
            "bare": f"http://127.0.0.1:{bare_port}",
        }
        ids = {
            "chime": preload(bases["chime"], None),
            "bare": preload(bases["bare"], server.url),
        }
        body = msgspec.json.encode(TASK).decode()
        post = WRK_POST.format(body=body, token=TOKEN)
        get = WRK_GET.format(token=TOKEN)
        cases = [
            ("POST /tasks", lambda who: (f"{bases[who]}/tasks", post)),
            ("GET /tasks/{id}", lambda who: (f"{bases[who]}/tasks/{ids[who]}", get)),
            ("GET /tasks?limit=50", lambda who: (f"{bases[who]}/tasks?limit=50", get)),
        ]
        print(
            f"{args.rounds} rounds of {args.seconds:g} s per server, wrk -t1 "
            f"-c{args.connections}; median req/s"
        )
        print(f"{'endpoint':<22}{'chime':>10}{'bare':>10}{'chime/bare':>12}")
        for name, target in cases:
            rates: dict[str, list[float]] = {"chime": [], "bare": []}
            for _ in range(args.rounds):
                for who in ("chime", "bare"):
                    url, script = target(who)
                    wrk(url, script, 2.0, args.connections)  # warm up
                    rates[who].append(wrk(url, script, args.seconds, args.connections))
            chime, bare = (statistics.median(rates[w]) for w in ("chime", "bare"))
            print(f"{name:<22}{chime:>10,.0f}{bare:>10,.0f}{chime / bare:>11.2f}x", flush=True)
    finally:
        for proc in procs:
            proc.terminate()
            proc.wait(timeout=10)
        server.stop()


if __name__ == "__main__":
    sys.path.insert(0, str(ROOT))
    main()
