"""Waiting for runs to end, for ``GET /runs/{id}?wait=S``, without a thread or a poll per waiter.

Every script that ends a run publishes on a channel named like the run's key (its new status as
the message): ``finish_run``, ``cancel_task``, ``cancel_run`` and a run deduped when queued.
A web process holds one pub/sub connection; a waiter subscribes to its run's channel (shared by
every waiter of that run in the process), reads the run only once the subscription is
confirmed, so an end that happens after that read cannot be missed, and then sleeps on an
``asyncio.Event`` until the message or its deadline. One reader task serves every channel.
"""

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator
from typing import Any

import redis
import redis.asyncio

from app.store import connection

log = logging.getLogger("chime.api")

#: seconds to wait for Redis to confirm a subscription before reading the run anyway
CONFIRM_TIMEOUT = 2.0
#: seconds the reader waits on the socket before looking again (no Redis command is sent)
_READ_TIMEOUT = 1.0


class _Channel:
    __slots__ = ("confirmed", "ended", "users")

    def __init__(self) -> None:
        self.users = 0
        self.confirmed = asyncio.Event()
        self.ended = asyncio.Event()


class RunWaiter:
    """One process's subscriptions to run endings, on one pub/sub connection."""

    def __init__(self, url: str) -> None:
        self._client = connection.async_client(url, socket_timeout=None)
        self._pubsub: Any = self._client.pubsub()
        self._channels: dict[str, _Channel] = {}
        #: SUBSCRIBE commands sent and not yet confirmed, per channel
        self._unconfirmed: dict[str, int] = {}
        self._reader: asyncio.Task[None] | None = None

    @contextlib.asynccontextmanager
    async def watch(self, channel: str) -> AsyncIterator[asyncio.Event]:
        """Subscribe to ``channel`` for the block; yields the event set when a run ends there.

        On entering, the subscription is confirmed by Redis (or ``CONFIRM_TIMEOUT`` passed:
        Redis is then too slow to promise more than a read at the deadline)."""
        entry = self._channels.get(channel)
        if entry is None:
            entry = self._channels[channel] = _Channel()
            self._unconfirmed[channel] = self._unconfirmed.get(channel, 0) + 1
            try:
                await self._pubsub.subscribe(channel)
            except BaseException:
                # nothing was subscribed: forget the channel, so the next waiter tries again
                del self._channels[channel]
                self._unconfirmed[channel] -= 1
                if not self._unconfirmed[channel]:
                    del self._unconfirmed[channel]
                raise
            self._start_reader()
        entry.users += 1
        try:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(entry.confirmed.wait(), CONFIRM_TIMEOUT)
            yield entry.ended
        finally:
            entry.users -= 1
            if entry.users == 0 and self._channels.get(channel) is entry:
                del self._channels[channel]
                with contextlib.suppress(redis.RedisError, OSError):
                    await self._pubsub.unsubscribe(channel)

    def _start_reader(self) -> None:
        if self._reader is None or self._reader.done():
            self._reader = asyncio.get_running_loop().create_task(self._read())

    async def _read(self) -> None:
        """Dispatch messages until no channel is left (a new waiter starts it again)."""
        while self._channels or self._unconfirmed:
            try:
                message = await self._pubsub.get_message(timeout=_READ_TIMEOUT)
            except (redis.RedisError, OSError) as exc:
                log.warning("run waiter: pub/sub read failed: %s", exc.__class__.__name__)
                await asyncio.sleep(_READ_TIMEOUT)
                continue
            if message is not None:
                self._dispatch(message)

    def _dispatch(self, message: dict[str, Any]) -> None:
        kind, channel = message.get("type"), str(message.get("channel"))
        if kind == "subscribe":
            left = self._unconfirmed.get(channel, 1) - 1
            if left > 0:
                self._unconfirmed[channel] = left
                return
            self._unconfirmed.pop(channel, None)
            entry = self._channels.get(channel)
            if entry is not None:
                entry.confirmed.set()
        elif kind == "message":
            entry = self._channels.get(channel)
            if entry is not None:
                entry.ended.set()

    async def close(self) -> None:
        if self._reader is not None:
            self._reader.cancel()
            with contextlib.suppress(asyncio.CancelledError, redis.RedisError, OSError):
                await self._reader
        with contextlib.suppress(redis.RedisError, OSError):
            await self._pubsub.aclose()
            await self._client.aclose()
