"""``chime dev``: the whole system in one terminal, like ``honcho start`` with Redis included.

Without ``REDIS_URL`` an embedded ``redis-server`` keeps its append-only file under
``./.chime/``, so tasks survive a restart. Each process runs in its own session, so Ctrl-C
reaches only this supervisor, which then stops the children in order: SIGTERM to each process
group, SIGKILL after a grace period, then Redis last so the workers can record what they were
doing. Every process seen under a child is remembered, so a grandchild in a process group of
its own (as RQ's work horse runs) is stopped too, even after its parent has died.
"""

import contextlib
import json
import os
import secrets
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from types import FrameType
from typing import IO, Any

import redis

from app import startup
from app.core.errors import ChimeError
from app.embedded_redis import EmbeddedRedis, free_port
from app.logs import mask_url
from app.settings import MIN_TOKEN_LENGTH, Settings
from app.store import connection
from app.store.agents import agent_for_token, create_agent
from app.store.keys import Keys

DATA_DIR = ".chime"
AGENT_FILE = "dev-agent.json"
ADMIN_FILE = "dev-admin-token"
WORKERS = 2
DASHBOARD_FALLBACK_PORT = 9181
#: egress of ``chime dev`` when CHIME_HTTP_ALLOW is unset: the default (public addresses)
#: plus loopback, so local webhook receivers are reachable
DEV_HTTP_ALLOW = "public,127.0.0.0/8,::1,localhost"
#: how long children get to finish after SIGTERM (a worker finishes its current step)
STOP_GRACE_SECONDS = 10.0
KILL_WAIT_SECONDS = 5.0


@dataclass
class Child:
    name: str
    args: list[str]
    env: dict[str, str]
    proc: subprocess.Popen[bytes] | None = None
    pump: threading.Thread | None = field(default=None, repr=False)


