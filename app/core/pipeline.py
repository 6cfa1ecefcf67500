"""The pipeline model of a task's ``payload`` and its validation (pure: no I/O).

``parse_pipeline`` is what ``POST``/``PUT /tasks`` call, so a malformed pipeline is a 400 at
create time, never a failure at run time. Limits:

- 1..50 steps; a step ``name`` is 1..64 letters, digits, ``_`` or ``-`` (templates address it as
  ``steps.NAME.output``) and unique within the pipeline;
- ``action`` is a key of ``ACTION_PARAMS``; ``params`` (default ``{}``) must fit its struct;
- ``timeout_seconds`` defaults to 30 and must be in (0, 3600];
- ``params`` nest at most 32 levels (the params object is level 1);
- templates name a known root, and ``steps.NAME`` an EARLIER step;
- ``on_failure`` (optional): 1..10 steps run once after the last attempt of a run failed; their
  names are unique with the steps', their templates may also read ``run.error`` and
  ``run.failed_step``, and ``steps.NAME`` an earlier ``on_failure`` step.

Which secrets a pipeline reads (``{{ secrets.NAME }}``) is :func:`secret_names`; that they exist
is the store's to check, since it depends on the agent.
"""

import re
from typing import Any

import msgspec

from app.core import wholenumbers
from app.core.actions import ACTION_PARAMS, ActionParams
from app.core.errors import PipelineError
from app.core.templating import ON_FAILURE_RUN_FIELDS, check_value, secret_refs

MAX_STEPS = 50
MAX_ON_FAILURE = 10
#: how deep params may nest (objects and lists), the params object being level 1
MAX_PARAMS_DEPTH = 32
DEFAULT_STEP_TIMEOUT = 30.0
MAX_STEP_TIMEOUT = 3600.0
STEP_NAME = re.compile(r"^[A-Za-z0-9_-]{1,64}$")

_STEP_FIELDS = frozenset({"name", "action", "params", "timeout_seconds"})
_AT = re.compile(r"^(.*) - at `\$(.*)`$")
_FIELD_IN_MESSAGE = re.compile(r"^Object (?:missing required|contains unknown) field `(.*)`$")


class Step(msgspec.Struct, kw_only=True):
    name: str
    action: str
    params: dict[str, Any] = {}
    timeout_seconds: float = DEFAULT_STEP_TIMEOUT


class Pipeline(msgspec.Struct, kw_only=True, omit_defaults=True):
    steps: list[Step]
    #: run once after the last attempt of a run failed (left out of the payload when none)
    on_failure: list[Step] = []

    @property
    def max_seconds(self) -> float:
        """The longest the steps may take together (every step at its timeout)."""
        return sum(s.timeout_seconds for s in self.steps)


def parse_pipeline(payload: object) -> Pipeline:
    """Validate a task's ``payload``; raise :class:`PipelineError` naming the first bad field."""
    if not isinstance(payload, dict):
        raise PipelineError("payload", "must be an object with a steps list")
    for key in payload:
        if key not in ("steps", "on_failure"):
            raise PipelineError(
                f"payload.{key}", "unknown field (a pipeline has steps and on_failure)"
            )
    steps = payload.get("steps")
    if not isinstance(steps, list):
        raise PipelineError("payload.steps", "required: a list of 1..50 steps")
    if not 1 <= len(steps) <= MAX_STEPS:
        raise PipelineError("payload.steps", f"must hold 1..{MAX_STEPS} steps, got {len(steps)}")
    parsed: list[Step] = []
    seen: set[str] = set()
    for i, raw in enumerate(steps):
        step = _parse_step(raw, f"payload.steps[{i}]", frozenset(seen))
        seen.add(step.name)
        parsed.append(step)
    if "on_failure" not in payload:
        return Pipeline(steps=parsed)
    return Pipeline(steps=parsed, on_failure=_parse_on_failure(payload["on_failure"], seen))


def _parse_on_failure(steps: object, names: set[str]) -> list[Step]:
    if not isinstance(steps, list) or not 1 <= len(steps) <= MAX_ON_FAILURE:
        raise PipelineError("payload.on_failure", f"must be a list of 1..{MAX_ON_FAILURE} steps")
    parsed: list[Step] = []
    earlier: set[str] = set()
    for i, raw in enumerate(steps):
        path = f"payload.on_failure[{i}]"
        if isinstance(raw, dict) and isinstance(raw.get("name"), str) and raw["name"] in names:
            raise PipelineError(f"{path}.name", f"duplicate step name {raw['name']!r}")
        step = _parse_step(raw, path, frozenset(earlier), ON_FAILURE_RUN_FIELDS)
        earlier.add(step.name)
        parsed.append(step)
    return parsed


