"""The built-in pipeline actions: one function per name in ``ACTION_PARAMS``.

An action takes its params struct (templates already rendered) and the step's context, and
returns the step's output or raises :class:`StepFailed`. Adding an action is one params struct in
``app/core/actions.py`` and one ``@action("name")`` function here.
"""

import ipaddress
import json
import logging
import socket
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from fnmatch import fnmatchcase
from typing import Any, TypeVar
from urllib.parse import urljoin, urlsplit

import httpx
import msgspec

from app.core.actions import (
    ACTION_PARAMS,
    ActionParams,
    EventEmitParams,
    FailParams,
    HttpRequestParams,
    LogParams,
    SleepParams,
)
from app.core.task import Run, Task
from app.logs import is_sensitive, mask_headers
from app.settings import Settings
from workers.runlog import mask_url

logger = logging.getLogger("chime.worker")

MAX_REDIRECTS = 5
#: a response body larger than this fails the step instead of filling the worker's memory
MAX_RESPONSE_BYTES = 10 * 1024 * 1024
_REDIRECTS = frozenset({301, 302, 303, 307, 308})
#: cloud metadata endpoints outside the link-local ranges (AWS over IPv6, Alibaba)
_METADATA_IPS = frozenset(
    {ipaddress.ip_address("fd00:ec2::254"), ipaddress.ip_address("100.100.100.200")}
)

#: (name, data) -> the step's output; bound by the job to the store's emit_event
Emit = Callable[[str, dict[str, Any]], Any]
#: (host, port) -> the IP addresses the host resolves to
Resolve = Callable[[str, int], list[str]]


class StepFailed(Exception):
    """The step failed; ``output`` (e.g. an unexpected HTTP response) is kept on the step."""

    def __init__(self, message: str, output: Any = None) -> None:
        super().__init__(message)
        self.output = output


def resolve_host(host: str, port: int) -> list[str]:
    try:
        infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    except OSError as exc:
        raise StepFailed(f"cannot resolve {host}: {exc}") from None
    return sorted({str(info[4][0]) for info in infos})


@dataclass
class StepContext:
    """What an action may use besides its params."""

    task: Task
    run: Run
    settings: Settings
    timeout: float
    cancel: threading.Event = field(default_factory=threading.Event)
    emit: Emit | None = None
    resolve: Resolve = resolve_host
    started: float = field(default_factory=time.monotonic)

    def remaining(self) -> float:
        """Seconds left before the step's timeout (never below a millisecond)."""
        return max(0.001, self.timeout - (time.monotonic() - self.started))


_P = TypeVar("_P", bound=ActionParams)
ActionFn = Callable[[Any, StepContext], Any]
ACTIONS: dict[str, ActionFn] = {}


#: actions that return at once without blocking: run in the job's thread, no step thread
INLINE: set[str] = set()


def action(
    name: str, inline: bool = False
) -> Callable[[Callable[[_P, StepContext], Any]], Callable[[_P, StepContext], Any]]:
    """Register the function of action ``name`` (which must have a params struct).

    ``inline``: the action never blocks (no I/O, no waiting), so the step timeout cannot be
    reached and the runner calls it directly instead of in a thread.
    """
    if name not in ACTION_PARAMS:
        raise KeyError(f"action {name!r} has no params struct in ACTION_PARAMS")

    def register(fn: Callable[[_P, StepContext], Any]) -> Callable[[_P, StepContext], Any]:
        ACTIONS[name] = fn
        if inline:
            INLINE.add(name)
        return fn

    return register


# -- http.request ----------------------------------------------------------------------------


def check_egress(url: str, allow: tuple[str, ...] | None, resolve: Resolve) -> None:
    """Refuse a URL whose host ``CHIME_HTTP_ALLOW`` does not list or that resolves to a
    link-local / cloud-metadata address (refused even when a pattern allows the host)."""
    parts = urlsplit(url)
    host = (parts.hostname or "").lower()
    if parts.scheme not in ("http", "https") or not host:
        raise StepFailed(f"refused: {mask_url(url)} is not an http(s) URL")
    if allow is not None and not any(fnmatchcase(host, pattern) for pattern in allow):
        raise StepFailed(f"refused: host {host} is not allowed by CHIME_HTTP_ALLOW")
    port = parts.port or (443 if parts.scheme == "https" else 80)
    for address in resolve(host, port):
        if _blocked(address):
            raise StepFailed(f"refused: host {host} resolves to {address}, a link-local address")


