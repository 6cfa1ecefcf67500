"""Templates ``{{ ... }}`` in pipeline params: checked at create time, rendered at run time.

A template is ``{{ path }}`` with a dotted path under one of four roots:

========================================  ======================================================
path                                      value
========================================  ======================================================
``task.id``                               the task's id
``run.id``, ``run.attempt``               the run's id, its attempt number (1, 2, ...)
``run.scheduled_for``                     the occurrence time, RFC 3339 (null for run_now)
``event.name``, ``event.data[.F...]``     the triggering event (event runs only)
``steps.NAME.output[.F...]``              the output of an earlier step; ``F`` may be a list
                                          index (``steps.fetch.output.body.items.0.id``)
``secrets.NAME``                          the value of the agent's secret NAME (the worker
                                          masks it as ``***`` wherever it could surface)
========================================  ======================================================

A string that is exactly one template yields the raw value (a number stays a number, an object
an object); templates inside a longer string are replaced by their text (JSON for objects,
lists, booleans and null). A path that has no value at run time is an error, not an empty string,
so a pipeline never sends a request built from a silently missing field.

Rendering is bounded by the size of what it builds, counted while it builds it: every piece
(literal text, a template's text, a raw value's JSON) is charged against ``limit`` before it is
added, and rendering stops at the first piece that would go past. A template repeated many times
is looked up and turned into text once per render.
"""

import json
import re
from collections.abc import Callable, Iterator, Mapping
from typing import Any

import msgspec

from app.core.errors import PipelineError

TEMPLATE = re.compile(r"\{\{\s*([^{}]*?)\s*\}\}")
_SEGMENT = re.compile(r"^[A-Za-z0-9_-]+$")
#: a secret's name, as ``PUT /secrets/{name}`` takes it
SECRET_NAME = re.compile(r"^[A-Za-z0-9_]{1,64}$")
#: the largest rendered params of one step (characters of text plus the JSON of raw values):
#: as large as the largest response body a step reads, so an output can be passed on whole
RENDER_LIMIT = 10 * 1024 * 1024

#: Fixed leaves of the roots with no open-ended part.
_FIXED = {
    "task": frozenset({"id"}),
    "run": frozenset({"id", "attempt", "scheduled_for"}),
}
#: what ``payload.on_failure`` steps may read of the run besides: the error of its last attempt
#: and the name of the step that failed (null when none did)
ON_FAILURE_RUN_FIELDS = frozenset({"error", "failed_step"})


class TemplateError(Exception):
    """A template that names nothing (static) or has no value (run time)."""

    def __init__(self, template: str, reason: str) -> None:
        super().__init__(f"{template}: {reason}")
        self.template = template
        self.reason = reason


def templates_in(text: str) -> Iterator[tuple[str, list[str]]]:
    """Each template of ``text`` as (its source, its path segments)."""
    for m in TEMPLATE.finditer(text):
        expr = m.group(1)
        segments = expr.split(".") if expr else []
        yield m.group(0), segments


def check_path(
    source: str,
    segments: list[str],
    earlier_steps: frozenset[str],
    more_run_fields: frozenset[str] = frozenset(),
) -> None:
    """Raise :class:`TemplateError` unless ``segments`` is a path a run can resolve
    (``more_run_fields``: leaves of ``run`` the caller's steps may read besides)."""
    if not segments or not all(_SEGMENT.match(s) for s in segments):
        raise TemplateError(source, "malformed template: expected a dotted path such as run.id")
    root, rest = segments[0], segments[1:]
    if root in _FIXED:
        leaves = _FIXED[root] | more_run_fields if root == "run" else _FIXED[root]
        if len(rest) != 1 or rest[0] not in leaves:
            names = ", ".join(f"{root}.{f}" for f in sorted(leaves))
            raise TemplateError(source, f"unknown field; {root} has {names}")
    elif root == "event":
        if not rest or rest[0] not in ("name", "data") or (rest[0] == "name" and len(rest) > 1):
            raise TemplateError(source, "unknown field; event has event.name, event.data.FIELD")
    elif root == "steps":
        if len(rest) < 2 or rest[1] != "output":
            raise TemplateError(source, "expected steps.NAME.output or steps.NAME.output.FIELD")
        if rest[0] not in earlier_steps:
            raise TemplateError(source, f"no earlier step named {rest[0]!r}")
    elif root == "secrets":
        if len(rest) != 1 or not SECRET_NAME.match(rest[0]):
            raise TemplateError(source, "expected secrets.NAME, NAME 1..64 of A-Z a-z 0-9 _")
    else:
        raise TemplateError(
            source, f"unknown root {root!r}; use task, run, event, steps or secrets"
        )