class Supervisor:
    """Start children, relay their output with a name prefix, stop them all together."""

    def __init__(self, out: IO[str]) -> None:
        self.out = out
        self.children: list[Child] = []
        self.stop_requested = threading.Event()
        self.lock = threading.Lock()
        self.width = 10
        #: pid -> start time of every process seen under a child
        self.seen: dict[int, int] = {}

    def say(self, name: str, line: str) -> None:
        with self.lock:
            self.out.write(f"{name:<{self.width}}| {line}\n")
            self.out.flush()

    def start(self, child: Child) -> None:
        child.proc = subprocess.Popen(
            child.args,
            env=child.env,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        child.pump = threading.Thread(
            target=self._pump, args=(child,), name=f"pump-{child.name}", daemon=True
        )
        child.pump.start()
        self.children.append(child)

    def _pump(self, child: Child) -> None:
        if child.proc is None or child.proc.stdout is None:
            return
        try:
            for raw in iter(child.proc.stdout.readline, b""):
                self.say(child.name, raw.decode(errors="replace").rstrip("\n"))
        except (ValueError, OSError):
            return  # the pipe was closed by stop_all while a grandchild still held it

    def first_exited(self) -> Child | None:
        for child in self.children:
            if child.proc is not None and child.proc.poll() is not None:
                return child
        return None

    def watch(self) -> None:
        """Remember every process under our children, so one orphaned later is still stopped."""
        for proc in (c.proc for c in self.children if c.proc is not None):
            for pid in {proc.pid} | descendants(proc.pid):
                if pid not in self.seen:
                    started = _start_time(pid)
                    if started is not None:
                        self.seen[pid] = started

    def stop_all(self, grace: float = STOP_GRACE_SECONDS) -> None:
        """SIGTERM every child's group, wait, then SIGKILL whatever is left, orphans included."""
        procs = [c.proc for c in self.children if c.proc is not None]
        ours = {p.pid for p in procs}
        self.watch()
        for proc in procs:
            if proc.poll() is None:
                _signal_group(proc.pid, signal.SIGTERM)
        deadline = time.monotonic() + grace
        while time.monotonic() < deadline:
            self.watch()
            if all(p.poll() is not None for p in procs) and not self._leftovers(ours):
                break
            time.sleep(0.05)
        for proc in procs:
            if proc.poll() is None:
                _signal_group(proc.pid, signal.SIGKILL)
        for pid in self._leftovers(ours):
            _kill(pid, signal.SIGKILL)
        for proc in procs:
            proc.wait()
        # SIGKILL is delivered asynchronously: wait until the orphans are really gone
        deadline = time.monotonic() + KILL_WAIT_SECONDS
        while self._leftovers(ours) and time.monotonic() < deadline:
            time.sleep(0.01)
        for child in self.children:
            if child.pump is not None:
                child.pump.join(timeout=1)
            if child.proc is not None and child.proc.stdout is not None:
                child.proc.stdout.close()

    def _leftovers(self, ours: set[int]) -> list[int]:
        """Seen processes, other than our direct children, that still run (same pid, same
        start time: a recycled pid is someone else's)."""
        return [
            pid
            for pid, started in self.seen.items()
            if pid not in ours and _start_time(pid) == started
        ]


def run_dev(settings: Settings, out: IO[str] | None = None) -> int:
    """Run everything until Ctrl-C / SIGTERM (exit 0) or until a process dies (exit 1)."""
    stream = out or sys.stdout
    sup = Supervisor(stream)
    previous = _install_signals(sup.stop_requested)
    data_dir = Path.cwd() / DATA_DIR
    data_dir.mkdir(exist_ok=True)
    (data_dir / ".gitignore").write_text("*\n")
    embedded: EmbeddedRedis | None = None
    try:
        env = dict(os.environ)
        if "REDIS_URL" in os.environ:
            redis_url = settings.redis_url
            startup.check(settings)
        else:
            embedded = EmbeddedRedis(port=free_port(), data_dir=data_dir, persist=True)
            try:
                embedded.start()
            except RuntimeError as e:
                raise ChimeError(f"cannot start the embedded Redis: {e}") from None
            redis_url = embedded.url
        env["REDIS_URL"] = redis_url
        env["PYTHONUNBUFFERED"] = "1"
        # a development machine: listen on loopback only, and guard the dashboard anyway
        env.setdefault("CHIME_HOST", "127.0.0.1")
        # local webhook receivers are the point of a development machine
        if not env.get("CHIME_HTTP_ALLOW", "").strip():
            env["CHIME_HTTP_ALLOW"] = DEV_HTTP_ALLOW
        admin_token = settings.admin_token or dev_admin_token(data_dir)
        env["CHIME_ADMIN_TOKEN"] = admin_token
        keys = Keys(settings.key_prefix)
        with connection.client(redis_url) as client:
            agent = dev_agent(client, keys, data_dir, settings)

        web_port = settings.port
        dash_port = web_port + 1 if web_port < 65535 else DASHBOARD_FALLBACK_PORT
        for child in _children(env, web_port, dash_port):
            if sup.stop_requested.is_set():
                break
            sup.start(child)
        _banner(
            stream,
            settings,
            data_dir,
            redis_url,
            embedded,
            (web_port, dash_port, env["CHIME_HOST"]),
            agent,
            None if settings.admin_token else admin_token,
        )

        code = 0
        ticks = 0
        while not sup.stop_requested.wait(0.2):
            ticks += 1
            if ticks % 5 == 0:
                sup.watch()
            dead = sup.first_exited()
            if dead is not None:
                rc = dead.proc.returncode if dead.proc else None
                sup.say("dev", f"{dead.name} exited with {rc}; stopping everything")
                code = 1
                break
            if (
                embedded is not None
                and embedded.proc is not None
                and embedded.proc.poll() is not None
            ):
                sup.say("dev", "redis exited; stopping everything")
                code = 1
                break
        sup.say("dev", "stopping")
        return code
    finally:
        sup.stop_all()
        if embedded is not None:
            embedded.stop()
        _restore_signals(previous)
        sup.say("dev", "stopped")


def _children(env: dict[str, str], web_port: int, dash_port: int) -> list[Child]:
    base = [sys.executable, "-m", "app.cli"]
    children = [
        Child("web", [*base, "web"], {**env, "PORT": str(web_port)}),
        Child("scheduler", [*base, "scheduler"], env),
    ]
    children += [Child(f"worker.{n}", [*base, "worker"], env) for n in range(1, WORKERS + 1)]
    children.append(Child("dashboard", [*base, "dashboard"], {**env, "PORT": str(dash_port)}))
    return children


def dev_agent(
    client: "redis.Redis", keys: Keys, data_dir: Path, settings: Settings
) -> tuple[str, str] | None:
    """The agent to try the API with: ``None`` when CHIME_AGENT_TOKENS names agents already,
    else a minted one kept in ``.chime/`` and reused while its token still works."""
    if settings.agent_tokens:
        return None
    path = data_dir / AGENT_FILE
    try:
        saved = json.loads(path.read_text())
        agent_id, token = str(saved["agent_id"]), str(saved["token"])
        if agent_for_token(client, keys, token) == agent_id:
            return agent_id, token
    except (OSError, ValueError, KeyError, TypeError):
        pass
    agent_id, token = create_agent(client, keys, "dev")
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as f:
        json.dump({"agent_id": agent_id, "token": token}, f)
    return agent_id, token


def dev_admin_token(data_dir: Path) -> str:
    """The development admin token: minted once, kept in ``.chime/`` (mode 0600), reused."""
    path = data_dir / ADMIN_FILE
    try:
        saved = path.read_text().strip()
        if len(saved) >= MIN_TOKEN_LENGTH:
            return saved
    except OSError:
        pass
    token = "dev-admin-" + secrets.token_urlsafe(24)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as f:
        f.write(token + "\n")
    return token


def _banner(
    out: IO[str],
    settings: Settings,
    data_dir: Path,
    redis_url: str,
    embedded: EmbeddedRedis | None,
    listen: tuple[int, int, str],
    agent: tuple[str, str] | None,
    minted_admin: str | None,
) -> None:
    web_port, dash_port, host = listen

    web = f"http://localhost:{web_port}"
    where = f"embedded, append-only in {data_dir}" if embedded else "from REDIS_URL"
    lines = [
        "",
        "Chime is starting:",
        f"  api        {web}  (OpenAPI: {web}/schema/swagger, health: {web}/healthz)",
        f"  metrics    {web}/metrics",
        f"  dashboard  http://localhost:{dash_port}  (user admin, password: the admin token)",
        f"  listening  on {host} only" if host == "127.0.0.1" else f"  listening  on {host}",
        f"  scheduler  1 process; workers: {WORKERS} processes",
        _egress_line(settings),
        f"  redis      {mask_url(redis_url)}  ({where})",
    ]
    if minted_admin is not None:
        lines.append(f"  admin token: {minted_admin}  (kept in {data_dir / ADMIN_FILE})")
    else:
        lines.append("  admin token: CHIME_ADMIN_TOKEN")
    if agent is not None:
        agent_id, token = agent
        lines += [
            f"  agent id:  {agent_id}  (kept in {data_dir / AGENT_FILE})",
            f"  Authorization: Bearer {token}",
            "",
            "Try:",
            f"  curl -s -X POST {web}/tasks -H 'Authorization: Bearer {token}' \\",
            '    -H \'Content-Type: application/json\' -d \'{"title": "hello", '
            '"description": "", "schedule_kind": "cron", "schedule_expr": "* * * * *", '
            f'"created_by": "{agent_id}", "payload": {{"steps": [{{"name": "hi", '
            '"action": "log", "params": {"message": "hello"}}]}}\'',
            f"  curl -s {web}/tasks -H 'Authorization: Bearer {token}'",
        ]
    else:
        ids = sorted(set(settings.agent_tokens.values()))
        lines.append(f"  agents     from CHIME_AGENT_TOKENS: {', '.join(ids)}")
    lines += ["", "Ctrl-C stops everything.", ""]
    with_lock = "\n".join(lines) + "\n"
    out.write(with_lock)
    out.flush()


def _egress_line(settings: Settings) -> str:
    if settings.http_allow is None:
        return (
            "  egress     http.request reaches public addresses and, for local receivers, "
            "loopback (127.0.0.0/8, ::1, localhost)"
        )
    return f"  egress     http.request reaches CHIME_HTTP_ALLOW={','.join(settings.http_allow)}"


# -- processes ------------------------------------------------------------------------------


def descendants(root: int) -> set[int]:
    """Every live descendant of ``root``, read from /proc (empty where there is no /proc)."""
    parents: dict[int, list[int]] = {}
    try:
        entries = os.listdir("/proc")
    except OSError:
        return set()
    for entry in entries:
        if not entry.isdigit():
            continue
        ppid = _ppid(int(entry))
        if ppid is not None:
            parents.setdefault(ppid, []).append(int(entry))
    found: set[int] = set()
    todo = [root]
    while todo:
        for kid in parents.get(todo.pop(), []):
            if kid not in found:
                found.add(kid)
                todo.append(kid)
    return found


def _stat(pid: int) -> list[bytes] | None:
    """Fields of /proc/PID/stat after the command name; None when gone or a zombie."""
    try:
        with open(f"/proc/{pid}/stat", "rb") as f:
            stat = f.read()
    except OSError:
        return None
    # the command name is in parentheses and may hold spaces: split after the last ')'
    fields = stat[stat.rfind(b")") + 2 :].split()
    if len(fields) < 20 or fields[0] == b"Z":
        return None
    return fields


def _ppid(pid: int) -> int | None:
    fields = _stat(pid)
    return int(fields[1]) if fields else None


def _start_time(pid: int) -> int | None:
    """When the process started (clock ticks after boot): with the pid, names one process."""
    fields = _stat(pid)
    return int(fields[19]) if fields else None


def _signal_group(pid: int, sig: int) -> None:
    try:
        os.killpg(pid, sig)
    except (ProcessLookupError, PermissionError):
        _kill(pid, sig)


def _kill(pid: int, sig: int) -> None:
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.kill(pid, sig)


_Handler = Callable[[int, FrameType | None], Any] | int | None


def _install_signals(stop: threading.Event) -> dict[int, _Handler]:
    def handler(signum: int, frame: FrameType | None) -> None:
        stop.set()

    previous: dict[int, _Handler] = {}
    for sig in (signal.SIGINT, signal.SIGTERM):
        previous[sig] = signal.signal(sig, handler)
    return previous


def _restore_signals(previous: dict[int, _Handler]) -> None:
    for sig, old in previous.items():
        signal.signal(sig, old)
