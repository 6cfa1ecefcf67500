"""An asyncio HTTP server on 127.0.0.1 for tests that need hundreds of requests at once.

It runs its own event loop on a thread and records, on its own clock and in arrival order, what
it was asked. Routes (HTTP/1.1, keep-alive):

- ``/hold/NAME?ms=N``: answers after N ms; counts the requests in flight (``peak``) overall and
  per ``group`` query value;
- ``/stall/KEY?s=N``: the first call per KEY waits N seconds, later ones answer at once;
- ``/hang/NAME``: never answers; the sink records NAME in ``disconnected`` once the client
  closes the connection;
- anything else: ``{"ok": true}`` at once.

Every request is kept in ``requests`` as ``(path, headers)`` and its NAME/KEY in ``arrivals``.
"""

import asyncio
import threading
from collections import Counter
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import parse_qs, urlsplit


@dataclass
class Record:
    lock: threading.Lock = field(default_factory=threading.Lock)
    requests: list[tuple[str, dict[str, str]]] = field(default_factory=list)
    arrivals: list[str] = field(default_factory=list)
    calls: Counter[str] = field(default_factory=Counter)
    in_flight: Counter[str] = field(default_factory=Counter)
    peak: Counter[str] = field(default_factory=Counter)
    disconnected: set[str] = field(default_factory=set)
    opened: int = 0


class AsyncSink:
    def __init__(self) -> None:
        self.record = Record()
        self.loop = asyncio.new_event_loop()
        self.ready = threading.Event()
        self.thread = threading.Thread(target=self._serve, name="sink", daemon=True)
        self.port = 0

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self) -> None:
        self.thread.start()
        if not self.ready.wait(10):
            raise RuntimeError("the sink did not start")

    def stop(self) -> None:
        self.loop.call_soon_threadsafe(self._stop.set)
        self.thread.join(10)

    def _serve(self) -> None:
        asyncio.set_event_loop(self.loop)
        self.loop.run_until_complete(self._main())
        self.loop.close()

    async def _main(self) -> None:
        self._stop = asyncio.Event()
        self._clients: set[asyncio.Task[Any]] = set()
        self._writers: set[asyncio.StreamWriter] = set()
        server = await asyncio.start_server(self._accept, "127.0.0.1", 0, backlog=2048)
        self.port = int(server.sockets[0].getsockname()[1])
        self.ready.set()
        async with server:
            await self._stop.wait()
            server.close()
            for task in list(self._clients):
                task.cancel()
            await asyncio.gather(*self._clients, return_exceptions=True)
            # a connection accepted as the server closed has a task that never ran, so its
            # own close never came: each is closed here, and the loop runs once more to let
            # the sockets go (a transport collected open later warns in whatever test runs)
            for writer in list(self._writers):
                writer.close()
            await asyncio.sleep(0)

    def _accept(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        """Called as each connection is made: the connection is known before its task runs."""
        self._writers.add(writer)
        task = self.loop.create_task(self._client(reader, writer))
        self._clients.add(task)
        task.add_done_callback(self._clients.discard)

    async def _client(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        rec = self.record
        with rec.lock:
            rec.opened += 1
        try:
            while True:
                head = await reader.readuntil(b"\r\n\r\n")
                lines = head.decode("latin-1").split("\r\n")
                _method, target, _ = lines[0].split(" ", 2)
                headers = {}
                for line in lines[1:]:
                    if ":" in line:
                        name, _, value = line.partition(":")
                        headers[name.strip().lower()] = value.strip()
                length = int(headers.get("content-length") or 0)
                if length:
                    await reader.readexactly(length)
                if not await self._answer(target, headers, reader, writer):
                    return
        except (asyncio.IncompleteReadError, ConnectionError, asyncio.CancelledError):
            return
        finally:
            writer.close()
            self._writers.discard(writer)

    async def _answer(
        self,
        target: str,
        headers: dict[str, str],
        reader: asyncio.StreamReader,
        writer: asyncio.StreamWriter,
    ) -> bool:
        rec = self.record
        parts = urlsplit(target)
        query = {k: v[0] for k, v in parse_qs(parts.query).items()}
        name = parts.path.rsplit("/", 1)[-1]
        with rec.lock:
            rec.requests.append((parts.path, headers))
            rec.arrivals.append(name)
            rec.calls[name] += 1
            calls = rec.calls[name]
        if parts.path.startswith("/hang/"):
            await reader.read()  # returns once the client closed its end
            with rec.lock:
                rec.disconnected.add(name)
            return False
        if parts.path.startswith("/hold/"):
            group = query.get("group", "")
            with rec.lock:
                for key in {"", group}:
                    rec.in_flight[key] += 1
                    rec.peak[key] = max(rec.peak[key], rec.in_flight[key])
            try:
                await asyncio.sleep(int(query.get("ms", "100")) / 1000)
            finally:
                with rec.lock:
                    for key in {"", group}:
                        rec.in_flight[key] -= 1
        elif parts.path.startswith("/stall/") and calls == 1:
            await asyncio.sleep(float(query.get("s", "30")))
        body = b'{"ok": true, "call": %d}' % calls
        writer.write(
            b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: %d\r\n\r\n%s"
            % (len(body), body)
        )
        await writer.drain()
        return True

    def snapshot(self) -> dict[str, Any]:
        with self.record.lock:
            return {
                "arrivals": list(self.record.arrivals),
                "peak": dict(self.record.peak),
                "calls": dict(self.record.calls),
            }
