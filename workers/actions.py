"""The built-in pipeline actions: one coroutine or function per name in ``ACTION_PARAMS``.

An action takes its params struct (templates already rendered) and the step's context, and
returns the step's output or raises :class:`StepFailed`. Actions run on the worker's event loop:
one that waits (``http.request``, ``sleep``, ``event.emit``) is a coroutine, and the runner's
step timeout cancels it (the request is aborted and its connection closed); ``log`` and
``fail`` are plain functions. Adding an action is one params struct in ``app/core/actions.py``
and one ``@action("name")`` function here.
"""

import asyncio
import hashlib
import hmac
import inspect
import json
import logging
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any, TypeVar
from urllib.parse import urljoin, urlsplit

import httpx
import msgspec

from app import clock
from app.core.actions import (
    ACTION_PARAMS,
    ActionParams,
    EventEmitParams,
    FailParams,
    HttpRequestParams,
    LogParams,
    SleepParams,
)
from app.core.masking import Masker
from app.core.task import Run, Task
from app.logs import mask_headers
from app.settings import Settings
from workers.egress import EgressPolicy, EgressRefused, egress_policy
from workers.runlog import mask_url

logger = logging.getLogger("chime.worker")

MAX_REDIRECTS = 5
#: a response body larger than this fails the step instead of filling the worker's memory
MAX_RESPONSE_BYTES = 10 * 1024 * 1024
_REDIRECTS = frozenset({301, 302, 303, 307, 308})
#: headers every request carries, set by the worker over any given in params
RUN_HEADERS = ("Chime-Run-Id", "Chime-Task-Id", "Chime-Attempt")
#: the webhook signature, on every request of an agent that has a signing key
SIGNATURE_HEADER = "Chime-Signature"
_OURS = frozenset(h.lower() for h in (*RUN_HEADERS, SIGNATURE_HEADER))

#: (name, data) -> the step's output; bound by the job to the use case of ``app/service/events.py``
Emit = Callable[[str, dict[str, Any]], Awaitable[Any]]


class StepFailed(Exception):
    """The step failed; ``output`` (e.g. an unexpected HTTP response) is kept on the step."""

    def __init__(self, message: str, output: Any = None) -> None:
        super().__init__(message)
        self.output = output


@dataclass
class StepContext:
    """What an action may use besides its params."""

    task: Task
    run: Run
    settings: Settings
    timeout: float
    attempt: int = 1
    emit: Emit | None = None
    #: the process's ``http.request`` client (pooled, pinned to checked addresses)
    http: httpx.AsyncClient | None = None
    policy: EgressPolicy | None = None
    #: the agent's webhook signing key; ``signing_error`` when it has one that cannot be used
    signing_key: str | None = None
    signing_error: str | None = None
    #: masks the run's secret values in what an action logs or passes on
    mask: Masker = field(default_factory=Masker)
    started: float = field(default_factory=time.monotonic)

    def remaining(self) -> float:
        """Seconds left before the step's timeout (never below a millisecond)."""
        return max(0.001, self.timeout - (time.monotonic() - self.started))


_P = TypeVar("_P", bound=ActionParams)
ActionFn = Callable[[Any, StepContext], Any]
ACTIONS: dict[str, ActionFn] = {}


def action(
    name: str,
) -> Callable[[Callable[[_P, StepContext], Any]], Callable[[_P, StepContext], Any]]:
    """Register the function of action ``name`` (which must have a params struct)."""
    if name not in ACTION_PARAMS:
        raise KeyError(f"action {name!r} has no params struct in ACTION_PARAMS")

    def register(fn: Callable[[_P, StepContext], Any]) -> Callable[[_P, StepContext], Any]:
        ACTIONS[name] = fn
        return fn

    return register


async def call_action(name: str, params: ActionParams, ctx: StepContext) -> Any:
    """Run action ``name``: a coroutine is awaited, a plain function called inline."""
    result = ACTIONS[name](params, ctx)
    if inspect.isawaitable(result):
        return await result
    return result


# -- http.request ----------------------------------------------------------------------------


def _same_origin(a: str, b: str) -> bool:
    pa, pb = urlsplit(a), urlsplit(b)
    return (pa.scheme, pa.hostname, pa.port) == (pb.scheme, pb.hostname, pb.port)


async def _read(response: httpx.Response) -> bytes:
    chunks: list[bytes] = []
    size = 0
    async for chunk in response.aiter_bytes():
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


def run_headers(ctx: StepContext, given: dict[str, str]) -> dict[str, str]:
    """The step's headers with Chime's own (run, task, attempt) set over any of the same name;
    a ``Chime-Signature`` the step gives is dropped (only the worker signs)."""
    ours = {
        "Chime-Run-Id": ctx.run.id,
        "Chime-Task-Id": ctx.task.id,
        "Chime-Attempt": str(ctx.attempt),
    }
    headers = {k: v for k, v in given.items() if k.lower() not in _OURS}
    headers.update(ours)
    return headers


def signature(key: str, timestamp: int, body: bytes) -> str:
    """``t=<timestamp>,v1=<hex HMAC-SHA256(key, "<timestamp>.<body>")>``."""
    mac = hmac.new(key.encode(), f"{timestamp}.".encode() + body, hashlib.sha256)
    return f"t={timestamp},v1={mac.hexdigest()}"


