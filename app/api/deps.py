"""Dependency providers: the app's one Redis client, its RQ client, settings, keys, the store.

The clients are made once per app (``app.state``) and closed on shutdown (``app/api/app.py``);
the providers only hand them out, so they are cheap and run on the event loop.
"""

from typing import Any

import redis
from litestar.datastructures import State
from litestar.di import NamedDependency, Provide

from app.api.auth import Caller, provide_caller
from app.settings import Settings
from app.store.keys import Keys
from app.store.tasks import TaskStore


def provide_settings(state: State) -> Settings:
    settings: Settings = state.settings
    return settings


def provide_keys(state: State) -> Keys:
    keys: Keys = state.chime_keys
    return keys


def provide_redis(state: State) -> redis.Redis:
    client: redis.Redis = state.redis
    return client


def provide_rq(state: State) -> redis.Redis:
    client: redis.Redis = state.rq
    return client


#: handler parameter types of the dependencies below
CallerDep = NamedDependency[Caller]
SettingsDep = NamedDependency[Settings]
KeysDep = NamedDependency[Keys]
RedisDep = NamedDependency[redis.Redis]
StoreDep = NamedDependency[TaskStore]


def provide_store(client: RedisDep, keys: KeysDep, settings: SettingsDep) -> TaskStore:
    return TaskStore(client, keys, settings)


#: what every authenticated controller declares
AGENT_DEPENDENCIES: dict[str, Any] = {
    "settings": Provide(provide_settings, sync_to_thread=False),
    "keys": Provide(provide_keys, sync_to_thread=False),
    "client": Provide(provide_redis, sync_to_thread=False),
    "rq": Provide(provide_rq, sync_to_thread=False),
    "store": Provide(provide_store, sync_to_thread=False),
    "caller": Provide(provide_caller, sync_to_thread=False),
}

#: what the unauthenticated health check needs
REDIS_DEPENDENCY: dict[str, Any] = {"client": Provide(provide_redis, sync_to_thread=False)}
