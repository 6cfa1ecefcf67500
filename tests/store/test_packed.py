"""Commands packed by the caller (``app/store/packed.py``): the bytes redis-py would send, a
script call that answers as redis-py's ``Script`` does (and loads the script again after a
``SCRIPT FLUSH``), the ordinary call on a client that cannot send them, and a write on the
clients of ``connection.async_client`` that is bounded as redis-py bounds it."""

import asyncio
from typing import Any

import pytest
import redis.asyncio
from redis.exceptions import TimeoutError as RedisTimeoutError

from app.store import connection, packed, scripts

ECHO = "return {KEYS[1], ARGV[1], ARGV[2], ARGV[3], #KEYS, #ARGV}"


@pytest.mark.parametrize(
    "args",
    [
        ["PING"],
        ["EVALSHA", "a" * 40, 2, "{chime}:task:1", "{chime}:due", "", "é ∑ 𝄞", -7, 0, 10**18],
        ["SET", "k", b"\x00\xff\r\n$*", "PX", 86_400_000],
        ["HSET", "k", "x" * 10_000, b"y" * 70_000],
    ],
)
def test_pack_gives_the_bytes_redis_py_sends(args: list[Any]) -> None:
    conn = redis.asyncio.Connection()
    assert packed.pack(args) == b"".join(conn.pack_command(*args))


@pytest.mark.parametrize("bad", [1.5, True, None, ["x"]])
def test_pack_refuses_what_it_cannot_encode_exactly(bad: Any) -> None:
    with pytest.raises(TypeError):
        packed.pack(["SET", "k", bad])


def test_the_api_clients_send_packed_commands(redis_url: str) -> None:
    async def go() -> None:
        for client in (
            connection.async_client(redis_url),
            connection.async_client(redis_url, max_connections=2, wait_for_connection=True),
            connection.async_client(redis_url, socket_timeout=None),
        ):
            assert packed.sends_packed(client)
            assert await client.execute_command("SET", packed.pack(["SET", "k", "v"])) in (
                True,
                "OK",
            )
            assert await client.get("k") == "v"
            await client.aclose()
        plain = redis.asyncio.Redis.from_url(redis_url)
        assert not packed.sends_packed(plain)
        await plain.aclose()

    asyncio.run(go())


def test_evalsha_answers_as_the_script_does_and_reloads_a_flushed_script(redis_url: str) -> None:
    args: list[packed.Arg] = ["é", 42, b"\x00raw"]
    expected = ["{chime}:k", "é", "42", "\x00raw", 1, 3]

    async def go() -> None:
        client = connection.async_client(redis_url)
        plain = redis.asyncio.Redis.from_url(redis_url, decode_responses=True)
        for c in (client, plain):
            script = c.register_script(ECHO)
            assert await script(keys=["{chime}:k"], args=args) == expected
            assert await packed.evalsha(c, script, ["{chime}:k"], args) == expected
            await c.script_flush()
            assert await packed.evalsha(c, script, ["{chime}:k"], args) == expected
            await c.aclose()

    asyncio.run(go())


def test_evalsha_with_the_create_script_names_its_errors(redis_url: str) -> None:
    async def go() -> Any:
        client = connection.async_client(redis_url)
        try:
            create = scripts.script(client, "create_task")
            # fields without created_by: the script's own error comes back as redis-py's
            return await packed.evalsha(
                client, create, ["{chime}:task:x", "{chime}:due", "{chime}:task:x"],
                ["x", 1, "", "", "{chime}:wake", "", "", 0, b"\x90"],
            )  # fmt: skip
        finally:
            await client.aclose()

    with pytest.raises(redis.exceptions.ResponseError, match="created_by"):
        asyncio.run(go())


def test_a_write_that_cannot_finish_is_a_timeout_and_drops_the_connection(
    redis_url: str,
) -> None:
    """A write whose drain never ends (a Redis that reads nothing, its buffers full) is bounded
    by the socket timeout: redis-py's TimeoutError, and the connection dropped, as redis-py's
    own write does."""

    async def go() -> None:
        client = connection.async_client(redis_url, socket_timeout=0.3, retries=0)
        conn = await client.connection_pool.get_connection()
        try:
            assert type(conn).__name__.startswith("Packing")
            waiting = asyncio.Event()

            async def full() -> None:
                waiting.set()
                await asyncio.Event().wait()

            conn._writer._protocol._drain_helper = full  # type: ignore[attr-defined]
            with pytest.raises(RedisTimeoutError):
                await conn.send_packed_command(packed.pack(["PING"]))
            assert waiting.is_set()
            assert not conn.is_connected
        finally:
            await client.connection_pool.release(conn)
            await client.aclose()

    asyncio.run(go())
