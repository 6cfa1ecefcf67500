"""What the worker suites share: a local HTTP server recording what it was asked, real
``chime worker`` processes, the pipeline on an event loop of its own, and records stored as the
task store and the scheduler write them.

The HTTP server's routes: ``/json`` a JSON body; ``/text`` plain text; ``/echo`` the request
back as JSON; ``/status/N``; ``/redirect?to=URL&code=N``; ``/loop`` redirects to itself;
``/big?n=BYTES``; ``/slow?s=SECONDS``; ``/hold/NAME?ms=N`` sleeps and records (name, start, end)
so tests can see how many requests overlapped; ``/flaky/KEY?n=N`` fails the first N calls per
key with 500; ``/stall/KEY?s=N`` sleeps N seconds on the first call per key only.
"""

import asyncio
import json
import os
import signal
import subprocess
import sys
import threading
import time
from collections import Counter
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

import redis
from rq import Queue

from app import clock
from app.core.pipeline import Pipeline, Step, parse_pipeline
from app.core.status import ScheduleKind
from app.core.task import Run, Task
from app.settings import Settings
from app.store.codec import to_hash
from app.store.enqueue import enqueue_runs
from app.store.keys import Keys
from tests.support.records import make_run, make_task
from workers import rqstate
from workers.egress import egress_policy, make_client, resolve_host
from workers.pipeline import PipelineResult, run_pipeline


@dataclass
class Recorder:
    lock: threading.Lock = field(default_factory=threading.Lock)
    requests: list[dict[str, Any]] = field(default_factory=list)
    holds: list[tuple[str, float, float]] = field(default_factory=list)
    calls: dict[str, int] = field(default_factory=dict)


class LocalServer:
    def __init__(self) -> None:
        self.recorder = Recorder()
        handler = _make_handler(self.recorder)
        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), handler)
        self.httpd.daemon_threads = True
        self.port = int(self.httpd.server_address[1])
        self.thread = threading.Thread(
            target=self.httpd.serve_forever, kwargs={"poll_interval": 0.02}, daemon=True
        )

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self) -> None:
        self.thread.start()

    def stop(self) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()


