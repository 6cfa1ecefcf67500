"""What a handler needs, handed over as one dependency: the caller, the app's Redis clients,
settings, keys and the task store (synchronous, and asyncio for the handlers that await it).

The clients are made once per app (``app.state``) and closed on shutdown (``app/api/app.py``);
the provider only gathers them, on the event loop. It is one dependency on purpose: Litestar
resolves several dependencies of a handler concurrently in a task group, which costs more per
request than everything the provider does. The busiest handlers (create, list and read a task)
take the request and call :func:`provide_api` themselves, skipping even that one resolution.
"""

from dataclasses import dataclass
from typing import Any

import redis
import redis.asyncio
from litestar import Request
from litestar.datastructures import State
from litestar.di import NamedDependency, Provide

from app.api.auth import Caller, provide_caller
from app.service.backend import Backend
from app.settings import Settings
from app.store.keys import Keys
from app.store.tasks import AsyncTaskStore, TaskStore


@dataclass(frozen=True, slots=True)
class Api:
    """One request's view of the app."""

    caller: Caller
    settings: Settings
    keys: Keys
    client: redis.Redis
    rq: redis.Redis
    aclient: redis.asyncio.Redis

    @property
    def store(self) -> TaskStore:
        return TaskStore(self.client, self.keys, self.settings)

    @property
    def tasks(self) -> AsyncTaskStore:
        """The task store on the asyncio client (for ``async`` handlers)."""
        return AsyncTaskStore(self.aclient, self.keys, self.settings)

    @property
    def backend(self) -> Backend:
        """What the use cases (``app/service``) take."""
        return Backend(self.client, self.rq, self.keys, self.settings)


def provide_api(request: Request[Any, Any, Any]) -> Api:
    state = request.app.state
    return Api(
        caller=provide_caller(request),
        settings=state.settings,
        keys=state.chime_keys,
        client=state.redis,
        rq=state.rq,
        aclient=state.aredis,
    )


def provide_redis(state: State) -> redis.Redis:
    client: redis.Redis = state.redis
    return client


#: handler parameter types of the dependencies below
ApiDep = NamedDependency[Api]
RedisDep = NamedDependency[redis.Redis]

#: what every authenticated controller declares
AGENT_DEPENDENCIES: dict[str, Any] = {"api": Provide(provide_api, sync_to_thread=False)}

#: what the unauthenticated health check needs
REDIS_DEPENDENCY: dict[str, Any] = {"client": Provide(provide_redis, sync_to_thread=False)}
