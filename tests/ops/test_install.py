"""Chime installed the ordinary way, outside the checkout: from a built wheel, and with
``pip install -r requirements.txt`` as Heroku's Python buildpack does it. Each gets a fresh venv
in a temporary directory (no editable install, no checkout on ``sys.path``), and its ``chime
web``, ``chime scheduler`` and ``chime worker`` run a ``once`` task against the test Redis."""

import shutil
import signal
import subprocess
import sys
import tomllib
import uuid
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from app import clock
from tests.ops.support import ROOT, Output, chime_env, free_ports
from tests.support.waiting import wait_for

#: building and installing into fresh environments takes minutes on a busy machine
pytestmark = pytest.mark.timeout(900)

AGENT = str(uuid.uuid4())
TOKEN = "install-test-token-" + uuid.uuid4().hex


def _venv(where: Path) -> Path:
    """A fresh venv without pip of its own (the test's pip installs into it: quicker)."""
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(where)], check=True)
    return where


def _pip(venv: Path, *args: str, cwd: Path) -> None:
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "pip",
            "--python",
            str(venv / "bin" / "python"),
            "install",
            "-q",
            *args,
        ],
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=900,
    )
    assert result.returncode == 0, result.stderr[-4000:]


def _env(venv: Path, **extra: str) -> dict[str, str]:
    env = chime_env(**extra)
    env["PATH"] = f"{venv / 'bin'}:/usr/bin:/bin"
    env.pop("PYTHONPATH", None)
    return env


def _copy_tree(target: Path) -> Path:
    """The project's files (tracked, and new ones git does not ignore) copied to ``target``:
    a build there sees no leftovers of earlier builds in the checkout."""
    listed = subprocess.run(
        ["git", "ls-files", "-z", "--cached", "--others", "--exclude-standard"],
        cwd=ROOT,
        capture_output=True,
        check=True,
    ).stdout.split(b"\0")
    for name in filter(None, listed):
        source = ROOT / name.decode()
        if source.is_file():
            copy = target / name.decode()
            copy.parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(source, copy)
    return target


@pytest.fixture(scope="module")
def wheel_venv(tmp_path_factory: pytest.TempPathFactory) -> Path:
    base = tmp_path_factory.mktemp("wheel")
    source = _copy_tree(base / "src")
    dist = base / "dist"
    build = subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "-q", "--no-deps", "-w", str(dist), str(source)],
        cwd=base,
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert build.returncode == 0, build.stderr[-4000:]
    (wheel,) = dist.glob("chime-*.whl")
    venv = _venv(base / "venv")
    _pip(venv, str(wheel), cwd=base)
    return venv


