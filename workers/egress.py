"""Where ``http.request`` may connect, and a client whose connections go where they were checked.

The policy (``CHIME_HTTP_ALLOW`` host patterns; link-local and cloud metadata addresses always
refused) lives in :class:`EgressPolicy`, built by :func:`egress_policy` only, so a stricter
policy (closed by default) replaces one function.

Pinning: the shared client's network backend (:class:`PinnedBackend`) is the only place a host
name is resolved. It resolves once per new connection, asks the policy about every address,
and connects to a checked address by IP; httpcore then negotiates TLS with the URL's host name
(SNI and certificate check), so a name that resolves to another address a moment later (DNS
rebinding) is never connected to. Pooled connections are reused only within one policy: each
policy has its own client.
"""

import asyncio
import http.cookiejar
import ipaddress
import socket
import ssl
from collections.abc import AsyncIterable, Awaitable, Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from fnmatch import fnmatchcase
from functools import cache
from typing import Any
from urllib.parse import urlsplit

import httpcore
import httpx
from httpx._transports.default import AsyncResponseStream, map_httpcore_exceptions

from app.settings import Settings
from workers.runlog import mask_url

#: cloud metadata endpoints outside the link-local ranges (AWS over IPv6, Alibaba)
_METADATA_IPS = frozenset(
    {ipaddress.ip_address("fd00:ec2::254"), ipaddress.ip_address("100.100.100.200")}
)
#: name lookups run on these threads (a lookup ends within the resolver's own timeouts)
_RESOLVER = ThreadPoolExecutor(max_workers=16, thread_name_prefix="chime-dns")

#: (host, port) -> the addresses the host resolves to
Resolve = Callable[[str, int], Awaitable[list[str]]]


class EgressRefused(Exception):
    """The policy refuses this destination; the message says why (no secret in it)."""


@dataclass(frozen=True)
class EgressPolicy:
    """Today's policy: hosts matching ``allow`` (every host when None), and never a link-local
    or cloud metadata address, even when a pattern allows the host."""

    allow: tuple[str, ...] | None = None

    def check_url(self, url: str) -> None:
        """Refuse a URL that is not http(s) or whose host the allowlist does not name."""
        parts = urlsplit(url)
        host = (parts.hostname or "").lower()
        if parts.scheme not in ("http", "https") or not host:
            raise EgressRefused(f"refused: {mask_url(url)} is not an http(s) URL")
        if self.allow is not None and not any(fnmatchcase(host, p) for p in self.allow):
            raise EgressRefused(f"refused: host {host} is not allowed by CHIME_HTTP_ALLOW")

    def check_addresses(self, host: str, addresses: list[str]) -> None:
        """Refuse the host when any address it resolved to is one the policy forbids."""
        for address in addresses:
            if _blocked(address):
                raise EgressRefused(
                    f"refused: host {host} resolves to {address}, a link-local address"
                )


def egress_policy(settings: Settings) -> EgressPolicy:
    """The egress policy of a process (the one place that decides it)."""
    return EgressPolicy(allow=settings.http_allow)


def _blocked(address: str) -> bool:
    ip = ipaddress.ip_address(address.split("%", 1)[0])
    if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
        ip = ip.ipv4_mapped
    return ip.is_link_local or ip in _METADATA_IPS


def _ip_literal(host: str) -> str | None:
    try:
        return str(ipaddress.ip_address(host.strip("[]")))
    except ValueError:
        return None


async def resolve_host(host: str, port: int) -> list[str]:
    """The addresses of ``host`` (system resolver, on a thread of its own)."""
    loop = asyncio.get_running_loop()
    try:
        infos = await loop.run_in_executor(
            _RESOLVER, lambda: socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
        )
    except OSError as exc:
        raise httpcore.ConnectError(f"cannot resolve {host}: {exc}") from None
    return list(dict.fromkeys(str(info[4][0]) for info in infos))