class _Handler(BaseHTTPRequestHandler):
    """The routes of :class:`LocalServer`, recording into ``rec``."""

    protocol_version = "HTTP/1.1"
    rec: Recorder

    def log_message(self, format: str, *args: Any) -> None:
        return

    def _body(self) -> bytes:
        length = int(self.headers.get("Content-Length") or 0)
        return self.rfile.read(length) if length else b""

    def _send(
        self, status: int, body: bytes, ctype: str, extra: dict[str, str] | None = None
    ) -> None:
        self.send_response(status)
        self.send_header("Content-Type", ctype)
        self.send_header("Content-Length", str(len(body)))
        for k, v in (extra or {}).items():
            self.send_header(k, v)
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(body)

    def _json(self, status: int, value: Any, extra: dict[str, str] | None = None) -> None:
        self._send(status, json.dumps(value).encode(), "application/json", extra)

    def handle_any(self) -> None:
        parts = urlsplit(self.path)
        query = {k: v[0] for k, v in parse_qs(parts.query).items()}
        body = self._body()
        with self.rec.lock:
            self.rec.requests.append(
                {
                    "method": self.command,
                    "path": parts.path,
                    "headers": dict(self.headers),
                    "body": body.decode(errors="replace"),
                }
            )
        if not (self._plain(parts.path, query, body) or self._timed(parts.path, query)):
            self._json(404, {"error": "no route"})

    def _plain(self, path: str, query: dict[str, str], body: bytes) -> bool:
        """The routes that answer at once; False for another path."""
        if path == "/json":
            self._json(200, {"items": [{"id": 7}], "next": "/text"}, {"Set-Cookie": "s=1"})
        elif path == "/text":
            self._send(200, b"plain words", "text/plain; charset=utf-8")
        elif path == "/echo":
            self._json(
                200,
                {
                    "method": self.command,
                    "headers": {k.lower(): v for k, v in self.headers.items()},
                    "body": body.decode(errors="replace"),
                },
            )
        elif path.startswith("/status/"):
            self._json(int(path.rsplit("/", 1)[1]), {"status": "as asked"})
        elif path == "/redirect":
            code = int(query.get("code", "302"))
            self._send(code, b"", "text/plain", {"Location": query["to"]})
        elif path == "/loop":
            self._send(302, b"", "text/plain", {"Location": "/loop"})
        elif path == "/big":
            self._send(200, b"x" * int(query.get("n", "100000")), "text/plain")
        else:
            return False
        return True

    def _timed(self, path: str, query: dict[str, str]) -> bool:
        """The routes that take time or count calls; False for another path."""
        name = path.rsplit("/", 1)[1]
        if path == "/slow":
            time.sleep(float(query.get("s", "1")))
            self._json(200, {"slept": True})
        elif path.startswith("/hold/"):
            start = time.monotonic()
            time.sleep(int(query.get("ms", "100")) / 1000)
            end = time.monotonic()
            with self.rec.lock:
                self.rec.holds.append((name, start, end))
            self._json(200, {"held": name})
        elif path.startswith("/flaky/"):
            n = self._call(name)
            self._json(500 if n <= int(query.get("n", "1")) else 200, {"call": n})
        elif path.startswith("/stall/"):
            n = self._call(name)
            if n == 1:
                time.sleep(float(query.get("s", "30")))
            self._json(200, {"call": n})
        else:
            return False
        return True

    def _call(self, key: str) -> int:
        """Count a call of ``key``; which call this is (1 for the first)."""
        with self.rec.lock:
            self.rec.calls[key] = self.rec.calls.get(key, 0) + 1
            return self.rec.calls[key]

    do_GET = do_POST = do_PUT = do_DELETE = do_PATCH = do_HEAD = handle_any


def _make_handler(rec: Recorder) -> type[BaseHTTPRequestHandler]:
    return type("Handler", (_Handler,), {"rec": rec})


# -- real `chime worker` processes ------------------------------------------------------

CHIME = str(Path(sys.executable).with_name("chime"))
#: the worker tests' sinks listen on loopback, which the default egress policy refuses: every
#: worker here is given the allowlist that opens it, as an operator would
LOOPBACK = "127.0.0.0/8"


class Workers:
    """``chime worker`` subprocesses started by a test, stopped by pid afterwards."""

    def __init__(self, redis_url: str, tmp: Path) -> None:
        self.redis_url = redis_url
        self.tmp = tmp
        self.procs: list[subprocess.Popen[bytes]] = []
        self.logs: list[Any] = []

    def start(self, *args: str, **env: str) -> subprocess.Popen[bytes]:
        full_env = {
            **os.environ,
            "REDIS_URL": self.redis_url,
            "CHIME_LOG_LEVEL": "WARNING",
            "CHIME_HTTP_ALLOW": LOOPBACK,
            **env,
        }
        log = (self.tmp / f"worker-{len(self.procs)}.log").open("wb")
        self.logs.append(log)
        proc = subprocess.Popen(
            [CHIME, "worker", *args], env=full_env, stdout=log, stderr=subprocess.STDOUT
        )
        self.procs.append(proc)
        return proc

    def stop_all(self) -> None:
        for proc in self.procs:
            if proc.poll() is None:
                proc.send_signal(signal.SIGKILL)
                proc.wait(10)
        for log in self.logs:
            log.close()

    def output(self) -> str:
        return "\n".join(p.read_text() for p in sorted(self.tmp.glob("worker-*.log")))


def status_of(r: redis.Redis, keys: Keys, run_id: str) -> str:
    return str(r.hget(keys.run(run_id), "status"))


# -- records ------------------------------------------------------------------------------

#: what a worker test's task is unless it says otherwise: started by events or run_now only
#: (no scheduler fires it), retried at once
WORKER_TASK: dict[str, Any] = {
    "schedule_kind": ScheduleKind.EVENT,
    "schedule_expr": None,
    "retry_delay_seconds": 0.0,
}


