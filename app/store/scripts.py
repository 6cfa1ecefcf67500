"""Load the Lua scripts of ``lua/`` and map their error returns to one enum.

A script is ``lua/<name>.lua``, installed as package data of ``app.lua`` and read through
:mod:`importlib.resources`, so a wheel finds its scripts wherever the process starts. A line
``-- @include "includes/x.lua"`` (a path under ``lua/``) is replaced by that file, so shared
pieces (run creation, dedupe) are written once. ``lua/includes/x.lua`` holds one function,
``x``, and includes the ones it calls itself: includes nest, and each file is expanded once per
script, where it is first included (a later line including it again is dropped, the function
being defined above it already). An include that is missing raises :class:`ScriptMissing`, one
that includes itself through others :class:`IncludeCycle`. Scripts are registered per
client with ``register_script`` (EVALSHA, reloaded on NOSCRIPT) and called through the typed
wrappers in the store modules.

Error convention: a script that refuses returns ``{code, detail}`` with a negative ``code``,
before writing anything. The codes are named once for both sides: :class:`ErrorCode` here and
``ERR_<NAME>`` in ``lua/includes/errors.lua``, which every script that refuses includes (a test
keeps the two equal and finds no bare number in a script).
"""

import re
from enum import IntEnum
from functools import cache
from importlib.resources import files
from importlib.resources.abc import Traversable
from typing import Any
from weakref import WeakKeyDictionary

from app.core.errors import ChimeError
from app.store.codec import text

#: the installed scripts (``lua/`` of the source tree)
LUA_DIR: Traversable = files("app.lua")
_INCLUDE = re.compile(r'^--\s*@include\s+"([^"]+)"\s*$', re.MULTILINE)


class ErrorCode(IntEnum):
    """A script's refusal; ``ERR_<name>`` in ``lua/includes/errors.lua``."""

    NOT_FOUND = -1
    CONFLICT = -2
    STALE = -3
    EXISTS = -4
    LOST = -5
    QUOTA = -6


class ScriptError(ChimeError):
    """A script refused: ``code`` says why, ``detail`` carries e.g. the current status."""

    def __init__(self, code: ErrorCode, detail: str) -> None:
        super().__init__(f"{code.name}: {detail}")
        self.code = code
        self.detail = detail


class ScriptMissing(ChimeError):
    """A script (or an include) is not in the installation: the package is broken."""

    def __init__(self, path: str, included_by: str | None = None) -> None:
        by = f" (included by {included_by})" if included_by else ""
        super().__init__(f"Lua script {path}{by} is missing from the installation ({LUA_DIR})")
        self.path = path
        self.included_by = included_by


class IncludeCycle(ChimeError):
    """An include includes itself, through the others on ``chain`` (a broken source tree)."""

    def __init__(self, chain: list[str]) -> None:
        super().__init__("Lua include cycle: " + " -> ".join(chain))
        self.chain = chain


#: every script Chime calls; the start-up check loads each, so a broken installation stops a
#: process at once (a test keeps this list equal to the files of ``lua/``)
NAMES = (
    "backfill_runs",
    "cancel_run",
    "cancel_task",
    "claim_due",
    "commit_occurrence",
    "create_task",
    "emit_event",
    "fill_agents",
    "finish_run",
    "pause_for",
    "pause_task",
    "pop_jobs",
    "reconcile_outbox",
    "record_on_failure",
    "release_claims",
    "release_delayed",
    "renew_runs",
    "resume_task",
    "rq_finish_jobs",
    "rq_heartbeat_jobs",
    "rq_start_jobs",
    "run_now",
    "snooze_task",
    "start_run",
    "sweep_outbox",
    "update_task",
)


def installed() -> list[str]:
    """The names of the scripts found in the installation (includes are not scripts)."""
    return sorted(
        entry.name.removesuffix(".lua")
        for entry in LUA_DIR.iterdir()
        if entry.is_file() and entry.name.endswith(".lua")
    )


@cache
def source(name: str) -> str:
    """The script's text with its includes expanded."""
    return expand(f"{name}.lua")


def expand(path: str) -> str:
    """The text of ``path`` (under :data:`LUA_DIR`) with its includes expanded, each once."""
    return _expand(path, _read(path), set(), [path])


def _read(path: str, included_by: str | None = None) -> str:
    try:
        return LUA_DIR.joinpath(path).read_text(encoding="utf-8")
    except (FileNotFoundError, NotADirectoryError):
        raise ScriptMissing(path, included_by) from None


def _expand(path: str, text: str, done: set[str], chain: list[str]) -> str:
    """``text`` (of ``path``) with every include replaced by its expanded text; ``done``: the
    includes expanded in this script so far, ``chain``: the files being expanded, outermost
    first."""

    def repl(m: re.Match[str]) -> str:
        inc = m.group(1)
        if inc in chain:
            raise IncludeCycle([*chain, inc])
        if inc in done:
            return ""
        done.add(inc)
        return _expand(inc, _read(inc, path), done, [*chain, inc])

    return _INCLUDE.sub(repl, text)


_registered: "WeakKeyDictionary[Any, dict[str, Any]]" = WeakKeyDictionary()


def script(client: Any, name: str) -> Any:
    """The registered script ``name`` for ``client`` (sync or asyncio redis client)."""
    if name not in NAMES:
        raise KeyError(f"no script {name!r} in scripts.NAMES")
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
        raise ScriptError(ErrorCode(result[0]), text(result[1]))
    return result
