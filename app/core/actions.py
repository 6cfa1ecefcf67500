"""The params of each built-in pipeline action, as msgspec structs.

``ACTION_PARAMS`` is the registry the API validates payloads against; ``workers/actions.py``
registers one function per name here (a test checks the two sets are equal). Adding an action is
one struct below plus one function there.

Each struct also carries an ``example`` of its params and, in ``schema_extra``, what its JSON
Schema should add that its fields alone cannot say; both only document (the API's OpenAPI
schema), they validate nothing.

Strings in params may hold ``{{ ... }}`` templates (``app/core/templating.py``): a check that
only makes sense on a final value (a URL's scheme) is skipped while the string holds a template,
and the worker validates again after rendering.
"""

import re
from typing import Annotated, Any, ClassVar
from urllib.parse import urlsplit

import msgspec

from app.core.errors import PipelineError
from app.core.templating import TEMPLATE

HTTP_METHODS = frozenset({"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"})
#: the methods, any case (``post`` is POST), as a JSON Schema pattern
_METHOD_PATTERN = (
    "^("
    + "|".join("".join(f"[{c}{c.lower()}]" for c in method) for method in sorted(HTTP_METHODS))
    + ")$"
)
_HTTP_STATUS = {"minimum": 100, "maximum": 599}

#: headers that frame or route a request: the client sets them, a step may not
FORBIDDEN_HEADERS = frozenset(
    {
        "host",
        "content-length",
        "transfer-encoding",
        "connection",
        "keep-alive",
        "upgrade",
        "te",
        "trailer",
        "expect",
        "http2-settings",
    }
)
#: any header starting with this is refused too (Proxy-Authorization, Proxy-Connection, ...)
FORBIDDEN_HEADER_PREFIX = "proxy-"
#: a header name: an RFC 9110 token
_HEADER_NAME = re.compile(r"^[!#$%&'*+.^_`|~0-9A-Za-z-]+$")
#: what a header value may not hold (it would end the header's line)
_LINE_BREAK = "[\\r\\n\\u0000]"


def _ci(word: str) -> str:
    """A case-insensitive JSON Schema pattern for ``word`` (JSON Schema has no flags)."""
    return "".join(f"[{c.upper()}{c.lower()}]" if c.isalpha() else c for c in word)


#: the names refused, as a JSON Schema pattern (a line break anywhere is refused too)
_FORBIDDEN_PATTERN = (
    "^(("
    + "|".join(_ci(h) for h in sorted(FORBIDDEN_HEADERS))
    + ")$|"
    + _ci(FORBIDDEN_HEADER_PREFIX)
    + ")|"
    + _LINE_BREAK
)
#: how ``headers`` is documented: token names, none of the forbidden ones, one-line values
_HEADER_NAMES_SCHEMA = {
    "propertyNames": {"pattern": _HEADER_NAME.pattern, "not": {"pattern": _FORBIDDEN_PATTERN}},
}
HeaderValue = Annotated[str, msgspec.Meta(extra_json_schema={"not": {"pattern": _LINE_BREAK}})]


def check_headers(headers: dict[str, str]) -> None:
    """Refuse a header a step may not set, naming it: a framing or routing header, a name that
    is not a token, a value that would break the request's lines."""
    for name, value in headers.items():
        lowered = name.lower()
        if not _HEADER_NAME.fullmatch(name):
            raise PipelineError(f"headers.{name}", "not a valid header name")
        if lowered in FORBIDDEN_HEADERS or lowered.startswith(FORBIDDEN_HEADER_PREFIX):
            raise PipelineError(
                f"headers.{name}",
                "frames or routes the request: the client sets it, a step may not",
            )
        if re.search(_LINE_BREAK, value):
            raise PipelineError(f"headers.{name}", "a value may not hold CR, LF or NUL")


class ActionParams(msgspec.Struct, kw_only=True, forbid_unknown_fields=True):
    """Base of every params struct: unknown params are an error (a typo must not pass)."""

    example: ClassVar[dict[str, Any]] = {}
    schema_extra: ClassVar[dict[str, Any]] = {}

    def check_timeout(self, timeout_seconds: float) -> None:
        """Refuse params that cannot finish within the step's timeout (override if it matters)."""