def _signed(ctx: StepContext, headers: dict[str, str], content: bytes | None) -> dict[str, str]:
    """``headers`` plus the signature of this exact body, when the agent has a key."""
    if ctx.signing_error is not None:
        raise StepFailed(ctx.signing_error)
    if ctx.signing_key is None:
        return headers
    now = clock.now_ms() // 1000
    return {**headers, SIGNATURE_HEADER: signature(ctx.signing_key, now, content or b"")}


@action("http.request")
async def http_request(p: HttpRequestParams, ctx: StepContext) -> dict[str, Any]:
    """One HTTP request; redirects are followed by hand so every hop passes the egress check,
    and a hop to another origin carries none of the step's headers and no body."""
    if ctx.http is None:
        raise StepFailed("http.request is not available in this process")
    policy = ctx.policy or egress_policy(ctx.settings)
    method, url = p.method, p.url
    headers = run_headers(ctx, dict(p.headers))
    content = _request_body(p, headers)
    for hop in range(MAX_REDIRECTS + 1):
        response = await _send(ctx, policy, method, url, headers, content)
        try:
            location = response.headers.get("location")
            explicit = p.expect_status is not None and p.accepts(response.status_code)
            if response.status_code in _REDIRECTS and location and not explicit:
                if hop == MAX_REDIRECTS:
                    raise StepFailed(f"more than {MAX_REDIRECTS} redirects")
                method, url, headers, content = _redirected(
                    ctx, response.status_code, urljoin(url, location), method, url, headers, content
                )
                continue
            raw = await _read(response) if method != "HEAD" else b""
        except httpx.TimeoutException:
            raise StepFailed(f"timed out after {ctx.timeout:g}s") from None
        except httpx.HTTPError as exc:
            raise StepFailed(f"{type(exc).__name__}: {exc}") from None
        finally:
            await response.aclose()
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


def _request_body(p: HttpRequestParams, headers: dict[str, str]) -> bytes | None:
    """The step's body (``json`` or ``body``); JSON sets a Content-Type the step did not."""
    if p.json is not msgspec.UNSET:
        if not any(k.lower() == "content-type" for k in headers):
            headers["Content-Type"] = "application/json"
        return json.dumps(p.json).encode()
    if p.body is not None:
        return p.body.encode()
    return None


async def _send(
    ctx: StepContext,
    policy: EgressPolicy,
    method: str,
    url: str,
    headers: dict[str, str],
    content: bytes | None,
) -> httpx.Response:
    """One hop, past the egress check, its response streamed; a failure fails the step."""
    assert ctx.http is not None
    try:
        url = policy.check_url(url)
        request = ctx.http.build_request(
            method,
            url,
            headers=_signed(ctx, headers, content),
            content=content,
            timeout=ctx.remaining(),
        )
        return await ctx.http.send(request, stream=True)
    except EgressRefused as exc:
        raise StepFailed(str(exc)) from None
    except httpx.TimeoutException:
        raise StepFailed(f"timed out after {ctx.timeout:g}s") from None
    except httpx.HTTPError as exc:
        raise StepFailed(f"{type(exc).__name__}: {exc}") from None


def _redirected(
    ctx: StepContext,
    status: int,
    target: str,
    method: str,
    url: str,
    headers: dict[str, str],
    content: bytes | None,
) -> tuple[str, str, dict[str, str], bytes | None]:
    """(method, url, headers, body) of the hop a redirect asks for: 303 (and 301/302 after a
    POST) turns into a GET without a body; another origin gets none of the step's headers and
    never its body."""
    to_get = status == 303 or (status in (301, 302) and method == "POST")
    if not _same_origin(url, target):
        if content is not None and not to_get:
            raise StepFailed(
                f"refused: a {status} redirect to another origin "
                f"({mask_url(target)}) would send the {method} body there"
            )
        headers = run_headers(ctx, {})
    if to_get:
        method = "GET" if method != "HEAD" else method
        content = None
        headers = {
            k: v for k, v in headers.items() if k.lower() not in ("content-type", "content-length")
        }
    return method, target, headers, content


# -- the small ones --------------------------------------------------------------------------


@action("log")
def log(p: LogParams, ctx: StepContext) -> str:
    message = ctx.mask.text(p.message)
    logger.info("step.log", extra={"task_id": ctx.task.id, "run_id": ctx.run.id, "text": message})
    return message


@action("sleep")
async def sleep(p: SleepParams, ctx: StepContext) -> dict[str, Any]:
    """Sleeps on the loop: the step's timeout (or the end of the attempt) cancels it at once."""
    await asyncio.sleep(p.seconds)
    return {"seconds": p.seconds}


@action("event.emit")
async def event_emit(p: EventEmitParams, ctx: StepContext) -> Any:
    if ctx.emit is None:
        raise StepFailed("event.emit is not available in this process")
    # the event is stored on the runs it starts: a secret value never travels in it
    return await ctx.emit(ctx.mask.text(p.name), ctx.mask(p.data))


@action("fail")
def fail(p: FailParams, ctx: StepContext) -> None:
    raise StepFailed(p.message)
