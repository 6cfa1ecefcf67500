"""A Redis that hangs (the process stopped, connections open, no replies) turns API calls into
a 503 within about two seconds, not a request held for the old ten-second timeout or a 500;
and the API serves again as soon as Redis does."""

import os
import signal
import time
from typing import Any

from litestar.testing import TestClient

from app.embedded_redis import EmbeddedRedis
from tests.support.agents import A
from tests.support.api import task_body

#: the API's bound is about 2 s (one 0.9 s timeout, a short backoff, one retry); this leaves
#: room for a busy machine while staying far below the 20 s the old settings could take
BOUND_SECONDS = 6.0


def test_a_hung_redis_is_a_quick_503(api: TestClient[Any], redis_server: EmbeddedRedis) -> None:
    assert api.post("/tasks", json=task_body(), headers=A).status_code == 201
    assert redis_server.proc is not None
    pid = redis_server.proc.pid
    os.kill(pid, signal.SIGSTOP)
    try:
        for call in (
            lambda: api.get("/tasks", headers=A),
            lambda: api.post("/tasks", json=task_body(), headers=A),
            lambda: api.get("/healthz"),
        ):
            started = time.monotonic()
            resp = call()
            elapsed = time.monotonic() - started
            assert resp.status_code == 503, resp.text
            assert elapsed < BOUND_SECONDS, f"503 after {elapsed:.1f}s"
    finally:
        os.kill(pid, signal.SIGCONT)
    assert api.get("/tasks", headers=A).status_code == 200
