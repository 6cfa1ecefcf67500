"""I/O-bound throughput benchmark (not a test): Chime runs of one HTTP call against arq.

Runs on its own ``redis-server`` (``app.embedded_redis``) and its own HTTP sink (an asyncio
server in a child process that holds every request ``--hold-ms`` before answering). In the same
run, for 1 and 2 worker processes:

- Chime: N ``once`` tasks whose pipeline is one ``http.request`` (POST of a small JSON body to
  the sink), all due at the same moment T (a few seconds ahead, so a ``chime scheduler`` and the
  ``chime worker`` processes, with their default settings, are up and idle by then).
- arq: the same number of worker processes (``max_jobs=100``), N jobs each doing one
  ``httpx`` POST to the same sink (a client per process), enqueued beforehand with
  ``_defer_until=T``. arq needs redis-py < 6, so it runs from a virtualenv of its own
  (``.venv-bench``, made on first use from the ``bench`` extra of ``pyproject.toml``).

Per system: runs/s = N / (last finish - T); lateness = the start of the step (Chime: the
``http.request`` step's ``started_at``; arq: the job's ``start_time``) minus T, p50 and p99;
peak RSS of each worker process (``VmHWM``). The ratio Chime / arq compares the two.

All N runs belong to one agent. Its ``max_running`` (default 100: at most 100 of one agent's
runs in flight at once, whatever the workers could take) is raised above N unless
``--default-limits`` is given, so the figures measure the workers; with ``--default-limits``
they show one agent's share at the default limits.

Usage: ``.venv/bin/python bench/io_throughput.py [--runs 1000] [--workers 1 2]
[--hold-ms 200] [--concurrency N] [--default-limits] [--skip-arq]``
"""

import argparse
import asyncio
import json
import os
import signal
import subprocess
import sys
import textwrap
import time
import tomllib
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

import redis
from measure import rate_to_last_finish, wait_done
from once_tasks import AGENT, create_once
from procs import stop

from app import clock
from app.embedded_redis import EmbeddedRedis, free_port
from app.settings import Settings
from app.store.keys import Keys
from app.store.limits import set_overrides
from app.store.scheduling import occurrence_run_id
from app.store.tasks import TaskStore

ROOT = Path(__file__).resolve().parents[1]
BENCH_VENV = ROOT / ".venv-bench"
#: processes get this long to start before the moment everything falls due
LEAD_SECONDS = 6.0


# -- the sink ----------------------------------------------------------------------------------


class _Sink(asyncio.Protocol):
    """HTTP/1.1 with keep-alive: every request is answered after the hold, in order."""

    hold = 0.2
    count = 0
    in_flight = 0
    peak = 0

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport: asyncio.Transport = transport  # type: ignore[assignment]
        self.buffer = b""
        self.queue: list[float] = []

    def data_received(self, data: bytes) -> None:
        self.buffer += data
        while True:
            end = self.buffer.find(b"\r\n\r\n")
            if end < 0:
                return
            head = self.buffer[:end].decode("latin-1")
            length = 0
            for line in head.split("\r\n")[1:]:
                name, _, value = line.partition(":")
                if name.strip().lower() == "content-length":
                    length = int(value.strip())
            if len(self.buffer) < end + 4 + length:
                return
            self.buffer = self.buffer[end + 4 + length :]
            _Sink.count += 1
            _Sink.in_flight += 1
            _Sink.peak = max(_Sink.peak, _Sink.in_flight)
            loop = asyncio.get_running_loop()
            loop.call_later(self.hold, self._answer)

    def _answer(self) -> None:
        _Sink.in_flight -= 1
        if not self.transport.is_closing():
            body = b'{"ok":true}'
            self.transport.write(
                b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: "
                + str(len(body)).encode()
                + b"\r\n\r\n"
                + body
            )


def run_sink(port: int, hold_ms: int) -> None:
    """The sink process: serve until SIGTERM, then print the most requests it held at once."""
    _Sink.hold = hold_ms / 1000

    async def serve() -> None:
        loop = asyncio.get_running_loop()
        stop = asyncio.Event()
        loop.add_signal_handler(signal.SIGTERM, stop.set)
        server = await loop.create_server(_Sink, "127.0.0.1", port, backlog=4096)
        async with server:
            await stop.wait()
        print(f"sink: {_Sink.count} requests, at most {_Sink.peak} held at once", flush=True)

    asyncio.run(serve())


# -- helpers -----------------------------------------------------------------------------------


def env_for(url: str, **extra: str) -> dict[str, str]:
    base = {k: v for k, v in os.environ.items() if not k.startswith("CHIME_")}
    # the sink listens on loopback, which egress refuses unless it is allowed
    base.update(
        {"REDIS_URL": url, "CHIME_LOG_LEVEL": "WARNING", "CHIME_HTTP_ALLOW": "127.0.0.1", **extra}
    )
    return base


def peak_rss_mb(pid: int) -> float:
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
    except OSError:
        pass
    return 0.0


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))]


@dataclass
class Figures:
    rate: float
    p50_ms: float
    p99_ms: float
    rss_mb: float


