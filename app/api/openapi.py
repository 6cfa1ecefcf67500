"""The OpenAPI document: what each operation takes and answers, from the structs that validate.

Every route handler states what it answers, in ``opt=answers(...)``: its success statuses with
their body struct, every error status it can answer, and the struct its body decodes into.
Litestar generates the paths and parameters; :func:`finish` then writes each operation's
``requestBody`` and ``responses`` from those statements, with schemas that msgspec generates
from the very structs that decode requests (so every ``Meta`` limit appears, and
``additionalProperties: false`` wherever unknown fields are refused). A task body is documented
as one variant per schedule kind, and a pipeline step as one variant per action (unions
discriminated on ``schedule_kind`` and ``action``), each with examples.
"""

import copy
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Annotated, Any, Union, cast

import msgspec
from litestar import Litestar, Request
from litestar._openapi.plugin import OpenAPIPlugin  # the one way to the cached document
from litestar.datastructures import MutableScopeHeaders
from litestar.routes import HTTPRoute
from litestar.types import Message, Scope
from msgspec import UNSET, Meta, UnsetType

from app.api.schemas import BadRequest, Conflict, Error, LimitReached
from app.core.actions import ACTION_PARAMS
from app.core.errors import ValidationError
from app.core.pipeline import DEFAULT_STEP_TIMEOUT, MAX_ON_FAILURE, MAX_STEP_TIMEOUT, MAX_STEPS
from app.core.status import ScheduleKind
from app.core.taskspec import EXAMPLES, SCHEDULE_EXPR, TaskSpec

_OPT_KEY = "chime_answers"
#: the component of ``POST /schedules/preview``'s body, documented like a task's schedule
PREVIEW = "SchedulePreview"
_PATH_PARAM = re.compile(r"\{(\w+):\w+\}")
_REF = "#/components/schemas/{name}"

#: every error status an operation may list, with its meaning and body
ERRORS: Mapping[int, tuple[str, type[msgspec.Struct]]] = {
    400: (
        "bad input (or a query parameter the operation does not take): `detail` and `extra` "
        "name each field at fault",
        BadRequest,
    ),
    401: ("no usable bearer token (missing, unknown or revoked)", Error),
    403: ("the token may not do this", Error),
    404: ("no such resource, or one that belongs to another agent", Error),
    409: (
        "the task's (or the run's) status forbids this change; `extra.status` is that status",
        Conflict,
    ),
    413: ("the body is over CHIME_MAX_BODY_BYTES", Error),
    429: (
        "a limit of the agent is reached: `detail` names it (`max_tasks`), `extra` gives "
        "`limit` and `value`",
        LimitReached,
    ),
    503: (
        "Redis is unreachable (retry later), or a setting the operation needs is not set "
        "(`detail` names it)",
        Error,
    ),
}
#: the errors of every operation: a query parameter it does not declare is a 400
EVERY = (400,)
#: the errors of any operation behind a bearer token
AUTHED = (*EVERY, 401, 503)
#: the errors of any operation that reads a JSON body
WITH_BODY = (400, 413)

_TEMPLATES = (
    "Strings in params may hold templates: {{ task.id }}, {{ run.id }}, {{ run.attempt }}, "
    "{{ run.scheduled_for }}, {{ event.name }}, {{ event.data.FIELD }}, "
    "{{ steps.NAME.output.FIELD }} (NAME an earlier step) and {{ secrets.NAME }} (a secret "
    "of the task's agent, which must exist; its value is masked as *** wherever it could "
    "surface); any other root is refused. Params nest at most 32 levels; a step's params, "
    "rendered, are at most 10 MiB."
)


@dataclass(frozen=True)
class Answers:
    """What one operation answers: ``ok`` maps each status answered with a body of its own
    (successes; the health check's 503) to that struct (None: no body), ``errors`` lists every
    error status (answered with the error body), ``body`` is the request body's struct."""

    ok: Mapping[int, Any]
    errors: tuple[int, ...]
    body: type[msgspec.Struct] | None = None
    headers: Mapping[int, Mapping[str, str]] = field(default_factory=dict)


