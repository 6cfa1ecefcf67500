"""Where ``http.request`` may connect, and a client whose connections go where they were checked.

The policy (:class:`EgressPolicy`, built by :func:`egress_policy` only) is the contract's: by
default only public addresses are reachable; ``CHIME_HTTP_ALLOW`` replaces that default with a
list of host globs, IP literals, CIDR blocks and the word ``public``. An address is judged as
the IPv4 address it embeds when it has one (IPv4-mapped and -compatible IPv6, NAT64, 6to4), so
every spelling of loopback is loopback. A host is reached only when every address it resolves
to is allowed: an address inside a listed block, or a public address when ``public`` is listed
or a glob names the host. Link-local and cloud metadata addresses are opened only by an entry
inside their own range (``169.254.169.254``), never by a wider block such as ``0.0.0.0/0``.

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
import re
import socket
import ssl
from collections.abc import AsyncIterable, Awaitable, Callable, Iterable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from fnmatch import fnmatchcase
from functools import cache, cached_property
from typing import Any
from urllib.parse import urlsplit, urlunsplit

import httpcore
import httpx
from httpx._transports.default import AsyncResponseStream, map_httpcore_exceptions

from app.settings import Settings
from workers.runlog import mask_url

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address
IPNetwork = ipaddress.IPv4Network | ipaddress.IPv6Network

#: name lookups run on these threads (a lookup ends within the resolver's own timeouts)
_RESOLVER = ThreadPoolExecutor(max_workers=16, thread_name_prefix="chime-dns")

#: (host, port) -> the addresses the host resolves to
Resolve = Callable[[str, int], Awaitable[list[str]]]


def _nets(*blocks: str) -> tuple[IPNetwork, ...]:
    return tuple(ipaddress.ip_network(b) for b in blocks)


#: IPv4 ranges that are not public, each with the word a refusal uses for it (first match wins)
_V4_KINDS: tuple[tuple[str, tuple[IPNetwork, ...]], ...] = (
    ("cloud metadata (link-local service)", _nets("100.100.100.200/32")),
    ("unspecified", _nets("0.0.0.0/8")),
    ("loopback", _nets("127.0.0.0/8")),
    ("private", _nets("10.0.0.0/8", "172.16.0.0/12", "192.168.0.0/16")),
    ("link-local", _nets("169.254.0.0/16")),
    ("shared (carrier-grade NAT)", _nets("100.64.0.0/10")),
    ("multicast", _nets("224.0.0.0/4")),
    (
        "reserved",
        _nets(
            "192.0.0.0/24", "192.0.2.0/24", "192.88.99.0/24", "198.18.0.0/15",
            "198.51.100.0/24", "203.0.113.0/24", "240.0.0.0/4",
        ),
    ),
)  # fmt: skip
#: IPv6 ranges that are not public (after embedded IPv4 addresses are taken out)
_V6_KINDS: tuple[tuple[str, tuple[IPNetwork, ...]], ...] = (
    ("cloud metadata (link-local service)", _nets("fd00:ec2::254/128")),
    ("unspecified", _nets("::/128")),
    ("loopback", _nets("::1/128")),
    ("link-local", _nets("fe80::/10")),
    ("unique-local", _nets("fc00::/7", "fec0::/10")),
    ("multicast", _nets("ff00::/8")),
    ("reserved", _nets("2001::/23", "2001:db8::/32", "3fff::/20", "64:ff9b:1::/48")),
)
#: every public IPv6 address is global unicast
_V6_GLOBAL = ipaddress.ip_network("2000::/3")
_NAT64 = ipaddress.ip_network("64:ff9b::/96")
_V4_COMPATIBLE = ipaddress.ip_network("::/96")
#: ranges a wider allowlist block never opens: only an entry inside them does
_GUARDED = _nets("169.254.0.0/16", "fe80::/10", "100.100.100.200/32", "fd00:ec2::254/128")
#: a host spelled only with digits, dots and hex: maybe an IPv4 address in a legacy spelling
_BROADCAST = ipaddress.IPv4Address("255.255.255.255")
_NUMERIC_HOST = re.compile(r"^(0[xX][0-9a-fA-F]*|[0-9]+)(\.(0[xX][0-9a-fA-F]*|[0-9]+)){0,3}$")


class EgressRefused(Exception):
    """The policy refuses this destination; the message names the rule (no secret in it)."""


def embedded_v4(ip: IPAddress) -> ipaddress.IPv4Address | None:
    """The IPv4 address an IPv6 address stands for (mapped, compatible, NAT64, 6to4)."""
    if isinstance(ip, ipaddress.IPv4Address):
        return None
    if ip.ipv4_mapped is not None:
        return ip.ipv4_mapped
    if ip.sixtofour is not None:
        return ip.sixtofour
    if ip in _NAT64 or (ip in _V4_COMPATIBLE and int(ip) > 1):
        return ipaddress.IPv4Address(int(ip) & 0xFFFFFFFF)
    return None


def address_kind(ip: IPAddress) -> str | None:
    """Why ``ip`` is not public (``"loopback"``, ``"private"``, ...), or None when it is; an
    address that embeds an IPv4 address is judged as that address."""
    v4 = embedded_v4(ip)
    if v4 is not None:
        return address_kind(v4)
    if isinstance(ip, ipaddress.IPv4Address):
        if ip == _BROADCAST:
            return "broadcast"
        return next((kind for kind, nets in _V4_KINDS if any(ip in n for n in nets)), None)
    found = next((kind for kind, nets in _V6_KINDS if any(ip in n for n in nets)), None)
    if found is None and ip not in _V6_GLOBAL:
        return "reserved"
    return found


def parse_address(text: str) -> IPAddress | None:
    """An IP address in any spelling a resolver accepts (``127.1``, ``0x7f000001``,
    ``2130706433``, ``0177.0.0.1``, ``[::ffff:127.0.0.1]``), or None for a name."""
    text = text.strip("[]").split("%", 1)[0]
    try:
        return ipaddress.ip_address(text)
    except ValueError:
        pass
    if _NUMERIC_HOST.match(text):
        try:
            return ipaddress.IPv4Address(socket.inet_aton(text))
        except OSError:
            return None
    return None


@dataclass(frozen=True)
class EgressPolicy:
    """Which hosts and addresses ``http.request`` may reach (see the module's docstring).

    ``entries`` None is the default (public addresses only); otherwise the entries of
    ``CHIME_HTTP_ALLOW``, already checked by the settings.
    """

    entries: tuple[str, ...] | None = None

    @cached_property
    def public(self) -> bool:
        return self.entries is None or "public" in self.entries

    @cached_property
    def networks(self) -> tuple[IPNetwork, ...]:
        return tuple(n for n in (network_entry(e) for e in self.entries or ()) if n is not None)

    @cached_property
    def globs(self) -> tuple[str, ...]:
        return tuple(e for e in self.entries or () if e != "public" and network_entry(e) is None)

    def check_url(self, url: str) -> str:
        """Refuse a URL that is not http(s), or whose host no rule can allow; returns the URL
        to request (an IPv4 host in a legacy spelling written the usual way)."""
        parts = urlsplit(url)
        try:
            host = parts.hostname or ""
            port = parts.port
        except ValueError:
            host, port = "", None
        if parts.scheme not in ("http", "https") or not host:
            raise EgressRefused(f"refused: {mask_url(url)} is not an http(s) URL")
        literal = parse_address(host)
        if literal is not None:
            self.check_addresses(host, [str(literal)])
            if literal.version == 4 and host != str(literal):
                userinfo, at, _ = parts.netloc.rpartition("@")
                netloc = f"{userinfo}{at}{literal}" + ("" if port is None else f":{port}")
                url = urlunsplit(parts._replace(netloc=netloc))
            return url
        if not self.public and not self.networks and not self.names(host):
            raise EgressRefused(f"refused: host {host} is not allowed by {self.rule}")
        return url

    def check_addresses(self, host: str, addresses: Iterable[str]) -> None:
        """Refuse ``host`` unless every address it resolved to is allowed; the message lists
        each refused address with the reason."""
        named = self.names(host)
        refused = [
            f"{address}, {reason}"
            for address in addresses
            if (reason := self.refusal(address, named)) is not None
        ]
        if not refused:
            return
        shown = host.strip("[]")
        where = "" if parse_address(shown) is not None else f"host {shown} resolves to "
        raise EgressRefused(f"refused: {where}{'; '.join(refused)}: not allowed by {self.rule}")

    def refusal(self, address: str, named: bool = False) -> str | None:
        """Why this address is refused (``"a loopback address"``), or None when it is allowed;
        ``named``: a glob of the allowlist names the host."""
        ip = parse_address(address)
        if ip is None:
            return "not an IP address"
        v4 = embedded_v4(ip)
        if self._listed((ip,) if v4 is None else (ip, v4)):
            return None
        kind = address_kind(ip)
        inside = "" if v4 is None else f" (it stands for {v4})"
        if kind is not None:
            article = "an" if kind[0] in "aeiou" else "a"
            return f"{article} {kind} address{inside}"
        if self.public or named:
            return None
        return f"a public address{inside}, and no entry names the host"

    def _listed(self, spellings: tuple[IPAddress, ...]) -> bool:
        """Whether a listed block holds the address (as itself or the IPv4 address it stands
        for); one in a guarded range only through a block inside that range."""
        guards = [g for g in _GUARDED for a in spellings if a.version == g.version and a in g]
        for net in self.networks:
            if not any(a.version == net.version and a in net for a in spellings):
                continue
            if not guards or any(
                g.version == net.version and net.subnet_of(g)  # type: ignore[arg-type]
                for g in guards
            ):
                return True
        return False

    def names(self, host: str) -> bool:
        """Whether a glob of the allowlist names ``host``."""
        name = host.lower().strip("[]").rstrip(".")
        return any(fnmatchcase(name, pattern) for pattern in self.globs)

    @cached_property
    def rule(self) -> str:
        """The rule a refusal names."""
        if self.entries is None:
            return "the default egress policy (public addresses only; CHIME_HTTP_ALLOW opens more)"
        return f"CHIME_HTTP_ALLOW={','.join(self.entries)}"


def network_entry(entry: str) -> IPNetwork | None:
    """The block an allowlist entry names (an IP literal is a block of one), else None."""
    try:
        return ipaddress.ip_network(entry.strip("[]"), strict=False)
    except ValueError:
        return None


def egress_policy(settings: Settings) -> EgressPolicy:
    """The egress policy of a process (the one place that decides it)."""
    return EgressPolicy(entries=settings.http_allow)


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

    def __init__(
        self,
        policy: EgressPolicy,
        resolve: Resolve = resolve_host,
        network: httpcore.AsyncNetworkBackend | None = None,
    ) -> None:
        from httpcore._backends.auto import AutoBackend

        self.policy = policy
        self.resolve = resolve
        #: what opens the sockets (tests put a recording backend here)
        self._inner = network or AutoBackend()

    async def connect_tcp(
        self,
        host: str,
        port: int,
        timeout: float | None = None,
        local_address: str | None = None,
        socket_options: Any = None,
    ) -> httpcore.AsyncNetworkStream:
        literal = parse_address(host)
        addresses = [str(literal)] if literal else await self.resolve(host, port)
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
        network: httpcore.AsyncNetworkBackend | None = None,
    ) -> None:
        context = verify or default_ssl_context()
        total = limits.max_connections or POOL_SIZE
        count = max(1, -(-total // POOL_SIZE))
        keepalive = limits.max_keepalive_connections or total
        backend = PinnedBackend(policy, resolve, network)
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
    network: httpcore.AsyncNetworkBackend | None = None,
) -> httpx.AsyncClient:
    """The ``http.request`` client of one event loop: pooled, bounded, pinned."""
    limits = httpx.Limits(
        max_connections=max_connections,
        max_keepalive_connections=min(max_connections, 200),
        keepalive_expiry=5.0,
    )
    transport = PinnedTransport(policy, limits, resolve, verify, network)
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
