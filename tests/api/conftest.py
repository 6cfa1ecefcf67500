"""API test fixtures: an app on the session's Redis with two static agents and an admin token.

``api`` is a TestClient without credentials; the callers' headers and the helpers are in
``tests.support.agents`` and ``tests.support.api``.
"""

from collections.abc import Iterator
from typing import Any

import pytest
import redis
from litestar.testing import TestClient

from app.api.app import create_app
from app.settings import Settings
from app.store.keys import Keys
from app.store.tasks import TaskStore
from tests.support.agents import ADMIN_TOKEN, AGENT_A, AGENT_B, TOKEN_A, TOKEN_B


@pytest.fixture
def api_settings(redis_url: str) -> Settings:
    return Settings.from_env(
        {
            "REDIS_URL": redis_url,
            "CHIME_AGENT_TOKENS": f"{AGENT_A}:{TOKEN_A},{AGENT_B}:{TOKEN_B}",
            "CHIME_ADMIN_TOKEN": ADMIN_TOKEN,
            "CHIME_MAX_BODY_BYTES": "65536",
        }
    )


@pytest.fixture
def api(api_settings: Settings) -> Iterator[TestClient[Any]]:
    with TestClient(create_app(api_settings)) as client:
        yield client


@pytest.fixture
def store(r: redis.Redis, api_settings: Settings) -> TaskStore:
    return TaskStore(r, Keys(api_settings.key_prefix), api_settings)