def answers(
    ok: Mapping[int, Any],
    *,
    errors: Iterable[int],
    body: type[msgspec.Struct] | None = None,
    headers: Mapping[int, Mapping[str, str]] | None = None,
) -> dict[str, Any]:
    """The ``opt`` of a route handler that states what it answers."""
    unknown = set(errors) - set(ERRORS)
    if unknown:
        raise ValueError(f"no description for error statuses {sorted(unknown)}")
    return {
        _OPT_KEY: Answers(
            ok=dict(ok), errors=tuple(sorted(set(errors))), body=body, headers=headers or {}
        )
    }


def finish(app: Litestar) -> dict[str, Any]:
    """Complete the app's OpenAPI document in place (it is cached and served as is), and hold
    the app to two of its promises Litestar does not keep by itself: an unknown query
    parameter is a 400, and an OPTIONS answer lists every method of its path."""
    doc = app.plugins.get(OpenAPIPlugin).provide_openapi_schema()
    operations = list(_operations(app))
    types: list[Any] = [Error, *(s for _, s in ERRORS.values()), *_pipeline_types()]
    for _, _, ans in operations:
        types += [t for t in ans.ok.values() if t is not None]
        if ans.body is not None:
            types.append(ans.body)
    _, components = msgspec.json.schema_components(types, ref_template=_REF)
    _document_pipeline(components)
    _document_tasks(components)
    _document_previews(components)
    schemas = doc.setdefault("components", {}).setdefault("schemas", {})
    schemas.update(components)
    for path, method, ans in operations:
        operation = doc["paths"][path][method]
        if ans.body is not None:
            operation["requestBody"] = _request_body(ans.body)
        operation["responses"] = _responses(ans)
    app.before_request = _refuse_unknown_query(doc)
    app.before_send.append(_allow_every_method(app))
    return doc


def _refuse_unknown_query(doc: dict[str, Any]) -> Any:
    known = {
        (method.upper(), path): frozenset(
            p["name"] for p in operation.get("parameters", []) if p.get("in") == "query"
        )
        for path, item in doc["paths"].items()
        for method, operation in item.items()
    }

    async def refuse_unknown_query(request: Request[Any, Any, Any]) -> None:
        """A query parameter the operation does not take is a 400, like an unknown field."""
        if not request.scope.get("query_string"):
            return  # no query: nothing to refuse, and no query parameters to parse
        taken = known.get((request.method, request.scope.get("path_template", "")))
        if taken is None:
            return
        for name in request.query_params:
            if name not in taken:
                raise ValidationError(name, "unknown query parameter")

    return refuse_unknown_query


def _allow_every_method(app: Litestar) -> Any:
    allowed = {
        _PATH_PARAM.sub(r"{\1}", route.path): ", ".join(sorted(route.methods))
        for route in app.routes
        if isinstance(route, HTTPRoute)
    }

    async def allow_every_method(message: Message, scope: Scope) -> None:
        """Litestar's OPTIONS answer lists only the methods known when the route was first
        built (POST /tasks but not GET /tasks); list them all."""
        if (
            message["type"] == "http.response.start"
            and message["status"] == 204
            and scope.get("method") == "OPTIONS"
        ):
            methods = allowed.get(scope.get("path_template", ""))
            if methods is not None:
                MutableScopeHeaders(message)["Allow"] = methods

    return allow_every_method


def answers_of(app: Litestar) -> dict[tuple[str, str], Answers]:
    """(METHOD, path) -> what it answers, for every documented operation."""
    return {(method.upper(), path): ans for path, method, ans in _operations(app)}


