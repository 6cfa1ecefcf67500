"""Load the Lua scripts of ``lua/`` and map their error returns to one enum.

A script is ``lua/<name>.lua``. A line ``-- @include "includes/x.lua"`` is replaced by that
file, so shared pieces (run creation, dedupe) are written once. Scripts are registered per
client with ``register_script`` (EVALSHA, reloaded on NOSCRIPT) and called through the typed
wrappers in the store modules.

Error convention: a script that refuses returns ``{code, detail}`` with a negative ``code``,
before writing anything.
"""

import re
from enum import IntEnum
from functools import cache
from pathlib import Path
from typing import Any
from weakref import WeakKeyDictionary

from app.core.errors import ChimeError

LUA_DIR = Path(__file__).resolve().parents[2] / "lua"
_INCLUDE = re.compile(r'^--\s*@include\s+"([^"]+)"\s*$', re.MULTILINE)


class ErrorCode(IntEnum):
    NOT_FOUND = -1
    CONFLICT = -2
    STALE = -3
    EXISTS = -4
    LOST = -5


class ScriptError(ChimeError):
    """A script refused: ``code`` says why, ``detail`` carries e.g. the current status."""

    def __init__(self, code: ErrorCode, detail: str) -> None:
        super().__init__(f"{code.name}: {detail}")
        self.code = code
        self.detail = detail


@cache
def source(name: str) -> str:
    """The script's text with its includes expanded."""
    return _expand((LUA_DIR / f"{name}.lua").read_text(), set())


def _expand(text: str, seen: set[str]) -> str:
    def repl(m: re.Match[str]) -> str:
        inc = m.group(1)
        if inc in seen:
            return ""
        seen.add(inc)
        return _expand((LUA_DIR / inc).read_text(), seen)

    return _INCLUDE.sub(repl, text)


_registered: "WeakKeyDictionary[Any, dict[str, Any]]" = WeakKeyDictionary()


def script(client: Any, name: str) -> Any:
    """The registered script ``name`` for ``client`` (sync or asyncio redis client)."""
    per_client = _registered.setdefault(client, {})
    found = per_client.get(name)
    if found is None:
        found = per_client[name] = client.register_script(source(name))
    return found


def is_error(result: Any) -> bool:
    return (
        isinstance(result, list)
        and len(result) == 2
        and isinstance(result[0], int)
        and result[0] < 0
    )


def check(result: Any) -> Any:
    """Return ``result``, or raise :class:`ScriptError` for a script's error return."""
    if is_error(result):
        detail = result[1]
        if isinstance(detail, bytes):
            detail = detail.decode()
        raise ScriptError(ErrorCode(result[0]), str(detail))
    return result
