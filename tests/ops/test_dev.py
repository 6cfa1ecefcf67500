"""``chime dev`` for real: embedded Redis, every process, a task end to end, a clean Ctrl-C, and
tasks that survive a restart."""

import os
import signal
import sys
from pathlib import Path

import httpx

from app.dev import descendants
from tests.ops.support import Hook, Output, alive, chime_env, free_ports, metric, once_task, scrape
from tests.support.waiting import wait_for

START_TIMEOUT = 60


def listening_addresses(port: int) -> set[str]:
    """The IPv4 addresses on which a socket listens on ``port`` (read from /proc/net/tcp)."""
    found: set[str] = set()
    for line in Path("/proc/net/tcp").read_text().splitlines()[1:]:
        local, state = line.split()[1], line.split()[3]
        address, hex_port = local.split(":")
        if state == "0A" and int(hex_port, 16) == port:
            raw = bytes.fromhex(address)[::-1]
            found.add(".".join(str(b) for b in raw))
    return found


def _start(cwd: Path, port: int) -> tuple[Output, str, str, str]:
    """Start ``chime dev``; returns it, the API base URL, the agent id and its token."""
    dev = Output([sys.executable, "-m", "app.cli", "dev"], chime_env(PORT=str(port)), cwd)
    base = f"http://127.0.0.1:{port}"
    token = wait_for(lambda: dev.find("Authorization: Bearer "), START_TIMEOUT, "token", dev)
    agent_id = (dev.find("agent id:") or "").split()[0]
    wait_for(
        lambda: httpx.get(base + "/healthz", timeout=2).json()["redis"] == "ok",
        START_TIMEOUT,
        "/healthz",
        dev,
    )
    return dev, base, agent_id, token


def _stop_with_ctrl_c(dev: Output) -> None:
    """SIGINT, as a terminal sends it; no process of the tree may be left."""
    tree = descendants(dev.proc.pid)
    assert len(tree) >= 6, f"expected redis, web, scheduler, 2 workers, dashboard: {tree}"

    assert dev.stop(signal.SIGINT, timeout=45) == 0, dev.text()[-4000:]

    left = [pid for pid in tree | descendants(dev.proc.pid) if alive(pid)]
    assert left == [], f"still running after Ctrl-C: {left}"


def test_dev_runs_a_task_end_to_end_stops_cleanly_and_keeps_tasks(tmp_path: Path) -> None:
    port = free_ports(2)
    dev, base, agent_id, token = _start(tmp_path, port)
    auth = {"Authorization": f"Bearer {token}"}
    try:
        assert (tmp_path / ".chime" / "dev-agent.json").exists()
        before = scrape(base)
        dash_url = f"http://127.0.0.1:{port + 1}/0/data/queues.json"
        assert httpx.get(dash_url, timeout=5).status_code == 401
        admin = (dev.find("admin token:") or "").split()[0]
        assert len(admin) >= 16
        assert (tmp_path / ".chime" / "dev-admin-token").stat().st_mode & 0o077 == 0
        dash = httpx.get(dash_url, auth=("admin", admin), timeout=5)
        assert "chime-p5" in {q["name"] for q in dash.json()["queues"]}
        assert "listening  on 127.0.0.1 only" in dev.text()
        # local receivers are reachable, and the banner says so
        assert "loopback (127.0.0.0/8, ::1, localhost)" in dev.text()
        assert listening_addresses(port) == {"127.0.0.1"}
        assert listening_addresses(port + 1) == {"127.0.0.1"}

        with Hook().running() as hook:
            created = httpx.post(
                base + "/tasks", json=once_task(agent_id, hook.url), headers=auth, timeout=10
            )
            assert created.status_code == 201, created.text
            task_id = created.json()["id"]
            wait_for(lambda: hook.requests, 30, "the http.request step", dev)

            def finished() -> dict[str, object] | None:
                runs = httpx.get(f"{base}/tasks/{task_id}/runs", headers=auth, timeout=5)
                items = runs.json()["items"]
                return items[0] if items and items[0]["status"] == "succeeded" else None

            run = wait_for(finished, 30, "the run to succeed", dev)
        assert hook.requests[0]["path"] == "/hook"
        assert run["trigger"] == "schedule"
        after = scrape(base)
        assert metric(after, "chime_runs_total", status="succeeded", trigger="schedule") == (
            metric(before, "chime_runs_total", status="succeeded", trigger="schedule") + 1
        )
        assert metric(after, "chime_run_duration_seconds_count") >= 1
    finally:
        _stop_with_ctrl_c(dev)
    assert "Traceback" not in dev.text()

    dev, base, agent_again, token_again = _start(tmp_path, port)
    try:
        assert (agent_again, token_again) == (agent_id, token)
        task = httpx.get(f"{base}/tasks/{task_id}", headers=auth, timeout=5)
        assert task.status_code == 200
        assert task.json()["status"] == "completed"
        runs = httpx.get(f"{base}/tasks/{task_id}/runs", headers=auth, timeout=5).json()
        assert [r["status"] for r in runs["items"]] == ["succeeded"]
    finally:
        _stop_with_ctrl_c(dev)


def test_dev_stops_everything_when_a_process_dies(tmp_path: Path) -> None:
    port = free_ports(2)
    dev = Output([sys.executable, "-m", "app.cli", "dev"], chime_env(PORT=str(port)), tmp_path)
    base = f"http://127.0.0.1:{port}"
    try:
        wait_for(
            lambda: httpx.get(base + "/healthz", timeout=2).is_success, START_TIMEOUT, "web", dev
        )
        tree = descendants(dev.proc.pid)
        web = next(p for p in tree if _cmdline(p).endswith("app.cli\0web"))

        os.kill(web, signal.SIGKILL)

        code = dev.proc.wait(45)
    finally:
        dev.stop()
    assert code == 1
    assert "web exited with -9; stopping everything" in dev.text()
    assert [p for p in tree if alive(p)] == []


def _cmdline(pid: int) -> str:
    try:
        return Path(f"/proc/{pid}/cmdline").read_text().rstrip("\0")
    except OSError:
        return ""