def _operations(app: Litestar) -> Iterable[tuple[str, str, Answers]]:
    for route in app.routes:
        for handler in getattr(route, "route_handlers", ()):
            if not handler.resolve_include_in_schema():
                continue
            ans = handler.opt.get(_OPT_KEY)
            if not isinstance(ans, Answers):
                raise TypeError(f"{route.path}: state what it answers with opt=answers(...)")
            path = _PATH_PARAM.sub(r"{\1}", route.path)
            for method in handler.http_methods:
                yield path, method.lower(), ans


def _ref(name: str) -> dict[str, str]:
    return {"$ref": _REF.format(name=name)}


def _request_body(body: type[msgspec.Struct]) -> dict[str, Any]:
    media: dict[str, Any] = {"schema": _ref(body.__name__)}
    if body is TaskSpec:
        media["schema"] = _ref("TaskCreate")
        media["examples"] = {
            kind.value: {"summary": f"a {kind.value} task", "value": example}
            for kind, example in EXAMPLES.items()
        }
    return {"required": True, "content": {"application/json": media}}


def _responses(ans: Answers) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for status, struct in sorted(ans.ok.items()):
        entry: dict[str, Any] = {"description": _SUCCESS.get(status, "done")}
        if struct is not None:
            entry["content"] = {"application/json": {"schema": _ref(struct.__name__)}}
        if status in ans.headers:
            entry["headers"] = {
                name: {"description": text, "required": True, "schema": {"type": "string"}}
                for name, text in ans.headers[status].items()
            }
        out[str(status)] = entry
    for status in ans.errors:
        text, struct = ERRORS[status]
        entry = {
            "description": text,
            "content": {"application/json": {"schema": _ref(struct.__name__)}},
        }
        if status == 401:
            entry["headers"] = {
                "WWW-Authenticate": {
                    "description": "Bearer",
                    "required": True,
                    "schema": {"type": "string", "enum": ["Bearer"]},
                }
            }
        out[str(status)] = entry
    return out


_SUCCESS = {
    200: "done",
    201: "created",
    202: "accepted: runs were created",
    204: "done; no body",
    503: "Redis does not answer",
}


# -- pipelines ------------------------------------------------------------------------------

StepName = Annotated[
    str,
    Meta(
        pattern=r"^[A-Za-z0-9_-]{1,64}$",
        description="unique within the pipeline; later steps read its output by this name",
    ),
]
StepTimeout = Annotated[
    float,
    Meta(
        gt=0,
        le=MAX_STEP_TIMEOUT,
        description="seconds the step may take; a sleep step's seconds must fit in it",
    ),
]


def _camel(action: str) -> str:
    return "".join(part.capitalize() for part in re.split(r"[._]", action))


def _step_types() -> list[type[msgspec.Struct]]:
    """One struct per action: a step whose ``params`` is that action's params struct."""
    steps = []
    for action, params in ACTION_PARAMS.items():
        info = cast(msgspec.inspect.StructType, msgspec.inspect.type_info(params))
        needs_params = any(f.required for f in info.fields)
        params_field: tuple[Any, ...] = (
            ("params", params) if needs_params else ("params", params, msgspec.field(default={}))
        )
        steps.append(
            msgspec.defstruct(
                f"{_camel(action)}Step",
                [
                    ("name", StepName),
                    params_field,
                    ("timeout_seconds", StepTimeout, DEFAULT_STEP_TIMEOUT),
                ],
                tag_field="action",
                tag=action,
                kw_only=True,
                forbid_unknown_fields=True,
            )
        )
    return steps


def _pipeline_types() -> list[Any]:
    steps = _step_types()
    step = Union[tuple(steps)]  # type: ignore[valid-type]  # noqa: UP007
    pipeline = msgspec.defstruct(
        "Pipeline",
        [
            (
                "steps",
                Annotated[
                    list[step],  # type: ignore[valid-type]
                    Meta(
                        min_length=1,
                        max_length=MAX_STEPS,
                        description="run in order; the first failing step fails the attempt",
                    ),
                ],
            ),
            (
                "on_failure",
                Annotated[
                    list[step],  # type: ignore[valid-type]
                    Meta(
                        min_length=1,
                        max_length=MAX_ON_FAILURE,
                        description=(
                            "run once after the last attempt of a run failed, in order; they "
                            "may also read {{ run.error }} and {{ run.failed_step }}; their "
                            "records go in the run's on_failure_steps"
                        ),
                    ),
                ]
                | UnsetType,
                UNSET,
            ),
        ],
        kw_only=True,
        forbid_unknown_fields=True,
    )
    return [pipeline, *steps]