def pipeline_payload(pipeline: Pipeline) -> dict[str, Any]:
    """The normalized payload to store (defaults such as ``timeout_seconds`` filled in)."""
    out: dict[str, Any] = msgspec.to_builtins(pipeline)
    return out


def load_pipeline(payload: dict[str, Any]) -> Pipeline:
    """Rebuild a stored (already validated) payload without checking it again."""
    return msgspec.convert(payload, Pipeline)


def parse_params(action: str, params: dict[str, Any], path: str) -> ActionParams:
    """``params`` as the action's struct; errors name ``path.FIELD``."""
    cls = ACTION_PARAMS[action]
    try:
        return wholenumbers.convert(params, cls)
    except PipelineError as exc:
        raise PipelineError(f"{path}.{exc.field}", exc.reason) from None
    except msgspec.ValidationError as exc:
        field, reason = _locate(str(exc))
        raise PipelineError(path + field, reason) from None


def _parse_step(
    raw: object,
    path: str,
    earlier: frozenset[str],
    more_run_fields: frozenset[str] = frozenset(),
) -> Step:
    if not isinstance(raw, dict):
        raise PipelineError(path, "must be an object with name, action and params")
    for key in raw:
        if key not in _STEP_FIELDS:
            raise PipelineError(f"{path}.{key}", "unknown field")
    name = raw.get("name")
    if not isinstance(name, str) or not STEP_NAME.match(name):
        raise PipelineError(f"{path}.name", "required: 1..64 letters, digits, _ or -")
    if name in earlier:
        raise PipelineError(f"{path}.name", f"duplicate step name {name!r}")
    action = raw.get("action")
    if not isinstance(action, str) or action not in ACTION_PARAMS:
        known = ", ".join(sorted(ACTION_PARAMS))
        raise PipelineError(f"{path}.action", f"unknown action {action!r}; known: {known}")
    timeout = raw.get("timeout_seconds", DEFAULT_STEP_TIMEOUT)
    if isinstance(timeout, bool) or not isinstance(timeout, int | float):
        raise PipelineError(f"{path}.timeout_seconds", "must be a number")
    if not 0 < timeout <= MAX_STEP_TIMEOUT:
        raise PipelineError(
            f"{path}.timeout_seconds", f"must be > 0 and at most {MAX_STEP_TIMEOUT:g}"
        )
    params = raw.get("params", {})
    if not isinstance(params, dict):
        raise PipelineError(f"{path}.params", "must be an object")
    check_depth(params, f"{path}.params")
    check_value(params, earlier, f"{path}.params", more_run_fields)
    typed = parse_params(action, params, f"{path}.params")
    try:
        typed.check_timeout(float(timeout))
    except PipelineError as exc:
        raise PipelineError(f"{path}.params.{exc.field}", exc.reason) from None
    return Step(name=name, action=action, params=params, timeout_seconds=float(timeout))


def check_depth(value: Any, path: str, limit: int = MAX_PARAMS_DEPTH) -> None:
    """Refuse objects and lists nested deeper than ``limit`` levels, naming the first container
    past it; iterative, so no depth of input can exhaust the stack."""
    todo: list[tuple[Any, str, int]] = [(value, path, 1)]
    while todo:
        node, where, level = todo.pop()
        if level > limit:
            raise PipelineError(where, f"nested deeper than {limit} levels")
        if isinstance(node, dict):
            todo += [(v, f"{where}.{k}", level + 1) for k, v in node.items() if _container(v)]
        elif isinstance(node, list):
            todo += [(v, f"{where}[{i}]", level + 1) for i, v in enumerate(node) if _container(v)]


def _container(value: Any) -> bool:
    return isinstance(value, dict | list)


def secret_names(payload: dict[str, Any]) -> list[tuple[str, str]]:
    """``(field, NAME)`` of every ``{{ secrets.NAME }}`` in a stored or parsed payload's params,
    in order; ``field`` is the dotted path a 400 names."""
    refs: list[tuple[str, str]] = []
    for part in ("steps", "on_failure"):
        for i, step in enumerate(payload.get(part) or []):
            if isinstance(step, dict):
                refs += secret_refs(step.get("params") or {}, f"payload.{part}[{i}].params")
    return refs


def _locate(message: str) -> tuple[str, str]:
    """msgspec's message as (``.field`` suffix, reason)."""
    m = _AT.match(message)
    if m:
        return m.group(2), m.group(1)
    m = _FIELD_IN_MESSAGE.match(message)
    if m:
        return f".{m.group(1)}", message
    return "", message