def worker_task(steps: list[dict[str, Any]] | None = None, **fields: Any) -> Task:
    """:func:`tests.support.records.make_task` with :data:`WORKER_TASK`'s defaults."""
    return make_task(steps, **{**WORKER_TASK, **fields})


def store_task(r: redis.Redis, keys: Keys, task: Task) -> Task:
    """Write the task hash and its listing indexes, as the task store does."""
    r.hset(keys.task(task.id), mapping=to_hash(task))
    for index in keys.indexes(task.created_by, task.status, task.schedule_kind):
        r.zadd(index, {task.id: task.created_at})
    return task


def store_run(r: redis.Redis, keys: Keys, run: Run) -> Run:
    r.hset(keys.run(run.id), mapping=to_hash(run))
    r.zadd(keys.task_runs(run.task_id), {run.id: run.created_at})
    return run


def release_due(r: redis.Redis, rq: redis.Redis, settings: Any) -> Counter[str]:
    """One scheduler pass: delayed runs that are due are released (dedupe applies) and
    enqueued. Returns the released runs counted by outcome."""
    from workers.scheduler import Scheduler

    return Scheduler(settings, client=r, rq=rq).run_once().released


def snapshot(r: redis.Redis) -> dict[str, Any]:
    """Every key with its type and content, to prove a refusal changed nothing."""
    out: dict[str, Any] = {}
    for key in sorted(r.keys("*")):
        kind = r.type(key)
        if kind == "hash":
            out[key] = r.hgetall(key)
        elif kind == "zset":
            out[key] = r.zrange(key, 0, -1, withscores=True)
        elif kind == "list":
            out[key] = r.lrange(key, 0, -1)
        elif kind == "set":
            out[key] = sorted(r.smembers(key))
        else:
            out[key] = r.get(key)
    return out


def queued_run(r: redis.Redis, keys: Keys, task: Task, **kw: Any) -> str:
    run = store_run(r, keys, make_run(task, **kw))
    r.zadd(keys.outbox, {run.id: clock.now_ms() + 30_000})
    return run.id


def taken_job(rq: redis.Redis, keys: Keys, run_id: str) -> rqstate.RqJob:
    """The RQ job of ``run_id`` enqueued on ``chime-p5`` and taken off its queue, as a worker
    reads it (``rq`` does not decode replies)."""
    enqueue_runs(rq, keys, [(run_id, 5)])
    rq.lpop(Queue.redis_queue_namespace_prefix + "chime-p5")
    reply = rq.hmget(rqstate.job_key(run_id), "data", "origin", "result_ttl", "failure_ttl")
    found = rqstate.parse(run_id, "chime-p5", reply)
    assert found is not None and found.run_id == run_id
    return found


# -- the pipeline ---------------------------------------------------------------------------


def run_steps(
    steps: list[dict[str, Any]],
    settings: Settings | None = None,
    validate: bool = True,
    **kw: Any,
) -> PipelineResult:
    """The pipeline on an event loop of its own, with the worker's pinned client."""
    pipeline = (
        parse_pipeline({"steps": steps}) if validate else Pipeline(steps=[Step(**s) for s in steps])
    )
    task = worker_task()
    run = make_run(task, **kw.pop("run", {}))
    settings = settings or Settings(http_allow=(LOOPBACK,))
    resolve = kw.pop("resolve", resolve_host)
    verify = kw.pop("verify", None)
    network = kw.pop("network", None)

    async def go() -> PipelineResult:
        policy = egress_policy(settings)
        async with make_client(policy, 20, resolve, verify, network) as http:
            return await run_pipeline(pipeline, task, run, settings, http=http, policy=policy, **kw)

    return asyncio.run(go())


def http(name: str, url: str, **params: Any) -> dict[str, Any]:
    return {"name": name, "action": "http.request", "params": {"url": url, **params}}
