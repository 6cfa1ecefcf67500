"""Tasks and runs to and from Redis hashes, and Redis replies to ``str``.

Every field is one hash field holding a string; ``None`` is an absent field; ``payload``,
``steps`` and ``event`` are JSON. Lua scripts read and write the same fields by name. Replies of
a client made with ``decode_responses=False`` (RQ's) are read with :func:`text`.
"""

from collections.abc import Mapping
from typing import Any, TypeVar

import msgspec

from app.core.task import Run, Task

_JSON_FIELDS = frozenset({"payload", "steps", "event", "on_failure_steps"})
_json = msgspec.json.Encoder()
_S = TypeVar("_S", Task, Run)


def text(value: object) -> str:
    """A Redis reply as ``str``, whether or not the client decodes responses; bytes that are not
    UTF-8 show replacement characters rather than failing the caller."""
    return value.decode(errors="replace") if isinstance(value, bytes) else str(value)


def text_or_none(value: object) -> str | None:
    """:func:`text`, keeping ``None`` (a missing key or field) as ``None``."""
    return None if value is None else text(value)


def to_hash(record: Task | Run) -> dict[str, str]:
    """The hash fields of a record; ``None`` fields are left out."""
    out: dict[str, str] = {}
    for name, value in zip(record.__struct_fields__, msgspec.structs.astuple(record), strict=True):
        if value is None:
            continue
        if name in _JSON_FIELDS:
            out[name] = _json.encode(value).decode()
        elif value is True or value is False:
            out[name] = "1" if value else "0"
        else:
            out[name] = str(value)  # what encode_value gives (str and repr agree on floats)
    return out


def encode_value(name: str, value: Any) -> str:
    if name in _JSON_FIELDS:
        return _json.encode(value).decode()
    if isinstance(value, bool):
        return "1" if value else "0"
    if isinstance(value, float) and value.is_integer():
        return repr(value)
    return str(value)


def from_hash(cls: type[_S], fields: Mapping[Any, Any]) -> _S:
    """Rebuild a record from its hash (``decode_responses=True`` client)."""
    data: dict[str, Any] = {}
    for name, raw in fields.items():
        if name in _JSON_FIELDS:
            data[name] = msgspec.json.decode(raw)
        else:
            data[name] = raw
    return msgspec.convert(data, cls, strict=False)