# -- Chime -------------------------------------------------------------------------------------


def bench_chime(
    url: str, sink: str, runs: int, workers: int, concurrency: int | None, default_limits: bool
) -> Figures:
    client = redis.Redis.from_url(url, decode_responses=True)
    client.flushall()
    keys = Keys("chime")
    store = TaskStore(client, keys, Settings.from_env({"REDIS_URL": url}))
    if not default_limits:
        set_overrides(client, keys, AGENT, {"max_running": runs, "max_runs_per_minute": 60 * runs})
    payload = {
        "steps": [
            {
                "name": "call",
                "action": "http.request",
                "params": {"method": "POST", "url": f"{sink}/hook", "json": {"n": 1}},
            }
        ]
    }
    due = clock.now_ms() + int(LEAD_SECONDS * 1000)
    task_ids = create_once(store, [due] * runs, payload)
    if clock.now_ms() > due - 3000:
        raise SystemExit("creating the tasks took too long: lower --runs")
    run_keys = [keys.run(occurrence_run_id(t, due)) for t in task_ids]
    env = env_for(url)
    if concurrency is not None:
        env["CHIME_WORKER_CONCURRENCY"] = str(concurrency)
    chime = str(Path(sys.executable).with_name("chime"))
    scheduler = subprocess.Popen([chime, "scheduler"], env=env, cwd=ROOT)
    worker_procs = [subprocess.Popen([chime, "worker"], env=env, cwd=ROOT) for _ in range(workers)]

    def finished() -> int:
        # the stats hash counts ended runs: one read, so the bench itself takes little CPU
        counts = client.hmget(keys.stats, "runs:succeeded:schedule", "runs:failed:schedule")
        return sum(int(c or 0) for c in counts)

    try:
        wait_done(finished, runs, LEAD_SECONDS + runs / 5 + 60, every=0.05)
        rss = max(peak_rss_mb(p.pid) for p in worker_procs)
    finally:
        stop([scheduler, *worker_procs])
    pipe = client.pipeline(transaction=False)
    for k in run_keys:
        pipe.hmget(k, "status", "finished_at", "steps")
    rows = pipe.execute()
    client.close()
    failed = sum(1 for status, _, _ in rows if status != "succeeded")
    if failed:
        raise SystemExit(f"{failed} Chime runs did not succeed")
    rate = rate_to_last_finish(runs, due, (int(f) for _, f, _ in rows))
    late = [(_iso_ms(json.loads(s)[0]["started_at"]) - due) for _, _, s in rows]
    return Figures(rate, percentile(late, 0.5), percentile(late, 0.99), rss)


def _iso_ms(text: str) -> float:
    return datetime.fromisoformat(text.replace("Z", "+00:00")).timestamp() * 1000


# -- arq ---------------------------------------------------------------------------------------

ARQ_APP = textwrap.dedent(
    """
    import os
    import httpx
    from arq.connections import RedisSettings

    SINK = os.environ["BENCH_SINK"]

    async def startup(ctx):
        ctx["http"] = httpx.AsyncClient(limits=httpx.Limits(max_connections=200))

    async def shutdown(ctx):
        await ctx["http"].aclose()

    async def post(ctx):
        response = await ctx["http"].post(SINK + "/hook", json={"n": 1})
        response.raise_for_status()
        return response.status_code

    class WorkerSettings:
        functions = [post]
        on_startup = startup
        on_shutdown = shutdown
        max_jobs = 100
        keep_result = 3600
        redis_settings = RedisSettings.from_dsn(os.environ["BENCH_REDIS"])
    """
)

ARQ_ENQUEUE = textwrap.dedent(
    """
    import asyncio, datetime, os, sys
    from arq import create_pool
    from arq.connections import RedisSettings

    async def main():
        n, due = int(sys.argv[1]), float(sys.argv[2])
        pool = await create_pool(RedisSettings.from_dsn(os.environ["BENCH_REDIS"]))
        at = datetime.datetime.fromtimestamp(due, datetime.timezone.utc)
        for i in range(n):
            await pool.enqueue_job("post", _job_id=f"j{i}", _defer_until=at)
        await pool.aclose()

    asyncio.run(main())
    """
)

ARQ_RESULTS = textwrap.dedent(
    """
    import asyncio, json, os, sys
    from arq import create_pool
    from arq.connections import RedisSettings
    from arq.jobs import Job

    async def main():
        n = int(sys.argv[1])
        pool = await create_pool(RedisSettings.from_dsn(os.environ["BENCH_REDIS"]))
        out = []
        for i in range(n):
            info = await Job(f"j{i}", pool).result_info()
            if info is not None:
                start, end = info.start_time.timestamp(), info.finish_time.timestamp()
                out.append([info.success, start, end])
        await pool.aclose()
        print(json.dumps(out))

    asyncio.run(main())
    """
)


def bench_python() -> str:
    """The bench virtualenv's python, made from the ``bench`` extra on first use."""
    python = BENCH_VENV / "bin" / "python"
    if not python.exists():
        extra = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"][
            "optional-dependencies"
        ]["bench"]
        subprocess.run([sys.executable, "-m", "venv", str(BENCH_VENV)], check=True)
        subprocess.run([str(python), "-m", "pip", "install", "--quiet", *extra], check=True)
    return str(python)