def _document_pipeline(components: dict[str, Any]) -> None:
    """Descriptions and examples of each action's params and step."""
    components["Pipeline"]["description"] = (
        "The steps a run executes. Step names are unique within the pipeline. " + _TEMPLATES
    )
    for action, params in ACTION_PARAMS.items():
        schema = components[params.__name__]
        schema.update(params.schema_extra)
        schema["description"] = (params.__doc__ or "").strip() + " " + _TEMPLATES
        schema["examples"] = [params.example]
        step = components[f"{_camel(action)}Step"]
        step["examples"] = [{"name": "step1", "action": action, "params": params.example}]


# -- tasks ----------------------------------------------------------------------------------


def _document_tasks(components: dict[str, Any]) -> None:
    """``TaskCreate``: one variant per schedule kind, each saying what its schedule_expr is;
    the payload of every task schema is the pipeline."""
    base = components.pop(TaskSpec.__name__)
    base["properties"]["payload"] = _ref("Pipeline")
    components["TaskCreate"] = _by_schedule_kind(
        components, base, "TaskCreate", "Task", "A new task", lambda kind: [EXAMPLES[kind]]
    )
    for name in ("TaskChanges", "TaskOut"):
        if name in components:
            components[name]["properties"]["payload"] = _ref("Pipeline")
    out = components.get("TaskOut")
    if out is not None:
        # a response always holds every field, defaults filled in
        out["required"] = sorted(out["properties"])


def _by_schedule_kind(
    components: dict[str, Any],
    base: dict[str, Any],
    title: str,
    suffix: str,
    what: str,
    examples: Any,
) -> dict[str, Any]:
    """``base`` as one variant per schedule kind (``CronTask``...), each saying what its
    schedule_expr is; returns the union, discriminated on schedule_kind."""
    mapping = {}
    for kind in ScheduleKind:
        variant = copy.deepcopy(base)
        name = f"{kind.value.capitalize()}{suffix}"
        variant["title"] = name
        variant["description"] = f"{what} of schedule_kind {kind.value}."
        props = variant["properties"]
        props["schedule_kind"] = {"type": "string", "enum": [kind.value]}
        expr = msgspec.json.schema(Annotated[str, SCHEDULE_EXPR[kind]])
        if kind is ScheduleKind.EVENT:
            props["schedule_expr"] = {"anyOf": [expr, {"type": "null"}], "default": None}
        else:
            props["schedule_expr"] = expr
            variant["required"] = sorted({*variant["required"], "schedule_expr"})
        variant["examples"] = examples(kind)
        components[name] = variant
        mapping[kind.value] = _REF.format(name=name)
    return {
        "title": title,
        "description": f"{what}; schedule_kind says which variant applies.",
        "oneOf": [{"$ref": ref} for ref in mapping.values()],
        "discriminator": {"propertyName": "schedule_kind", "mapping": mapping},
    }


def _document_previews(components: dict[str, Any]) -> None:
    """``SchedulePreview``: one variant per schedule kind, as a task's schedule fields."""
    base = components.get(PREVIEW)
    if base is None:
        return
    fields = ("schedule_kind", "schedule_expr", "timezone")

    def examples(kind: ScheduleKind) -> list[dict[str, Any]]:
        return [{k: v for k, v in EXAMPLES[kind].items() if k in fields} | {"count": 5}]

    components[PREVIEW] = _by_schedule_kind(
        components, base, PREVIEW, "Preview", "A schedule to preview", examples
    )
