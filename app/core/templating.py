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
========================================  ======================================================

A string that is exactly one template yields the raw value (a number stays a number, an object
an object); templates inside a longer string are replaced by their text (JSON for objects,
lists, booleans and null). A path that has no value at run time is an error, not an empty string,
so a pipeline never sends a request built from a silently missing field.
"""

import json
import re
from collections.abc import Callable, Iterator, Mapping
from typing import Any

from app.core.errors import PipelineError

TEMPLATE = re.compile(r"\{\{\s*([^{}]*?)\s*\}\}")
_SEGMENT = re.compile(r"^[A-Za-z0-9_-]+$")

#: Fixed leaves of the roots with no open-ended part.
_FIXED = {
    "task": frozenset({"id"}),
    "run": frozenset({"id", "attempt", "scheduled_for"}),
}


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


def check_path(source: str, segments: list[str], earlier_steps: frozenset[str]) -> None:
    """Raise :class:`TemplateError` unless ``segments`` is a path a run can resolve."""
    if not segments or not all(_SEGMENT.match(s) for s in segments):
        raise TemplateError(source, "malformed template: expected a dotted path such as run.id")
    root, rest = segments[0], segments[1:]
    if root in _FIXED:
        if len(rest) != 1 or rest[0] not in _FIXED[root]:
            names = ", ".join(f"{root}.{f}" for f in sorted(_FIXED[root]))
            raise TemplateError(source, f"unknown field; {root} has {names}")
    elif root == "event":
        if not rest or rest[0] not in ("name", "data") or (rest[0] == "name" and len(rest) > 1):
            raise TemplateError(source, "unknown field; event has event.name, event.data.FIELD")
    elif root == "steps":
        if len(rest) < 2 or rest[1] != "output":
            raise TemplateError(source, "expected steps.NAME.output or steps.NAME.output.FIELD")
        if rest[0] not in earlier_steps:
            raise TemplateError(source, f"no earlier step named {rest[0]!r}")
    else:
        raise TemplateError(source, f"unknown root {root!r}; use task, run, event or steps")


def check_value(value: Any, earlier_steps: frozenset[str], path: str) -> None:
    """Check every template in the strings of ``value``; errors carry the dotted ``path``."""
    for where, text in _strings(value, path):
        for source, segments in templates_in(text):
            try:
                check_path(source, segments, earlier_steps)
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


def render(value: Any, context: Mapping[str, Any]) -> Any:
    """``value`` with every template in its strings replaced (recursively through dicts/lists)."""
    return _walk(value, lambda s: render_string(s, context))


def render_string(text: str, context: Mapping[str, Any]) -> Any:
    """One string rendered; exactly one template gives the raw value."""
    whole = TEMPLATE.fullmatch(text)
    if whole is not None:
        expr = whole.group(1)
        return resolve(context, whole.group(0), expr.split(".") if expr else [])

    def repl(m: re.Match[str]) -> str:
        expr = m.group(1)
        return _text(resolve(context, m.group(0), expr.split(".") if expr else []))

    return TEMPLATE.sub(repl, text)


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
