"""Fixtures of the use-case suites: a backend with both clients on the session's Redis."""

from collections.abc import Iterator

import pytest
import redis

from app.service.backend import Backend
from app.settings import Settings
from app.store.connection import rq_client
from app.store.keys import Keys


@pytest.fixture
def backend(r: redis.Redis, keys: Keys, settings: Settings) -> Iterator[Backend]:
    rq = rq_client(settings.redis_url)
    try:
        yield Backend(r, rq, keys, settings)
    finally:
        rq.close()
