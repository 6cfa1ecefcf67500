"""Helpers for tests that run Chime's processes for real: environments, ports, a hook server."""

import json
import os
import signal
import socket
import subprocess
import sys
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any, TypeVar

import httpx

ROOT = Path(__file__).resolve().parents[2]
BIN = Path(sys.executable).parent
T = TypeVar("T")


def chime_env(**extra: str) -> dict[str, str]:
    """The test process's environment without Chime's variables, plus ``extra``."""
    env = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith("CHIME_") and k not in ("REDIS_URL", "PORT")
    }
    env["PATH"] = f"{BIN}{os.pathsep}{env.get('PATH', '')}"
    env["PYTHONUNBUFFERED"] = "1"
    env.update(extra)
    return env


def run_chime(*args: str, **env: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "app.cli", *args],
        env=chime_env(**env),
        capture_output=True,
        text=True,
        timeout=60,
        cwd=ROOT,
    )


def free_ports(count: int = 1, step: int = 1) -> int:
    """A port ``p`` such that ``p, p+step, ... p+(count-1)*step`` are all free now."""
    for _ in range(200):
        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            base = int(s.getsockname()[1])
        if base + (count - 1) * step > 65535:
            continue
        if all(_free(base + i * step) for i in range(1, count)):
            return base
    raise RuntimeError("no free port range")


def _free(port: int) -> bool:
    with socket.socket() as s:
        try:
            s.bind(("0.0.0.0", port))
        except OSError:
            return False
    return True


class Output:
    """A child process whose merged output is collected by a thread, for asserts and errors."""

    def __init__(self, args: list[str], env: dict[str, str], cwd: Path) -> None:
        self.lines: list[str] = []
        self.proc = subprocess.Popen(
            args,
            env=env,
            cwd=cwd,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
            start_new_session=True,
        )
        self._thread = threading.Thread(target=self._read, daemon=True)
        self._thread.start()

    def _read(self) -> None:
        assert self.proc.stdout is not None
        for line in self.proc.stdout:
            self.lines.append(line.rstrip("\n"))

    def stop(self, sig: int = signal.SIGTERM, timeout: float = 30) -> int:
        """Signal the process (not its group: it stops its own children), wait, close pipes."""
        if self.proc.poll() is None:
            self.proc.send_signal(sig)
        try:
            code = self.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            os.killpg(self.proc.pid, signal.SIGKILL)
            self.proc.wait()
            raise
        finally:
            self._thread.join(5)
            if self.proc.stdout is not None:
                self.proc.stdout.close()
        return code

    def text(self) -> str:
        return "\n".join(self.lines)

    def find(self, prefix: str) -> str | None:
        for line in list(self.lines):
            if prefix in line:
                return line.split(prefix, 1)[1].strip()
        return None


class Hook:
    """A local HTTP server that records every request an ``http.request`` step sends it."""

    def __init__(self) -> None:
        self.requests: list[dict[str, Any]] = []
        hook = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                body = self.rfile.read(length).decode() if length else ""
                hook.requests.append({"path": self.path, "body": body})
                payload = json.dumps({"ok": True}).encode()
                self.send_response(200)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(payload)))
                self.end_headers()
                self.wfile.write(payload)

            def log_message(self, format: str, *args: Any) -> None:
                return

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        self._thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    @contextmanager
    def running(self) -> Iterator["Hook"]:
        self._thread.start()
        try:
            yield self
        finally:
            self.server.shutdown()
            self.server.server_close()


def once_task(agent_id: str, hook_url: str, title: str = "ping the hook") -> dict[str, Any]:
    """A ``once`` task due now whose single step POSTs to the hook."""
    from app import clock

    return {
        "title": title,
        "description": "end to end",
        "schedule_kind": "once",
        "schedule_expr": clock.iso(clock.now_ms()),
        "created_by": agent_id,
        "payload": {
            "steps": [
                {
                    "name": "call",
                    "action": "http.request",
                    "params": {"method": "POST", "url": f"{hook_url}/hook", "json": {"n": 1}},
                }
            ]
        },
    }


def metric(text: str, name: str, **labels: str) -> float:
    """One sample of a Prometheus exposition, 0 when absent."""
    from prometheus_client.parser import text_string_to_metric_families

    for family in text_string_to_metric_families(text):
        for s in family.samples:
            if s.name == name and all(s.labels.get(k) == v for k, v in labels.items()):
                return float(s.value)
    return 0.0


def alive(pid: int) -> bool:
    """True while ``pid`` exists and is not a zombie."""
    try:
        with open(f"/proc/{pid}/stat", "rb") as f:
            stat = f.read()
    except OSError:
        return False
    return stat[stat.rfind(b")") + 2 :].split()[0] != b"Z"


def scrape(base: str) -> str:
    """``GET /metrics`` of a running web process, which must answer it without a token."""
    response = httpx.get(base + "/metrics", timeout=5)
    assert response.status_code == 200, f"GET /metrics: {response.status_code} {response.text}"
    return response.text
