"""What a use case needs of its process: the two Redis clients, the keys and the settings."""

from dataclasses import dataclass

import redis

from app.settings import Settings
from app.store.keys import Keys
from app.store.tasks import TaskStore


@dataclass(frozen=True, slots=True)
class Backend:
    """``client`` answers text (the store's client), ``rq`` answers bytes (RQ's own client)."""

    client: redis.Redis
    rq: redis.Redis
    keys: Keys
    settings: Settings

    @property
    def store(self) -> TaskStore:
        return TaskStore(self.client, self.keys, self.settings)