class HttpRequestParams(ActionParams, kw_only=True, forbid_unknown_fields=True):
    """An HTTP call; its output is status, headers and body (JSON when it parses)."""

    example: ClassVar[dict[str, Any]] = {
        "method": "POST",
        "url": "https://hooks.example.com/report",
        "headers": {"X-Report": "nightly"},
        "json": {"run": "{{ run.id }}"},
        "expect_status": [200, 201],
    }
    schema_extra: ClassVar[dict[str, Any]] = {
        "not": {"required": ["json", "body"], "properties": {"body": {"type": "string"}}},
    }

    method: Annotated[
        str,
        msgspec.Meta(description="any case", extra_json_schema={"pattern": _METHOD_PATTERN}),
    ] = "GET"
    url: Annotated[
        str,
        msgspec.Meta(
            min_length=1,
            max_length=8192,
            description="an absolute http:// or https:// URL (checked after rendering when "
            "it holds a template)",
            extra_json_schema={"format": "http-url"},
        ),
    ]
    headers: Annotated[
        dict[str, HeaderValue],
        msgspec.Meta(
            description="sent as given, after Chime's own; framing and routing headers (Host, "
            "Content-Length, Transfer-Encoding, Connection, Upgrade, TE, Trailer, Proxy-*, ...) "
            "are refused",
            extra_json_schema=_HEADER_NAMES_SCHEMA,
        ),
    ] = {}
    json: (
        Annotated[Any, msgspec.Meta(description="a JSON body; not with body")] | msgspec.UnsetType
    ) = msgspec.UNSET
    body: Annotated[str, msgspec.Meta(description="a text body; not with json")] | None = None
    #: accepted status codes; None: any 2xx
    expect_status: (
        Annotated[int, msgspec.Meta(extra_json_schema=_HTTP_STATUS)]
        | list[Annotated[int, msgspec.Meta(extra_json_schema=_HTTP_STATUS)]]
        | None
    ) = None

    def __post_init__(self) -> None:
        self.method = self.method.upper()
        if self.method not in HTTP_METHODS:
            raise PipelineError("method", f"must be one of {', '.join(sorted(HTTP_METHODS))}")
        if not TEMPLATE.search(self.url):
            check_url(self.url)
        check_headers(self.headers)
        if self.json is not msgspec.UNSET and self.body is not None:
            raise PipelineError("body", "give json or body, not both")
        codes = self.expect_status
        for code in [codes] if isinstance(codes, int) else codes or []:
            if not 100 <= code <= 599:
                raise PipelineError("expect_status", f"{code} is not an HTTP status (100..599)")

    def accepts(self, status: int) -> bool:
        codes = self.expect_status
        if codes is None:
            return 200 <= status <= 299
        return status in ([codes] if isinstance(codes, int) else codes)


def check_url(url: str) -> None:
    """An absolute http(s) URL with a host, or :class:`PipelineError` on ``url``."""
    try:
        parts = urlsplit(url)
        parts.port  # noqa: B018 - raises ValueError on a bad port
    except ValueError as exc:
        raise PipelineError("url", f"not a valid URL: {exc}") from None
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise PipelineError("url", "must be an absolute http:// or https:// URL")


class LogParams(ActionParams, kw_only=True, forbid_unknown_fields=True):
    """Write a message to the run's step output."""

    example: ClassVar[dict[str, Any]] = {"message": "run {{ run.id }}, attempt {{ run.attempt }}"}

    message: Annotated[str, msgspec.Meta(max_length=65536)]


class SleepParams(ActionParams, kw_only=True, forbid_unknown_fields=True):
    """Wait; seconds must not exceed the step's timeout_seconds (default 30)."""

    example: ClassVar[dict[str, Any]] = {"seconds": 5}

    seconds: Annotated[float, msgspec.Meta(ge=0, extra_json_schema={"maximum": 3600})]

    def check_timeout(self, timeout_seconds: float) -> None:
        if self.seconds > timeout_seconds:
            raise PipelineError(
                "seconds", f"must not exceed the step's timeout_seconds ({timeout_seconds:g})"
            )


class EventEmitParams(ActionParams, kw_only=True, forbid_unknown_fields=True):
    """Emit an event of the task's agent, as POST /events does."""

    example: ClassVar[dict[str, Any]] = {
        "name": "report.sent",
        "data": {"task": "{{ task.id }}"},
    }

    name: Annotated[str, msgspec.Meta(min_length=1, max_length=200)]
    data: dict[str, Any] = {}


class FailParams(ActionParams, kw_only=True, forbid_unknown_fields=True):
    """Always fail (to test retries and alerts)."""

    example: ClassVar[dict[str, Any]] = {"message": "failed on purpose"}

    message: Annotated[str, msgspec.Meta(max_length=65536)] = "failed on purpose"


#: action name -> its params struct
ACTION_PARAMS: dict[str, type[ActionParams]] = {
    "http.request": HttpRequestParams,
    "log": LogParams,
    "sleep": SleepParams,
    "event.emit": EventEmitParams,
    "fail": FailParams,
}
