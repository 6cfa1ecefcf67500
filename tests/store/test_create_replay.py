"""A create whose reply is lost on the way back (Redis ran it, the client timed out and sent it
again): both task stores answer the task as created, once, instead of refusing their own task's
id as taken."""

import asyncio
from typing import Any

import pytest
import redis
import redis.asyncio

from app.settings import Settings
from app.store import connection
from app.store.keys import Keys
from app.store.tasks import AsyncTaskStore, TaskStore
from tests.support.records import make_task


def losing_first_script_reply(connection_class: type[Any], lost: list[str]) -> type[Any]:
    """``connection_class`` whose first EVALSHA reply is read and then reported as a timeout,
    as a reply that arrived after the client gave up looks to redis-py."""

    class Losing(connection_class):  # type: ignore[misc,valid-type]
        def _lose(self, reply: Any) -> Any:
            created = isinstance(reply, list) and reply[:1] in (["created"], [b"created"])
            if created and lost == ["armed"]:
                lost.append("lost")
                raise redis.exceptions.TimeoutError("reply lost")
            return reply

    def wrap_sync(self: Any, *args: Any, **kw: Any) -> Any:
        return self._lose(connection_class.read_response(self, *args, **kw))

    async def wrap_async(self: Any, *args: Any, **kw: Any) -> Any:
        return self._lose(await connection_class.read_response(self, *args, **kw))

    is_async = asyncio.iscoroutinefunction(connection_class.read_response)
    Losing.read_response = wrap_async if is_async else wrap_sync  # type: ignore[method-assign]
    return Losing


def test_the_sync_store_answers_its_own_create_sent_again(
    redis_url: str, keys: Keys, settings: Settings, r: redis.Redis
) -> None:
    client = connection.client(redis_url)
    lost = ["armed"]
    pool = client.connection_pool
    pool.connection_class = losing_first_script_reply(pool.connection_class, lost)
    try:
        task = make_task()
        assert TaskStore(client, keys, settings).create(task) == (task, True)
    finally:
        client.close()
    assert lost == ["armed", "lost"]
    assert r.hget(keys.task(task.id), "id") == task.id


@pytest.mark.parametrize("idem", [None, "once"])
def test_the_async_store_answers_its_own_create_sent_again(
    redis_url: str, keys: Keys, settings: Settings, r: redis.Redis, idem: str | None
) -> None:
    lost = ["armed"]

    async def go() -> tuple[Any, bool]:
        client = connection.async_client(redis_url)
        pool = client.connection_pool
        pool.connection_class = losing_first_script_reply(pool.connection_class, lost)
        try:
            return await AsyncTaskStore(client, keys, settings).create(task, idem)
        finally:
            await client.aclose()

    task = make_task()
    assert asyncio.run(go()) == (task, True)
    assert lost == ["armed", "lost"]
    assert r.zcard(keys.index(task.created_by, None, None)) == 1
