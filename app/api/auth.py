"""Bearer tokens to callers: the admin, a static agent token, or a minted one.

The :data:`AUTHENTICATE` middleware (declared by every controller but the health check) runs
before a handler's guards, body and dependencies, and leaves the :class:`Caller` on the
connection; :func:`provide_caller` hands it to handlers. It is a middleware rather than a guard
because Litestar copies the handler for every guard it calls, which costs more than the check.
Secrets from the settings are compared with ``hmac.compare_digest``; minted tokens are looked up
by their SHA-256, which leaks nothing about the token by timing.
"""

import hmac
from dataclasses import dataclass
from typing import Any

import anyio.to_thread
import redis
from litestar import Request
from litestar.connection import ASGIConnection
from litestar.enums import ScopeType
from litestar.exceptions import NotAuthorizedException
from litestar.handlers.base import BaseRouteHandler
from litestar.middleware import ASGIMiddleware
from litestar.types import ASGIApp, Receive, Scope, Send

from app.core.errors import Forbidden
from app.settings import Settings
from app.store.agents import agent_for_token
from app.store.keys import Keys

_STATE_KEY = "chime_caller"
_CHALLENGE = {"WWW-Authenticate": "Bearer"}


@dataclass(frozen=True)
class Caller:
    """Who is calling: ``agent_id`` None means the admin token (every agent's tasks)."""

    agent_id: str | None

    @property
    def is_admin(self) -> bool:
        return self.agent_id is None


def bearer_token(header: str | None) -> str | None:
    """The token of an ``Authorization: Bearer <token>`` header, else None."""
    if not header:
        return None
    scheme, _, token = header.strip().partition(" ")
    token = token.strip()
    if scheme.lower() != "bearer" or not token:
        return None
    return token


def static_caller(token: str, settings: Settings) -> Caller | None:
    """The admin or a ``CHIME_AGENT_TOKENS`` agent, checked without I/O."""
    given = token.encode()
    if settings.admin_token and hmac.compare_digest(given, settings.admin_token.encode()):
        return Caller(None)
    found: str | None = None
    for known, agent_id in settings.agent_tokens.items():
        # every entry is compared, so the time taken does not tell which one matched
        if hmac.compare_digest(given, known.encode()):
            found = agent_id
    return Caller(found) if found else None


def resolve_caller(
    token: str, settings: Settings, client: redis.Redis, keys: Keys
) -> Caller | None:
    """The caller a token belongs to, or None when the token is unknown or revoked."""
    caller = static_caller(token, settings)
    if caller is not None:
        return caller
    agent_id = agent_for_token(client, keys, token)
    return Caller(agent_id) if agent_id else None


def _authorization(scope: Scope) -> str | None:
    """The Authorization header, read from the scope (ASGI header names are lower case)."""
    for name, value in scope.get("headers", ()):
        if name == b"authorization":
            text: str = value.decode("latin-1")
            return text
    return None


async def authenticate(connection: ASGIConnection[Any, Any, Any, Any]) -> None:
    """A known bearer token, else 401 with ``WWW-Authenticate: Bearer``."""
    token = bearer_token(_authorization(connection.scope))
    if token is None:
        raise NotAuthorizedException(
            detail="missing bearer token: send Authorization: Bearer <token>", headers=_CHALLENGE
        )
    state = connection.app.state
    caller = static_caller(token, state.settings)
    if caller is None:
        # a minted token is one GET; run it off the event loop like every other Redis call
        caller = await anyio.to_thread.run_sync(
            resolve_caller, token, state.settings, state.redis, state.chime_keys
        )
    if caller is None:
        raise NotAuthorizedException(detail="unknown or revoked token", headers=_CHALLENGE)
    _scope_state(connection.scope)[_STATE_KEY] = caller


def _scope_state(scope: Scope) -> dict[str, Any]:
    """The connection's state as the scope holds it. ``connection.state`` wraps the same dict,
    but builds a ``State`` (and its lock) on every access."""
    state: dict[str, Any] | None = scope.get("state")
    if state is None:
        state = scope["state"] = {}
    return state


class Authenticate(ASGIMiddleware):
    """Middleware: :func:`authenticate` every HTTP request before its handler."""

    scopes = (ScopeType.HTTP,)

    async def handle(self, scope: Scope, receive: Receive, send: Send, next_app: ASGIApp) -> None:
        await authenticate(ASGIConnection(scope))
        await next_app(scope, receive, send)


#: what every authenticated controller declares as its ``middleware``
AUTHENTICATE = (Authenticate(),)


async def admin_only(connection: ASGIConnection[Any, Any, Any, Any], _: BaseRouteHandler) -> None:
    """Guard (after :data:`AUTHENTICATE`): only the admin token passes, agents get 403."""
    caller = _scope_state(connection.scope).get(_STATE_KEY)
    if not isinstance(caller, Caller) or not caller.is_admin:
        raise Forbidden("only the admin token may manage agents")


def provide_caller(request: Request[Any, Any, Any]) -> Caller:
    caller = _scope_state(request.scope).get(_STATE_KEY)
    if not isinstance(caller, Caller):
        raise NotAuthorizedException(detail="not authenticated", headers=_CHALLENGE)
    return caller