@pytest.fixture(scope="module")
def buildpack_venv(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The buildpack's way: the app's files in a build directory, ``pip install -r
    requirements.txt`` run there (its line ``.`` is a regular, non-editable install)."""
    base = tmp_path_factory.mktemp("buildpack")
    app_dir = _copy_tree(base / "app")
    venv = _venv(base / "venv")
    _pip(venv, "-r", "requirements.txt", cwd=app_dir)
    shutil.rmtree(app_dir)  # the slug keeps the installed package, not the build tree
    return venv


def _site_file(venv: Path, module: str) -> Path:
    out = subprocess.run(
        [str(venv / "bin" / "python"), "-c", f"import {module}; print({module}.__file__)"],
        cwd=venv.parent,
        env=_env(venv),
        capture_output=True,
        text=True,
        check=True,
    )
    return Path(out.stdout.strip())


def _runs_a_once_task(venv: Path, redis_url: str, workdir: Path) -> None:
    port = free_ports()
    env = _env(
        venv,
        REDIS_URL=redis_url,
        PORT=str(port),
        CHIME_AGENT_TOKENS=f"{AGENT}:{TOKEN}",
        CHIME_LOG_LEVEL="WARNING",
    )
    procs = [
        Output([str(venv / "bin" / "chime"), name], env, workdir)
        for name in ("web", "scheduler", "worker")
    ]
    base = f"http://127.0.0.1:{port}"
    auth = {"Authorization": f"Bearer {TOKEN}"}
    try:
        wait_for(lambda: httpx.get(base + "/healthz", timeout=2).is_success, 180, "web", procs[0])
        body = {
            "title": "installed",
            "description": "a once task on an installed Chime",
            "schedule_kind": "once",
            "schedule_expr": clock.iso(clock.now_ms()),
            "created_by": AGENT,
            "payload": {"steps": [{"name": "hi", "action": "log", "params": {"message": "hi"}}]},
        }
        created = httpx.post(base + "/tasks", json=body, headers=auth, timeout=10)
        assert created.status_code == 201, created.text
        task_id = created.json()["id"]

        def completed() -> bool:
            task = httpx.get(f"{base}/tasks/{task_id}", headers=auth, timeout=5).json()
            return bool(task["status"] == "completed")

        wait_for(completed, 180, "the once task to complete", procs[1])
        runs = httpx.get(f"{base}/tasks/{task_id}/runs", headers=auth, timeout=5).json()
        assert [run["status"] for run in runs["items"]] == ["succeeded"]
    finally:
        codes = [p.stop(signal.SIGTERM, timeout=45) for p in procs]
    assert codes == [0, 0, 0], "\n".join(p.text()[-3000:] for p in procs)
    for p in procs:
        assert "Traceback" not in p.text(), p.text()


def test_the_wheel_carries_the_lua_scripts_and_runs_a_task(
    wheel_venv: Path, redis_url: str, tmp_path: Path
) -> None:
    app_file = _site_file(wheel_venv, "app")
    assert wheel_venv in app_file.parents and ROOT not in app_file.parents
    lua = app_file.parent / "lua"
    assert sorted(p.name for p in lua.glob("*.lua")) == sorted(
        p.name for p in (ROOT / "lua").glob("*.lua")
    )
    assert sorted(p.name for p in (lua / "includes").glob("*.lua")) == sorted(
        p.name for p in (ROOT / "lua" / "includes").glob("*.lua")
    )
    _runs_a_once_task(wheel_venv, redis_url, tmp_path)


def test_requirements_txt_installs_as_the_buildpack_does_and_runs_a_task(
    buildpack_venv: Path, redis_url: str, tmp_path: Path
) -> None:
    app_file = _site_file(buildpack_venv, "app")
    assert buildpack_venv in app_file.parents
    _runs_a_once_task(buildpack_venv, redis_url, tmp_path)


@pytest.fixture
def missing_script(wheel_venv: Path) -> Iterator[Path]:
    """The installed claim_due.lua, moved away for the test and put back afterwards."""
    script = _site_file(wheel_venv, "app").parent / "lua" / "claim_due.lua"
    aside = script.with_suffix(".aside")
    script.rename(aside)
    try:
        yield script
    finally:
        aside.rename(script)


@pytest.mark.parametrize("process", ["web", "scheduler", "worker"])
def test_a_missing_script_stops_the_process_with_one_line(
    wheel_venv: Path, missing_script: Path, redis_url: str, tmp_path: Path, process: str
) -> None:
    result = subprocess.run(
        [str(wheel_venv / "bin" / "chime"), process],
        env=_env(wheel_venv, REDIS_URL=redis_url),
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=60,
    )

    assert result.returncode == 1
    assert "Traceback" not in result.stderr
    assert result.stderr.splitlines() == [
        f"chime: Lua script claim_due.lua is missing from the installation "
        f"({missing_script.parent})"
    ]


def test_heroku_reads_the_python_version_the_project_supports() -> None:
    version = (ROOT / ".python-version").read_text().strip()
    requires = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["requires-python"]
    major, minor = (int(x) for x in version.split("."))
    assert requires == ">=3.11" and (major, minor) >= (3, 11)
    assert (ROOT / "requirements.txt").read_text().splitlines()[-1] == "."


def test_every_package_of_the_tree_is_installed() -> None:
    listed = set(
        tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["setuptools"]["packages"]
    )
    found = {
        ".".join(init.parent.relative_to(ROOT).parts)
        for top in ("app", "workers")
        for init in (ROOT / top).rglob("__init__.py")
    }
    assert listed == found | {"app.lua"}
