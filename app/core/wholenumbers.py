"""JSON numbers such as ``2.0`` read as the integers they are, nothing else loosened.

JSON has one number type and JSON Schema counts ``2.0`` as an integer, so a client generated from
our schema may send it; msgspec's strict mode refuses it for an ``int``. :func:`convert` converts
strictly and, only when that fails on a float where an int belongs, turns that one whole float
into an int and tries again: ``2.5``, ``"2"`` and ``true`` stay refused.
"""

import re
from typing import Any, TypeVar

import msgspec

_T = TypeVar("_T")
_FLOAT_FOR_INT = re.compile(r"^Expected `([^`]*)`, got `float` - at `\$(.*)`$")
_SEGMENT = re.compile(r"\.([^.\[]+)|\[(\d+)\]")
#: at most this many whole floats are mended in one value
MAX_FIXES = 64


def convert(obj: Any, cls: type[_T]) -> _T:
    """``msgspec.convert(obj, cls, strict=True)``, taking whole floats for ints (``obj`` is
    changed in place where it held them)."""
    for _ in range(MAX_FIXES):
        try:
            return msgspec.convert(obj, cls, strict=True)
        except msgspec.ValidationError as exc:
            if not _mend(obj, str(exc)):
                raise
    return msgspec.convert(obj, cls, strict=True)


def is_float_for_int(error: msgspec.ValidationError) -> bool:
    """Whether ``error`` is a float given where an int belongs (perhaps a whole one)."""
    m = _FLOAT_FOR_INT.match(str(error))
    return m is not None and "int" in m.group(1).split(" | ")


def _mend(obj: Any, message: str) -> bool:
    m = _FLOAT_FOR_INT.match(message)
    if m is None or "int" not in m.group(1).split(" | "):
        return False
    segments: list[str | int] = [
        key if key else int(index) for key, index in _SEGMENT.findall(m.group(2))
    ]
    if not segments:
        return False
    parent = obj
    try:
        for seg in segments[:-1]:
            parent = parent[seg]
        value = parent[segments[-1]]
    except (KeyError, IndexError, TypeError):
        return False
    if not isinstance(value, float) or not value.is_integer():
        return False
    parent[segments[-1]] = int(value)
    return True
