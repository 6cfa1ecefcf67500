"""GET /healthz: 200 while Redis answers, 503 when it does not, no token either way; and the
API answers 503, not 500, to calls that need a Redis that is down."""

import signal
import time
from typing import Any

from litestar.testing import TestClient

from app.embedded_redis import EmbeddedRedis
from tests.support.agents import A
from tests.support.api import task_body


def test_healthz_is_ok_while_redis_answers(api: TestClient[Any]) -> None:
    resp = api.get("/healthz")
    assert resp.status_code == 200
    assert resp.json() == {"status": "ok", "redis": "ok"}


def test_healthz_is_503_when_redis_is_unreachable(
    api: TestClient[Any], redis_server: EmbeddedRedis
) -> None:
    redis_server.stop(signal.SIGKILL)
    try:
        started = time.monotonic()
        resp = api.get("/healthz")
        assert resp.status_code == 503
        assert resp.json()["status"] == "unavailable"
        assert resp.json()["redis"].startswith("error")
        assert time.monotonic() - started < 10

        down = api.post("/tasks", json=task_body(), headers=A)
        assert down.status_code == 503
        assert down.json()["status_code"] == 503
    finally:
        redis_server.start()
    assert api.get("/healthz").status_code == 200
    assert api.post("/tasks", json=task_body(), headers=A).status_code == 201
