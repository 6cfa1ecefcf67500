"""Domain errors to HTTP, in one place, as Litestar's error body
``{"status_code", "detail", "extra"}``.

Every 400 names the field at fault twice: in ``detail`` (``"priority: Expected `int` <= 9"``)
and in ``extra`` (``[{"key": "priority", "message": ..., "source": "body"}]``), the shape
Litestar's own validation uses, so clients read one format whichever layer refused.
"""

import logging
from typing import Any

import redis
from litestar import Request, Response
from litestar.exceptions import (
    ClientException,
    HTTPException,
    NotFoundException,
    PermissionDeniedException,
    ServiceUnavailableException,
    ValidationException,
)
from litestar.exceptions.responses import create_exception_response
from litestar.status_codes import (
    HTTP_400_BAD_REQUEST,
    HTTP_409_CONFLICT,
    HTTP_429_TOO_MANY_REQUESTS,
    HTTP_500_INTERNAL_SERVER_ERROR,
)
from litestar.types import ExceptionHandlersMap

from app.core.errors import Conflict, Forbidden, NotFound, ValidationError
from app.core.limits import TooManyTasks

log = logging.getLogger("chime.api")

#: handler parameter -> the HTTP header it reads, so a 400 names what the client sent
_HEADER_NAMES = {"idempotency_key": "Idempotency-Key"}


def _respond(request: Request[Any, Any, Any], exc: HTTPException) -> Response[Any]:
    return create_exception_response(request, exc)


def on_validation_error(request: Request[Any, Any, Any], exc: ValidationError) -> Response[Any]:
    source = "query" if exc.field in request.query_params else "body"
    return _respond(
        request,
        ValidationException(
            detail=f"{exc.field}: {exc.reason}",
            extra=[{"key": exc.field, "message": exc.reason, "source": source}],
        ),
    )


def on_litestar_validation(
    request: Request[Any, Any, Any], exc: ValidationException
) -> Response[Any]:
    """Litestar's own 400s (query and header parameters), with the field named in ``detail``
    too; a header is named as the client sent it."""
    extra = exc.extra if isinstance(exc.extra, list) else []
    problems: list[dict[str, Any]] = []
    for item in extra:
        if not isinstance(item, dict):
            continue
        item = dict(item)
        if item.get("source") == "header":
            item["key"] = _HEADER_NAMES.get(str(item.get("key")), item.get("key"))
        problems.append(item)
    if problems:
        detail = "; ".join(f"{p.get('key', 'body')}: {p.get('message', '')}" for p in problems)
    else:
        detail = exc.detail
    return _respond(request, ValidationException(detail=detail, extra=problems or exc.extra))


def on_bad_request(request: Request[Any, Any, Any], exc: HTTPException) -> Response[Any]:
    """Every 400 Litestar raises: its validation errors, and bodies it cannot parse (malformed
    JSON, a number out of range), which it reports without naming a field: they are ``body``."""
    if isinstance(exc, ValidationException):
        return on_litestar_validation(request, exc)
    if exc.extra:
        return _respond(request, exc)
    return _respond(
        request,
        ValidationException(
            detail=f"body: {exc.detail}",
            extra=[{"key": "body", "message": exc.detail, "source": "body"}],
        ),
    )


def on_recursion(request: Request[Any, Any, Any], exc: RecursionError) -> Response[Any]:
    """A body nested deeper than the JSON decoder goes is bad input, not a server fault."""
    if "deserializ" not in str(exc):
        log.exception("recursion error", exc_info=exc)
        return _respond(request, HTTPException(detail="Internal Server Error"))
    return _respond(
        request,
        ValidationException(
            detail="body: nested too deeply",
            extra=[{"key": "body", "message": "nested too deeply", "source": "body"}],
        ),
    )


def on_server_error(request: Request[Any, Any, Any], exc: Exception) -> Response[Any]:
    """A fault of ours: logged with its traceback (Litestar logs none outside debug mode, so a
    500 would leave no trace), answered with Litestar's bare 500 body."""
    log.error(
        "request.failed",
        exc_info=exc,
        extra={"method": request.method, "path": request.url.path},
    )
    if isinstance(exc, HTTPException):
        return _respond(request, exc)
    return _respond(request, HTTPException(detail="Internal Server Error"))


def on_not_found(request: Request[Any, Any, Any], exc: NotFound) -> Response[Any]:
    return _respond(request, NotFoundException(detail=str(exc)))


def on_conflict(request: Request[Any, Any, Any], exc: Conflict) -> Response[Any]:
    return _respond(
        request,
        ClientException(
            status_code=HTTP_409_CONFLICT, detail=str(exc), extra={"status": exc.status}
        ),
    )


def on_too_many_tasks(request: Request[Any, Any, Any], exc: TooManyTasks) -> Response[Any]:
    return _respond(
        request,
        ClientException(
            status_code=HTTP_429_TOO_MANY_REQUESTS,
            detail=str(exc),
            extra={"limit": "max_tasks", "value": exc.limit},
        ),
    )


def on_forbidden(request: Request[Any, Any, Any], exc: Forbidden) -> Response[Any]:
    return _respond(request, PermissionDeniedException(detail=str(exc)))


def on_redis_down(request: Request[Any, Any, Any], exc: redis.RedisError) -> Response[Any]:
    """Redis unreachable: a 503 the client may retry, not a 500."""
    log.warning("redis unavailable: %s", exc.__class__.__name__)
    return _respond(request, ServiceUnavailableException(detail="storage unavailable; retry"))


EXCEPTION_HANDLERS: ExceptionHandlersMap = {
    ValidationError: on_validation_error,
    HTTP_400_BAD_REQUEST: on_bad_request,
    HTTP_500_INTERNAL_SERVER_ERROR: on_server_error,
    RecursionError: on_recursion,
    NotFound: on_not_found,
    Conflict: on_conflict,
    Forbidden: on_forbidden,
    TooManyTasks: on_too_many_tasks,
    redis.ConnectionError: on_redis_down,
    redis.TimeoutError: on_redis_down,
}
