"""Commands packed into the Redis protocol by the caller, and the asyncio connections that send
them as they are.

``redis.asyncio`` packs every command argument by argument in Python (its encoder checks each
one's type), and, when the client has a socket timeout, bounds each write with
``asyncio.wait_for``, which on Python 3.11 runs the write as a task of its own: one more task
and one more turn of the event loop per command. The connections of
:func:`app.store.connection.async_client` (:func:`packing`) send a :class:`Packed` command
unchanged, and bound a write on an open connection with ``asyncio.timeout``: the same bound and
the same errors, without the task. Everything else (the pool, retries, reply timeouts, health
checks, reply parsing) stays redis-py's.

:func:`evalsha` calls a registered script with its call packed here, for the API's busiest
script (``create_task``): a client whose connections cannot send a packed command, or a Redis
that lost the script (``NOSCRIPT``), gets the ordinary call of redis-py's ``Script``.
"""

import asyncio
from collections.abc import Iterable
from typing import Any

import redis.asyncio
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import NoScriptError
from redis.exceptions import TimeoutError as RedisTimeoutError

Arg = str | bytes | int


class Packed(bytes):
    """One whole command in the Redis protocol (RESP), as :func:`pack` makes it."""


def pack(args: Iterable[Arg]) -> Packed:
    """The command ``args`` (its name first) in the Redis protocol: a ``str`` as UTF-8 (as
    redis-py encodes it by default), an ``int`` in decimal, ``bytes`` as they are."""
    parts: list[bytes] = []
    for arg in args:
        if isinstance(arg, str):
            data = arg.encode()
        elif isinstance(arg, bytes):
            data = arg
        elif isinstance(arg, int) and not isinstance(arg, bool):
            data = b"%d" % arg
        else:
            raise TypeError(f"cannot pack a {type(arg).__name__} as a Redis argument")
        parts.append(b"$%d\r\n%b\r\n" % (len(data), data))
    return Packed(b"*%d\r\n%b" % (len(parts), b"".join(parts)))


class _Packing:
    """Mixed into a ``redis.asyncio`` connection class by :func:`packing`."""

    # what the mixin uses of redis-py's connection (AbstractConnection)
    socket_timeout: float | None
    is_connected: bool
    _writer: asyncio.StreamWriter

    def pack_command(self, *args: Any) -> Any:
        """``execute_command(name, Packed)`` sends the packed command as it is."""
        if len(args) == 2 and type(args[1]) is Packed:
            return [args[1]]
        return super().pack_command(*args)  # type: ignore[misc]

    async def send_packed_command(self, command: Any, check_health: bool = True) -> None:
        """redis-py's, without ``asyncio.wait_for``'s task on an open connection."""
        timeout = self.socket_timeout
        if not timeout or not self.is_connected:
            await super().send_packed_command(command, check_health)  # type: ignore[misc]
            return
        if check_health:
            await self.check_health()  # type: ignore[attr-defined]
            if not self.is_connected:  # the health check failed and reconnects
                await super().send_packed_command(command, False)
                return
        try:
            if isinstance(command, str):
                command = command.encode()
            if isinstance(command, bytes):
                command = [command]
            self._writer.writelines(command)
            async with asyncio.timeout(timeout):
                await self._writer.drain()
        except TimeoutError:
            await self.disconnect(nowait=True)  # type: ignore[attr-defined]
            raise RedisTimeoutError("Timeout writing to socket") from None
        except OSError as e:
            await self.disconnect(nowait=True)  # type: ignore[attr-defined]
            raise RedisConnectionError(f"Error while writing to socket: {e}") from e
        except BaseException:
            # as redis-py: a write cut short leaves the connection unusable
            await self.disconnect(nowait=True)  # type: ignore[attr-defined]
            raise


_packing: dict[type[Any], type[Any]] = {}


def packing(connection_class: type[Any]) -> type[Any]:
    """``connection_class`` (a ``redis.asyncio`` connection) that sends packed commands."""
    if issubclass(connection_class, _Packing):
        return connection_class
    made = _packing.get(connection_class)
    if made is None:
        name = f"Packing{connection_class.__name__}"
        made = _packing[connection_class] = type(name, (_Packing, connection_class), {})
    return made


def sends_packed(client: "redis.asyncio.Redis") -> bool:
    """Whether the client's connections send a :class:`Packed` command as it is."""
    return issubclass(getattr(client.connection_pool, "connection_class", object), _Packing)


async def evalsha(
    client: "redis.asyncio.Redis", script: Any, keys: list[str], args: list[Arg]
) -> Any:
    """``script(keys=keys, args=args)`` for a script registered on ``client``
    (:func:`app.store.scripts.script`), packed here when the client's connections allow it."""
    if sends_packed(client):
        command = pack(["EVALSHA", script.sha, len(keys), *keys, *args])
        try:
            return await client.execute_command("EVALSHA", command)  # type: ignore[no-untyped-call]
        except NoScriptError:
            pass  # Redis restarted or was flushed: the ordinary call loads the script again
    return await script(keys=keys, args=args)
