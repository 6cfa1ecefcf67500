"""The scripts' error codes are one table: ``ERR_<NAME>`` in ``lua/includes/errors.lua`` equals
``app.store.scripts.ErrorCode``, every script refuses by name, and a refusal reaches Python as
the member of that name."""

import re
from pathlib import Path

import redis

from app.store import scripts
from app.store.keys import Keys
from app.store.scripts import ErrorCode, ScriptError

LUA = Path(__file__).resolve().parents[2] / "lua"
_DEFINED = re.compile(r"^local ERR_([A-Z_]+) = (-\d+)$", re.MULTILINE)
_BARE = re.compile(r"\{\s*-\d")
_USED = re.compile(r"\bERR_([A-Z_]+)\b")


def _code(path: Path) -> str:
    return "\n".join(line.split("--", 1)[0] for line in path.read_text().splitlines())


def _scripts() -> list[Path]:
    return sorted([*LUA.glob("*.lua"), *LUA.glob("includes/*.lua")])


def test_the_lua_table_is_the_python_enum() -> None:
    text = (LUA / "includes/errors.lua").read_text()
    defined = {name: int(code) for name, code in _DEFINED.findall(text)}
    assert defined == {m.name: m.value for m in ErrorCode}


def test_no_script_refuses_with_a_bare_number() -> None:
    bare = [p.name for p in _scripts() if _BARE.search(_code(p))]
    assert not bare


def test_every_code_a_script_names_is_defined_and_included() -> None:
    for path in _scripts():
        if path.name == "errors.lua":
            continue
        used = set(_USED.findall(_code(path)))
        assert used <= {m.name for m in ErrorCode}, path.name
    users = 0
    for name in scripts.NAMES:
        # a script refuses in its own lines or through an include (chime_task_transition)
        expanded = "\n".join(line.split("--", 1)[0] for line in scripts.source(name).splitlines())
        if _USED.search(_DEFINED.sub("", expanded)):
            users += 1
            # the expanded script defines every name it uses (the include is there)
            assert "local ERR_STALE = -3" in expanded, name
    assert users >= 10


def test_a_refusal_reaches_python_as_its_member(r: redis.Redis, keys: Keys) -> None:
    reply = scripts.script(r, "pause_task")(
        keys=[keys.task("nope"), keys.due, *[keys.due] * 16], args=[0, "active", "0"]
    )
    try:
        scripts.check(reply)
    except ScriptError as e:
        assert e.code is ErrorCode.NOT_FOUND
        assert e.detail == "task"
    else:
        raise AssertionError(f"expected a refusal, got {reply!r}")