def secret_refs(value: Any, path: str) -> list[tuple[str, str]]:
    """``(where, NAME)`` of every ``{{ secrets.NAME }}`` in the strings of ``value``."""
    return [
        (where, segments[1])
        for where, text in _strings(value, path)
        for _, segments in templates_in(text)
        if len(segments) == 2 and segments[0] == "secrets"
    ]


def check_value(
    value: Any,
    earlier_steps: frozenset[str],
    path: str,
    more_run_fields: frozenset[str] = frozenset(),
) -> None:
    """Check every template in the strings of ``value``; errors carry the dotted ``path``."""
    for where, text in _strings(value, path):
        for source, segments in templates_in(text):
            try:
                check_path(source, segments, earlier_steps, more_run_fields)
            except TemplateError as exc:
                raise PipelineError(where, str(exc)) from None


def _strings(value: Any, path: str) -> Iterator[tuple[str, str]]:
    if isinstance(value, str):
        yield path, value
    elif isinstance(value, Mapping):
        for k, v in value.items():
            yield from _strings(v, f"{path}.{k}")
    elif isinstance(value, list):
        for i, v in enumerate(value):
            yield from _strings(v, f"{path}[{i}]")


def resolve(context: Mapping[str, Any], source: str, segments: list[str]) -> Any:
    """The value at ``segments`` in ``context``; :class:`TemplateError` if it has none."""
    current: Any = context
    for i, seg in enumerate(segments):
        if isinstance(current, Mapping) and seg in current:
            current = current[seg]
        elif isinstance(current, list) and seg.isdigit() and int(seg) < len(current):
            current = current[int(seg)]
        else:
            where = ".".join(segments[:i]) or "the context"
            raise TemplateError(source, f"{where} has no {seg!r}")
    return current


def render(value: Any, context: Mapping[str, Any], limit: int = RENDER_LIMIT) -> Any:
    """``value`` with every template in its strings replaced (recursively through dicts/lists);
    :class:`TemplateError` as soon as the result would pass ``limit`` (see the module)."""
    renderer = _Renderer(context, limit)
    return _walk(value, renderer.string)


def render_string(text: str, context: Mapping[str, Any], limit: int = RENDER_LIMIT) -> Any:
    """One string rendered; exactly one template gives the raw value."""
    return _Renderer(context, limit).string(text)


class _Renderer:
    """One render: the budget left, and each template's value, size and text once looked up."""

    def __init__(self, context: Mapping[str, Any], limit: int) -> None:
        self.context = context
        self.limit = limit
        self.left = limit
        self.values: dict[str, Any] = {}
        self.sizes: dict[str, int] = {}
        self.texts: dict[str, str] = {}

    def charge(self, size: int, source: str) -> None:
        self.left -= size
        if self.left < 0:
            raise TemplateError(
                source, f"rendering stopped: the step's params would pass {self.limit} characters"
            )

    def value(self, source: str, expr: str) -> Any:
        if expr not in self.values:
            self.values[expr] = resolve(self.context, source, expr.split(".") if expr else [])
        return self.values[expr]

    def string(self, text: str) -> Any:
        whole = TEMPLATE.fullmatch(text)
        if whole is not None:
            expr = whole.group(1)
            raw = self.value(whole.group(0), expr)
            if expr not in self.sizes:
                self.sizes[expr] = _size(raw)
            self.charge(self.sizes[expr], whole.group(0))
            return raw
        pieces: list[str] = []
        last = 0
        for m in TEMPLATE.finditer(text):
            literal = text[last : m.start()]
            self.charge(len(literal), m.group(0))
            pieces.append(literal)
            expr = m.group(1)
            if expr not in self.texts:
                self.texts[expr] = _text(self.value(m.group(0), expr))
            piece = self.texts[expr]
            self.charge(len(piece), m.group(0))
            pieces.append(piece)
            last = m.end()
        tail = text[last:]
        self.charge(len(tail), text[:40])
        pieces.append(tail)
        return "".join(pieces)


def _size(value: Any) -> int:
    """What a raw value adds to the rendered params: its length as text or as JSON."""
    if isinstance(value, str):
        return len(value)
    if isinstance(value, Mapping | list):
        try:
            return len(msgspec.json.encode(value))
        except (TypeError, msgspec.EncodeError, OverflowError, RecursionError):
            return len(json.dumps(value, default=str))
    return len(str(value))


def _text(value: Any) -> str:
    if isinstance(value, str):
        return value
    return json.dumps(value, separators=(",", ":"), default=str)


def _walk(value: Any, on_string: Callable[[str], Any]) -> Any:
    if isinstance(value, str):
        return on_string(value)
    if isinstance(value, Mapping):
        return {k: _walk(v, on_string) for k, v in value.items()}
    if isinstance(value, list):
        return [_walk(v, on_string) for v in value]
    return value
