"""Fixtures of the worker suites: a local HTTP server, the asyncio sink, real ``chime worker``
processes, and the session's settings with loopback opened (``tests/support/workers.py``)."""

from collections.abc import Iterator
from pathlib import Path

import pytest
import redis

from app.settings import Settings
from app.store.keys import Keys
from app.store.tasks import TaskStore
from tests.support.workers import LOOPBACK, LocalServer, Workers
from tests.workers.sink import AsyncSink


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
