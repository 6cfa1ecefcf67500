"""Start-up refusals: a process that cannot work says why in one line and exits non-zero.

Exit status 2: a bad setting; 1: Redis unreachable or too old, scripts missing (the installed
copy is covered in test_install.py). No traceback in any of them.
"""

import socket
import socketserver
import threading
from collections.abc import Iterator

import pytest

from app.startup import parse_version
from tests.ops.support import free_ports, run_chime

PROCESSES = ["web", "scheduler", "worker", "dashboard"]


def _one_line(stderr: str) -> str:
    lines = stderr.splitlines()
    assert len(lines) == 1, stderr
    assert "Traceback" not in stderr
    return lines[0]


@pytest.mark.parametrize("process", PROCESSES)
def test_unreachable_redis_stops_every_process_with_one_line(process: str) -> None:
    port = free_ports()
    result = run_chime(
        process,
        REDIS_URL=f"redis://:hunter2@127.0.0.1:{port}/0",
        CHIME_ADMIN_TOKEN="an-admin-token-for-the-dashboard",
    )

    assert result.returncode == 1
    line = _one_line(result.stderr)
    assert line.startswith(f"chime: cannot reach Redis at redis://:***@127.0.0.1:{port}/0: ")
    assert "hunter2" not in result.stderr


@pytest.mark.parametrize("process", PROCESSES)
def test_bad_settings_stop_every_process_with_one_line_and_status_2(process: str) -> None:
    result = run_chime(process, CHIME_CLAIM_BATCH="0")

    assert result.returncode == 2
    assert _one_line(result.stderr) == "chime: CHIME_CLAIM_BATCH must be between 1 and 10000, got 0"


class _OldRedis(socketserver.BaseRequestHandler):
    """Speaks just enough RESP to pass for a Redis 6.0: PING, INFO, and OK to the rest."""

    def handle(self) -> None:
        buffer = b""
        while True:
            data = self.request.recv(65536)
            if not data:
                return
            buffer += data
            while True:
                command, buffer = _take_command(buffer)
                if command is None:
                    break
                self.request.sendall(_reply(command))


def _take_command(buffer: bytes) -> tuple[list[bytes] | None, bytes]:
    """One RESP array of bulk strings from the front of ``buffer``, if it is all there."""
    if not buffer.startswith(b"*") or b"\r\n" not in buffer:
        return None, buffer
    head, rest = buffer.split(b"\r\n", 1)
    parts: list[bytes] = []
    for _ in range(int(head[1:])):
        if b"\r\n" not in rest:
            return None, buffer
        size_line, rest = rest.split(b"\r\n", 1)
        size = int(size_line[1:])
        if len(rest) < size + 2:
            return None, buffer
        parts.append(rest[:size])
        rest = rest[size + 2 :]
    return parts, rest


def _reply(command: list[bytes]) -> bytes:
    name = command[0].upper()
    if name == b"PING":
        return b"+PONG\r\n"
    if name == b"INFO":
        text = b"# Server\r\nredis_version:6.0.16\r\nredis_mode:standalone\r\n"
        return b"$%d\r\n%s\r\n" % (len(text), text)
    if name == b"HELLO":
        # a RESP3 map, as redis-py's handshake expects from a Redis 6
        fields = [b"server", b"redis", b"version", b"6.0.16"]
        return (
            b"%3\r\n"
            + b"".join(b"$%d\r\n%s\r\n" % (len(f), f) for f in fields)
            + (b"$5\r\nproto\r\n:3\r\n")
        )
    return b"+OK\r\n"


@pytest.fixture
def old_redis() -> Iterator[int]:
    server = socketserver.ThreadingTCPServer(("127.0.0.1", 0), _OldRedis)
    server.daemon_threads = True
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield int(server.server_address[1])
    finally:
        server.shutdown()
        server.server_close()


@pytest.mark.parametrize("process", ["web", "scheduler", "worker"])
def test_a_redis_too_old_for_the_scripts_stops_the_process(old_redis: int, process: str) -> None:
    result = run_chime(process, REDIS_URL=f"redis://127.0.0.1:{old_redis}/0")

    assert result.returncode == 1
    assert _one_line(result.stderr) == (
        f"chime: Redis at redis://127.0.0.1:{old_redis}/0 is version 6.0.16; Chime needs 6.2+"
    )


def test_the_stub_really_answers_like_a_redis(old_redis: int) -> None:
    with socket.create_connection(("127.0.0.1", old_redis)) as s:
        s.sendall(b"*1\r\n$4\r\nPING\r\n")
        assert s.recv(100) == b"+PONG\r\n"


@pytest.mark.parametrize(
    ("text", "version"),
    [("7.0.15", (7, 0)), ("6.2.14", (6, 2)), ("10.1", (10, 1)), ("", None), ("x", None)],
)
def test_versions_parse(text: str, version: tuple[int, int] | None) -> None:
    assert parse_version(text) == version