def _blocked(address: str) -> bool:
    ip = ipaddress.ip_address(address.split("%", 1)[0])
    if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
        ip = ip.ipv4_mapped
    return ip.is_link_local or ip in _METADATA_IPS


def _same_origin(a: str, b: str) -> bool:
    pa, pb = urlsplit(a), urlsplit(b)
    return (pa.scheme, pa.hostname, pa.port) == (pb.scheme, pb.hostname, pb.port)


def _read(response: httpx.Response) -> bytes:
    chunks: list[bytes] = []
    size = 0
    for chunk in response.iter_bytes():
        size += len(chunk)
        if size > MAX_RESPONSE_BYTES:
            raise StepFailed(f"response body over {MAX_RESPONSE_BYTES} bytes")
        chunks.append(chunk)
    return b"".join(chunks)


def _decode_body(raw: bytes, encoding: str | None) -> Any:
    text = raw.decode(encoding or "utf-8", errors="replace")
    if not text.strip():
        return text
    try:
        return json.loads(text)
    except ValueError:
        return text


@action("http.request")
def http_request(p: HttpRequestParams, ctx: StepContext) -> dict[str, Any]:
    """One HTTP request; redirects are followed by hand so every hop passes the egress check."""
    method, url, headers = p.method, p.url, dict(p.headers)
    content: bytes | None = None
    if p.json is not msgspec.UNSET:
        content = json.dumps(p.json).encode()
        if not any(k.lower() == "content-type" for k in headers):
            headers["Content-Type"] = "application/json"
    elif p.body is not None:
        content = p.body.encode()
    with httpx.Client(follow_redirects=False, trust_env=False) as client:
        for hop in range(MAX_REDIRECTS + 1):
            check_egress(url, ctx.settings.http_allow, ctx.resolve)
            request = client.build_request(
                method, url, headers=headers, content=content, timeout=ctx.remaining()
            )
            try:
                response = client.send(request, stream=True)
            except httpx.TimeoutException:
                raise StepFailed(f"timed out after {ctx.timeout:g}s") from None
            except httpx.HTTPError as exc:
                raise StepFailed(f"{type(exc).__name__}: {exc}") from None
            try:
                location = response.headers.get("location")
                explicit = p.expect_status is not None and p.accepts(response.status_code)
                if response.status_code in _REDIRECTS and location and not explicit:
                    if hop == MAX_REDIRECTS:
                        raise StepFailed(f"more than {MAX_REDIRECTS} redirects")
                    target = urljoin(url, location)
                    if not _same_origin(url, target):
                        headers = {k: v for k, v in headers.items() if not is_sensitive(k)}
                    if response.status_code == 303 or (
                        response.status_code in (301, 302) and method == "POST"
                    ):
                        method = "GET" if method != "HEAD" else method
                        content = None
                        headers = {
                            k: v
                            for k, v in headers.items()
                            if k.lower() not in ("content-type", "content-length")
                        }
                    url = target
                    continue
                raw = _read(response) if method != "HEAD" else b""
            except httpx.TimeoutException:
                raise StepFailed(f"timed out after {ctx.timeout:g}s") from None
            except httpx.HTTPError as exc:
                raise StepFailed(f"{type(exc).__name__}: {exc}") from None
            finally:
                response.close()
            output = {
                "status": response.status_code,
                "url": mask_url(url),
                "headers": mask_headers(dict(response.headers)),
                "body": _decode_body(raw, response.encoding),
            }
            if not p.accepts(response.status_code):
                raise StepFailed(f"unexpected status {response.status_code}", output)
            return output
    raise StepFailed(f"more than {MAX_REDIRECTS} redirects")  # pragma: no cover - loop returns


# -- the small ones --------------------------------------------------------------------------


@action("log", inline=True)
def log(p: LogParams, ctx: StepContext) -> str:
    logger.info("step.log", extra={"task_id": ctx.task.id, "run_id": ctx.run.id, "text": p.message})
    return p.message


@action("sleep")
def sleep(p: SleepParams, ctx: StepContext) -> dict[str, Any]:
    """Waits on the step's cancel event, so a timed-out or abandoned step stops at once."""
    if ctx.cancel.wait(p.seconds):
        raise StepFailed("sleep interrupted")
    return {"seconds": p.seconds}


@action("event.emit")
def event_emit(p: EventEmitParams, ctx: StepContext) -> Any:
    if ctx.emit is None:
        raise StepFailed("event.emit is not available in this process")
    return ctx.emit(p.name, p.data)


@action("fail", inline=True)
def fail(p: FailParams, ctx: StepContext) -> None:
    raise StepFailed(p.message)