class PinnedBackend(httpcore.AsyncNetworkBackend):
    """Resolve, check every address, connect to a checked one: the only lookup of a host."""

    def __init__(self, policy: EgressPolicy, resolve: Resolve = resolve_host) -> None:
        from httpcore._backends.auto import AutoBackend

        self.policy = policy
        self.resolve = resolve
        self._inner = AutoBackend()

    async def connect_tcp(
        self,
        host: str,
        port: int,
        timeout: float | None = None,
        local_address: str | None = None,
        socket_options: Any = None,
    ) -> httpcore.AsyncNetworkStream:
        literal = _ip_literal(host)
        addresses = [literal] if literal else await self.resolve(host, port)
        if not addresses:
            raise httpcore.ConnectError(f"cannot resolve {host}: no address")
        self.policy.check_addresses(host, addresses)
        failure: Exception | None = None
        for address in addresses:
            try:
                return await self._inner.connect_tcp(
                    address, port, timeout, local_address, socket_options
                )
            except (httpcore.ConnectError, httpcore.ConnectTimeout) as exc:
                failure = exc
        assert failure is not None
        raise failure

    async def connect_unix_socket(
        self, path: str, timeout: float | None = None, socket_options: Any = None
    ) -> httpcore.AsyncNetworkStream:
        raise EgressRefused("refused: unix sockets are not a destination")

    async def sleep(self, seconds: float) -> None:
        await self._inner.sleep(seconds)


#: connections per httpcore pool: its bookkeeping walks every connection for every request
#: (quadratic in the pool's size), so the transport spreads requests over pools this small
POOL_SIZE = 4


class PinnedTransport(httpx.AsyncBaseTransport):
    """httpx's transport over httpcore pools whose network backend is :class:`PinnedBackend`.

    Requests are spread round robin over pools of :data:`POOL_SIZE` connections: together they
    hold ``limits.max_connections``, and the per-request cost stays flat at hundreds in flight.
    """

    def __init__(
        self,
        policy: EgressPolicy,
        limits: httpx.Limits,
        resolve: Resolve = resolve_host,
        verify: ssl.SSLContext | None = None,
    ) -> None:
        context = verify or default_ssl_context()
        total = limits.max_connections or POOL_SIZE
        count = max(1, -(-total // POOL_SIZE))
        keepalive = limits.max_keepalive_connections or total
        backend = PinnedBackend(policy, resolve)
        self._pools = [
            httpcore.AsyncConnectionPool(
                ssl_context=context,
                max_connections=-(-total // count),
                max_keepalive_connections=max(1, -(-keepalive // count)),
                keepalive_expiry=limits.keepalive_expiry,
                network_backend=backend,
            )
            for _ in range(count)
        ]
        self._next = 0

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        assert isinstance(request.stream, httpx.AsyncByteStream)
        pool = self._pick()
        req = httpcore.Request(
            method=request.method,
            url=httpcore.URL(
                scheme=request.url.raw_scheme,
                host=request.url.raw_host,
                port=request.url.port,
                target=request.url.raw_path,
            ),
            headers=request.headers.raw,
            content=request.stream,
            extensions=request.extensions,
        )
        with map_httpcore_exceptions():
            resp = await pool.handle_async_request(req)
        assert isinstance(resp.stream, AsyncIterable)
        return httpx.Response(
            status_code=resp.status,
            headers=resp.headers,
            stream=AsyncResponseStream(resp.stream),
            extensions=resp.extensions,
        )

    def _pick(self) -> httpcore.AsyncConnectionPool:
        """The next pool round robin, or after it the first with a free connection."""
        pools, start = self._pools, self._next
        self._next = (start + 1) % len(pools)
        for i in range(len(pools)):
            pool = pools[(start + i) % len(pools)]
            if len(pool._requests) < pool._max_connections:
                return pool
        return pools[start]

    async def aclose(self) -> None:
        for pool in self._pools:
            await pool.aclose()

    def connections(self) -> int:
        """Open connections, all pools together (tests check none outlives a step)."""
        return sum(len(pool.connections) for pool in self._pools)


@cache
def default_ssl_context() -> ssl.SSLContext:
    """Certificates verified against the host name; built once (loading the CA bundle costs
    about 90 ms)."""
    return httpx.create_ssl_context()


def make_client(
    policy: EgressPolicy,
    max_connections: int,
    resolve: Resolve = resolve_host,
    verify: ssl.SSLContext | None = None,
) -> httpx.AsyncClient:
    """The ``http.request`` client of one event loop: pooled, bounded, pinned."""
    limits = httpx.Limits(
        max_connections=max_connections,
        max_keepalive_connections=min(max_connections, 200),
        keepalive_expiry=5.0,
    )
    transport = PinnedTransport(policy, limits, resolve, verify)
    client = httpx.AsyncClient(transport=transport, follow_redirects=False, trust_env=False)
    # runs of every agent share this client: a cookie one response sets must never ride along
    # on another run's request
    client.cookies = _NoCookies()
    return client


class _NoCookies(http.cookiejar.CookieJar):
    """A cookie jar that keeps nothing and sends nothing."""

    def extract_cookies(self, response: Any, request: Any) -> None:
        return

    def add_cookie_header(self, request: Any) -> None:
        return
