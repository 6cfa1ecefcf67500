"""The Litestar application: controllers, the shared Redis clients, error mapping, OpenAPI.

The OpenAPI document is completed once here from what each handler states it answers
(``app/api/openapi.py``). One sync Redis client (``decode_responses=True``) for the store, one
for RQ (bytes replies) and one asyncio client for the busiest task handlers (create, read, list)
are made per app and closed on shutdown; the other handlers are synchronous and run in threads.
"""

from litestar import Litestar
from litestar.datastructures import State
from litestar.openapi import OpenAPIConfig
from litestar.openapi.spec import Components, SecurityScheme

from app.api.agents import AgentController, AgentMeController
from app.api.backfill import BackfillController
from app.api.errors import EXCEPTION_HANDLERS
from app.api.events import EventController
from app.api.health import HealthController
from app.api.metrics import metrics
from app.api.openapi import finish
from app.api.runs import RunController, close_run_waiter
from app.api.schedules import PreviewController, UpcomingController
from app.api.secrets import SecretController
from app.api.signing import SigningKeyController
from app.api.tasks import TaskController
from app.settings import Settings, get_settings
from app.store import connection
from app.store.keys import Keys

#: seconds to wait for a connection or a reply: no API call blocks in Redis, so a Redis that
#: hangs turns into a 503 within about two seconds (one retry after a short backoff)
REDIS_TIMEOUT = 0.9
REDIS_RETRIES = 1
#: connections of the asyncio client (anyio's thread pool, which runs synchronous handlers,
#: has 40 threads)
ASYNC_CONNECTIONS = 40


def create_app(settings: Settings | None = None) -> Litestar:
    """The API for ``settings`` (default: the environment's)."""
    settings = settings or get_settings()
    url = settings.redis_url
    client = connection.client(
        url, socket_timeout=REDIS_TIMEOUT, connect_timeout=REDIS_TIMEOUT, retries=REDIS_RETRIES
    )
    rq = connection.rq_client(
        url, socket_timeout=REDIS_TIMEOUT, connect_timeout=REDIS_TIMEOUT, retries=REDIS_RETRIES
    )
    # as many connections as the thread pool of the synchronous handlers has threads: a call
    # beyond them waits for one to come back, as a synchronous handler waits for a thread
    aredis = connection.async_client(
        url,
        socket_timeout=REDIS_TIMEOUT,
        connect_timeout=REDIS_TIMEOUT,
        retries=REDIS_RETRIES,
        max_connections=ASYNC_CONNECTIONS,
        wait_for_connection=True,
    )
    state = State(
        {
            "settings": settings,
            "chime_keys": Keys(settings.key_prefix),
            "redis": client,
            "rq": rq,
            "aredis": aredis,
        }
    )

    async def close_clients(app: Litestar) -> None:
        client.close()
        rq.close()
        await aredis.aclose()
        await close_run_waiter(app.state)

    app = Litestar(
        route_handlers=[
            TaskController,
            UpcomingController,
            PreviewController,
            BackfillController,
            RunController,
            EventController,
            AgentController,
            AgentMeController,
            SigningKeyController,
            SecretController,
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
    finish(app)
    return app