def bench_arq(url: str, sink: str, runs: int, workers: int, tmp: Path) -> Figures:
    python = bench_python()
    client = redis.Redis.from_url(url)
    client.flushall()
    (tmp / "arq_app.py").write_text(ARQ_APP)
    (tmp / "arq_enqueue.py").write_text(ARQ_ENQUEUE)
    (tmp / "arq_results.py").write_text(ARQ_RESULTS)
    env = {**os.environ, "BENCH_REDIS": url, "BENCH_SINK": sink, "PYTHONPATH": str(tmp)}
    due = time.time() + LEAD_SECONDS
    subprocess.run([python, str(tmp / "arq_enqueue.py"), str(runs), str(due)], env=env, check=True)
    if time.time() > due - 2:
        raise SystemExit("enqueueing the arq jobs took too long: lower --runs")
    arq = str(Path(python).with_name("arq"))
    procs = [
        subprocess.Popen(
            [arq, "arq_app.WorkerSettings"],
            env=env,
            cwd=tmp,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        for _ in range(workers)
    ]

    def finished() -> int:
        # arq keeps a job in its queue until the job is done
        return runs - int(client.zcard("arq:queue"))

    try:
        wait_done(finished, runs, LEAD_SECONDS + runs / 5 + 60, every=0.05)
        rss = max(peak_rss_mb(p.pid) for p in procs)
    finally:
        stop(procs)
    out = subprocess.run(
        [python, str(tmp / "arq_results.py"), str(runs)],
        env=env,
        check=True,
        capture_output=True,
        text=True,
    )
    rows = json.loads(out.stdout)
    client.close()
    if not all(ok for ok, _, _ in rows) or len(rows) != runs:
        raise SystemExit("some arq jobs failed")
    rate = rate_to_last_finish(runs, due * 1000, (f * 1000 for _, _, f in rows))
    late = [(s - due) * 1000 for _, s, _ in rows]
    return Figures(rate, percentile(late, 0.5), percentile(late, 0.99), rss)


# -- main --------------------------------------------------------------------------------------


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=1000)
    parser.add_argument("--workers", type=int, nargs="+", default=[1, 2])
    parser.add_argument("--hold-ms", type=int, default=200)
    parser.add_argument("--concurrency", type=int, default=None, help="default: chime's own")
    parser.add_argument(
        "--default-limits", action="store_true", help="keep the agent's max_running at its default"
    )
    parser.add_argument("--skip-arq", action="store_true")
    parser.add_argument("--sink", type=int, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.sink:
        run_sink(args.sink, args.hold_ms)
        return
    server = EmbeddedRedis()
    server.start()
    port = free_port()
    sink_proc = subprocess.Popen(
        [sys.executable, __file__, "--sink", str(port), "--hold-ms", str(args.hold_ms)], cwd=ROOT
    )
    sink = f"http://127.0.0.1:{port}"
    rows: list[tuple[int, Figures, Figures | None]] = []
    try:
        time.sleep(1)
        import tempfile

        with tempfile.TemporaryDirectory() as tmp:
            for w in args.workers:
                chime = bench_chime(
                    server.url, sink, args.runs, w, args.concurrency, args.default_limits
                )
                arq = (
                    None if args.skip_arq else bench_arq(server.url, sink, args.runs, w, Path(tmp))
                )
                rows.append((w, chime, arq))
                line = (
                    f"workers={w}  chime {chime.rate:7.1f} runs/s p50 {chime.p50_ms:6.0f} ms "
                    f"p99 {chime.p99_ms:6.0f} ms rss {chime.rss_mb:5.0f} MB"
                )
                if arq is not None:
                    line += (
                        f" | arq {arq.rate:7.1f} jobs/s p50 {arq.p50_ms:6.0f} ms p99 "
                        f"{arq.p99_ms:6.0f} ms rss {arq.rss_mb:5.0f} MB"
                        f" | {chime.rate / arq.rate:.2f}x"
                    )
                print(line, flush=True)
    finally:
        sink_proc.terminate()
        sink_proc.wait(10)
        server.stop()
    print()
    print(
        "| workers | Chime runs/s | Chime lateness p50 / p99 | Chime peak RSS | arq jobs/s "
        "| arq lateness p50 / p99 | arq peak RSS | Chime / arq |"
    )
    print("|---|---|---|---|---|---|---|---|")
    for w, c, a in rows:
        arq_cols = (
            f"{a.rate:,.0f} | {a.p50_ms:,.0f} / {a.p99_ms:,.0f} ms | {a.rss_mb:.0f} MB | "
            f"{c.rate / a.rate:.2f}x"
            if a is not None
            else "- | - | - | -"
        )
        print(
            f"| {w} | {c.rate:,.0f} | {c.p50_ms:,.0f} / {c.p99_ms:,.0f} ms | {c.rss_mb:.0f} MB | "
            f"{arq_cols} |"
        )


if __name__ == "__main__":
    sys.exit(main())
