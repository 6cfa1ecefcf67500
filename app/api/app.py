"""The Litestar application: controllers, the shared Redis clients, error mapping, OpenAPI.

One sync Redis client (``decode_responses=True``) for the store and one for RQ (bytes replies)
are made per app and closed on shutdown; handlers are synchronous and run in threads.
"""

import redis
from litestar import Litestar
from litestar.datastructures import State
from litestar.openapi import OpenAPIConfig
from litestar.openapi.spec import Components, SecurityScheme

from app.api.agents import AgentController
from app.api.errors import EXCEPTION_HANDLERS
from app.api.events import EventController
from app.api.health import HealthController
from app.api.metrics import metrics
from app.api.runs import RunController
from app.api.tasks import TaskController
from app.settings import Settings, get_settings
from app.store.enqueue import rq_connection
from app.store.keys import Keys

#: seconds to wait for Redis to accept a connection before a request fails with 503
CONNECT_TIMEOUT = 5.0
#: seconds to wait for a reply; no API call blocks in Redis
SOCKET_TIMEOUT = 10.0


def create_app(settings: Settings | None = None) -> Litestar:
    """The API for ``settings`` (default: the environment's)."""
    settings = settings or get_settings()
    client = redis.Redis.from_url(
        settings.redis_url,
        decode_responses=True,
        socket_connect_timeout=CONNECT_TIMEOUT,
        socket_timeout=SOCKET_TIMEOUT,
    )
    rq = rq_connection(settings.redis_url)
    state = State(
        {"settings": settings, "chime_keys": Keys(settings.key_prefix), "redis": client, "rq": rq}
    )

    def close_clients() -> None:
        client.close()
        rq.close()

    return Litestar(
        route_handlers=[
            TaskController,
            RunController,
            EventController,
            AgentController,
            HealthController,
            metrics,
        ],
        state=state,
        exception_handlers=EXCEPTION_HANDLERS,
        on_shutdown=[close_clients],
        request_max_body_size=settings.max_body_bytes,
        openapi_config=OpenAPIConfig(
            title="Chime Tasks API",
            version="1",
            path="/schema",
            components=Components(
                security_schemes={
                    "BearerToken": SecurityScheme(
                        type="http",
                        scheme="bearer",
                        description="an agent token, or the admin token",
                    )
                }
            ),
        ),
    )
