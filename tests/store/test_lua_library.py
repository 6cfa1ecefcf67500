"""The Lua library's shape: ``lua/includes/x.lua`` holds one function ``x`` (plus constants),
includes what it calls, and reads no KEYS or ARGV; every include is used, and defined before
its calls; a hash read is unpacked into named locals. The last tests of each rule prove the
check fails on a file that breaks it."""

import re
from pathlib import Path

import pytest

from app.store import scripts

LUA = Path(__file__).resolve().parents[2] / "lua"
INCLUDES = sorted((LUA / "includes").glob("*.lua"))
#: include files that hold constants only, and what they are
CONSTANTS_ONLY = {"errors.lua": "the ERR_<NAME> codes of every refusal"}

_FUNCTION = re.compile(r"\bfunction\b")
_DEFINES = re.compile(r"^local function (\w+)\(", re.MULTILINE)
_CONSTANT = re.compile(r"^local [A-Z][A-Z0-9_]* = ", re.MULTILINE)
_INCLUDE = re.compile(r'^--\s*@include\s+"includes/(\w+)\.lua"\s*$', re.MULTILINE)
_CALLED = re.compile(r"\b(chime_\w+)\(")
_HASH_READ = re.compile(r"(unpack\(\s*)?redis\.call\(\s*'(HMGET|HGETALL)'")


def _code(text: str) -> str:
    """The text without its comments (headers name functions and keys in prose)."""
    return "\n".join(line.split("--", 1)[0] for line in text.splitlines())


def _top_level(code: str) -> list[str]:
    """The statements' first lines at the top of a file (not indented, not closing a block)."""
    return [
        line
        for line in code.splitlines()
        if line.strip() and not line[0].isspace() and line.strip() not in ("end", "}")
    ]


def test_the_library_is_found() -> None:
    assert len(INCLUDES) >= 20
    assert {"chime_create_run.lua", "chime_task_transition.lua", "errors.lua"} <= {
        p.name for p in INCLUDES
    }


def include_violations(file_name: str, text: str) -> list[str]:
    """What breaks the library's rules in one include file."""
    code = _code(text)
    top = _top_level(code)
    stem = file_name.removesuffix(".lua")
    found = []
    if file_name in CONSTANTS_ONLY:
        if _FUNCTION.search(code):
            found.append("a function in a file of constants")
        if not top or not all(_CONSTANT.match(line) for line in top):
            found.append(f"not only constants: {top}")
        return found
    if _DEFINES.findall(code) != [stem]:
        found.append(f"defines {_DEFINES.findall(code)}, not [{stem!r}]")
    if len(_FUNCTION.findall(code)) != 1:
        found.append("a second function, named or not, nested or not")
    rest = [line for line in top if not line.startswith(f"local function {stem}(")]
    if not all(_CONSTANT.match(line) for line in rest):
        found.append(f"beside the function, more than constants: {rest}")
    if re.search(r"\b(KEYS|ARGV)\b", code):
        found.append("reads KEYS or ARGV (an include takes its keys as parameters)")
    included = set(_INCLUDE.findall(text))
    called = set(_CALLED.findall(code)) - {stem}
    if not called <= included:
        found.append(f"calls {sorted(called - included)} without including them")
    if re.search(r"\bERR_[A-Z_]+\b", code) and "errors" not in included:
        found.append("names an ERR_ code without including errors.lua")
    return found


@pytest.mark.parametrize("path", INCLUDES, ids=lambda p: p.name)
def test_an_include_is_one_function_named_as_the_file_that_includes_what_it_calls(
    path: Path,
) -> None:
    assert include_violations(path.name, path.read_text()) == []


BREAKS = {
    "a second function": (
        "chime_a.lua",
        "local function chime_a()\n  return 1\nend\n\nlocal function chime_b()\nend\n",
    ),
    "a function named otherwise": ("chime_a.lua", "local function chime_b()\nend\n"),
    "a nested helper": (
        "chime_a.lua",
        "local function chime_a()\n  local f = function() end\n  return f\nend\n",
    ),
    "a statement beside it": ("chime_a.lua", "local x = 1\nlocal function chime_a()\nend\n"),
    "KEYS read inside": ("chime_a.lua", "local function chime_a()\n  return KEYS[3]\nend\n"),
    "a call not included": ("chime_a.lua", "local function chime_a()\n  chime_b()\nend\n"),
    "an error code not included": (
        "chime_a.lua",
        "local function chime_a()\n  return {ERR_STALE, 'x'}\nend\n",
    ),
    "a function among constants": ("errors.lua", "local ERR_X = -9\nlocal function f()\nend\n"),
}


@pytest.mark.parametrize(("name", "text"), BREAKS.values(), ids=BREAKS.keys())
def test_an_include_that_breaks_the_rules_fails_the_check(name: str, text: str) -> None:
    assert include_violations(name, text)


def test_an_include_that_keeps_the_rules_passes_the_check() -> None:
    text = (
        '-- @include "includes/errors.lua"\n-- @include "includes/chime_b.lua"\n\n'
        "local CHIME_A_LIMIT = 3\n\nlocal function chime_a(key)\n"
        "  if chime_b(key) > CHIME_A_LIMIT then\n    return {ERR_STALE, key}\n  end\nend\n"
    )
    assert include_violations("chime_a.lua", text) == []


def test_every_include_is_used_and_defined_before_its_calls() -> None:
    """And a script carries no function it never calls (it includes what it calls, no more)."""
    used: set[str] = set()
    for name in scripts.NAMES:
        expanded = _code(scripts.source(name))
        defined = _DEFINES.findall(expanded)
        assert len(defined) == len(set(defined)), f"{name}: an include expanded twice"
        idle = [f for f in defined if len(re.findall(rf"\b{f}\(", expanded)) < 2]
        assert not idle, f"{name}: defines {idle} and never calls them"
        for m in _CALLED.finditer(expanded):
            where = expanded.find(f"local function {m.group(1)}(")
            assert 0 <= where < m.start(), f"{name}: {m.group(1)} called before it is defined"
        used |= set(defined)
        used |= {"errors"} if "local ERR_" in expanded else set()
    assert {p.stem for p in INCLUDES} <= used


@pytest.mark.parametrize("path", sorted([*LUA.glob("*.lua"), *INCLUDES]), ids=lambda p: p.name)
def test_a_hash_read_is_unpacked_into_named_locals(path: Path) -> None:
    reads = list(_HASH_READ.finditer(_code(path.read_text())))
    assert all(m.group(1) for m in reads), f"{path.name}: HMGET/HGETALL read by position"


def test_a_positional_hash_read_would_be_caught() -> None:
    bad = "local t = redis.call('HMGET', k, 'status', 'version')\nif t[1] then end"
    good = "local status, version = unpack(redis.call('HMGET', k, 'status', 'version'))"
    assert [bool(m.group(1)) for m in _HASH_READ.finditer(bad)] == [False]
    assert [bool(m.group(1)) for m in _HASH_READ.finditer(good)] == [True]
