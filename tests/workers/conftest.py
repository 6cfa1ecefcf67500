"""A local HTTP server on 127.0.0.1 for the worker tests, recording what it was asked.

Routes: ``/json`` a JSON body; ``/text`` plain text; ``/echo`` the request back as JSON;
``/status/N``; ``/redirect?to=URL&code=N``; ``/loop`` redirects to itself; ``/big?n=BYTES``;
``/slow?s=SECONDS``; ``/hold/NAME?ms=N`` sleeps and records (name, start, end) so tests can see
how many requests overlapped; ``/flaky/KEY?n=N`` fails the first N calls per key with 500;
``/stall/KEY?s=N`` sleeps N seconds on the first call per key only.
"""

import json
import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

import pytest
import redis

from app.settings import Settings
from app.store.keys import Keys
from app.store.tasks import TaskStore
from tests.workers.sink import AsyncSink


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


def _make_handler(rec: Recorder) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

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
            with rec.lock:
                rec.requests.append(
                    {
                        "method": self.command,
                        "path": parts.path,
                        "headers": dict(self.headers),
                        "body": body.decode(errors="replace"),
                    }
                )
            path = parts.path
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
            elif path == "/slow":
                time.sleep(float(query.get("s", "1")))
                self._json(200, {"slept": True})
            elif path.startswith("/hold/"):
                name = path.rsplit("/", 1)[1]
                start = time.monotonic()
                time.sleep(int(query.get("ms", "100")) / 1000)
                end = time.monotonic()
                with rec.lock:
                    rec.holds.append((name, start, end))
                self._json(200, {"held": name})
            elif path.startswith("/flaky/"):
                key = path.rsplit("/", 1)[1]
                with rec.lock:
                    rec.calls[key] = rec.calls.get(key, 0) + 1
                    n = rec.calls[key]
                if n <= int(query.get("n", "1")):
                    self._json(500, {"call": n})
                else:
                    self._json(200, {"call": n})
            elif path.startswith("/stall/"):
                key = path.rsplit("/", 1)[1]
                with rec.lock:
                    rec.calls[key] = rec.calls.get(key, 0) + 1
                    n = rec.calls[key]
                if n == 1:
                    time.sleep(float(query.get("s", "30")))
                self._json(200, {"call": n})
            elif path == "/big":
                self._send(200, b"x" * int(query.get("n", "100000")), "text/plain")
            else:
                self._json(404, {"error": "no route"})

        do_GET = do_POST = do_PUT = do_DELETE = do_PATCH = do_HEAD = handle_any

    return Handler


@pytest.fixture
def http_server() -> Iterator[LocalServer]:
    server = LocalServer()
    server.start()
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture
def sink() -> Iterator[AsyncSink]:
    """The asyncio sink (``tests/workers/sink.py``), for hundreds of requests at once."""
    server = AsyncSink()
    server.start()
    try:
        yield server
    finally:
        server.stop()


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


@pytest.fixture
def workers(redis_url: str, tmp_path: Path) -> Iterator[Workers]:
    ws = Workers(redis_url, tmp_path)
    try:
        yield ws
    finally:
        ws.stop_all()


@pytest.fixture
def rq_client(redis_url: str) -> Iterator[redis.Redis]:
    client = redis.Redis.from_url(redis_url)
    try:
        yield client
    finally:
        client.close()


@pytest.fixture
def settings(redis_url: str) -> Settings:
    """The session's settings with loopback opened for ``http.request`` (see LOOPBACK)."""
    return Settings.from_env({"REDIS_URL": redis_url, "CHIME_HTTP_ALLOW": LOOPBACK})


@pytest.fixture
def store(r: redis.Redis, keys: Keys, settings: Settings) -> TaskStore:
    return TaskStore(r, keys, settings)


def wait_until(check: Callable[[], Any], timeout: float = 20, what: str = "condition") -> Any:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = check()
        if value:
            return value
        time.sleep(0.01)
    raise AssertionError(f"timed out waiting for {what}")


def status_of(r: redis.Redis, keys: Keys, run_id: str) -> str:
    return str(r.hget(keys.run(run_id), "status"))
