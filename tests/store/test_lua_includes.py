"""The include expansion of ``app/store/scripts.py``: includes nest, each file is expanded once
per script where it is first included, and a cycle or a missing include is a clear error."""

from pathlib import Path

import pytest

from app.store import scripts
from app.store.scripts import IncludeCycle, ScriptMissing


@pytest.fixture
def lua_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A scratch ``lua/`` for the include expansion."""
    (tmp_path / "includes").mkdir()
    monkeypatch.setattr(scripts, "LUA_DIR", tmp_path)
    return tmp_path


def _write(root: Path, path: str, *includes: str, body: str = "") -> None:
    lines = [f'-- @include "includes/{i}.lua"' for i in includes]
    (root / path).write_text("\n".join([*lines, body or f"-- body of {path}"]) + "\n")


def test_includes_nest_and_each_is_expanded_once_where_first_included(lua_dir: Path) -> None:
    _write(lua_dir, "includes/c.lua")
    _write(lua_dir, "includes/a.lua", "c")
    _write(lua_dir, "includes/b.lua", "a", "c")
    _write(lua_dir, "s.lua", "b", "a", body="-- the script")
    text = scripts.expand("s.lua")
    assert "@include" not in text
    bodies = [line for line in text.splitlines() if line.startswith("--")]
    assert bodies == [
        "-- body of includes/c.lua",
        "-- body of includes/a.lua",
        "-- body of includes/b.lua",
        "-- the script",
    ]


def test_an_include_cycle_is_an_error_naming_it(lua_dir: Path) -> None:
    _write(lua_dir, "includes/a.lua", "b")
    _write(lua_dir, "includes/b.lua", "a")
    _write(lua_dir, "s.lua", "a")
    with pytest.raises(IncludeCycle) as exc:
        scripts.expand("s.lua")
    assert exc.value.chain == ["s.lua", "includes/a.lua", "includes/b.lua", "includes/a.lua"]
    assert "includes/a.lua -> includes/b.lua -> includes/a.lua" in str(exc.value)


def test_an_include_of_itself_is_a_cycle(lua_dir: Path) -> None:
    _write(lua_dir, "includes/a.lua", "a")
    _write(lua_dir, "s.lua", "a")
    with pytest.raises(IncludeCycle):
        scripts.expand("s.lua")


def test_a_missing_include_names_the_file_that_includes_it(lua_dir: Path) -> None:
    _write(lua_dir, "includes/a.lua", "nope")
    _write(lua_dir, "s.lua", "a")
    with pytest.raises(ScriptMissing) as exc:
        scripts.expand("s.lua")
    assert exc.value.path == "includes/nope.lua"
    assert exc.value.included_by == "includes/a.lua"
    assert "includes/nope.lua (included by includes/a.lua) is missing" in str(exc.value)
