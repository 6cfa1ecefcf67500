"""The Procfile under honcho, against the test Redis: a task runs end to end."""

import signal
from pathlib import Path

import httpx
import redis

from app.dev import descendants
from app.store.agents import create_agent
from app.store.keys import Keys
from tests.ops.support import (
    BIN,
    ROOT,
    Hook,
    Output,
    alive,
    chime_env,
    free_ports,
    metric,
    once_task,
    scrape,
)
from tests.support.waiting import wait_for

ADMIN_TOKEN = "procfile-admin-token"


def test_procfile_declares_the_four_process_types() -> None:
    lines = (ROOT / "Procfile").read_text().splitlines()
    types = dict(line.split(":", 1) for line in lines if line.strip())
    assert {k: v.strip() for k, v in types.items()} == {
        "web": "chime web",
        "scheduler": "chime scheduler",
        "worker": "chime worker",
        "dashboard": "chime dashboard",
    }


def test_honcho_runs_the_procfile_and_a_task_runs_end_to_end(
    tmp_path: Path, r: redis.Redis, keys: Keys, redis_url: str
) -> None:
    agent_id, token = create_agent(r, keys, "procfile")
    auth = {"Authorization": f"Bearer {token}"}
    # honcho gives each process type PORT = base + 100 * its position: web first, dashboard 4th
    port = free_ports(4, step=100)
    honcho = Output(
        [
            str(BIN / "honcho"),
            "start",
            "--no-colour",
            "-f",
            str(ROOT / "Procfile"),
            "-d",
            str(ROOT),
            "-e",
            str(tmp_path / "none.env"),
            "-p",
            str(port),
        ],
        chime_env(
            REDIS_URL=redis_url,
            CHIME_ADMIN_TOKEN=ADMIN_TOKEN,
            # the hook listens on loopback, which the default egress policy refuses
            CHIME_HTTP_ALLOW="127.0.0.0/8",
        ),
        ROOT,
    )
    base = f"http://127.0.0.1:{port}"
    try:
        wait_for(lambda: httpx.get(base + "/healthz", timeout=2).is_success, 60, "web", honcho)
        before = scrape(base)
        with Hook().running() as hook:
            created = httpx.post(
                base + "/tasks", json=once_task(agent_id, hook.url), headers=auth, timeout=10
            )
            assert created.status_code == 201, created.text
            task_id = created.json()["id"]
            wait_for(lambda: hook.requests, 30, "the http.request step", honcho)
            wait_for(
                lambda: (
                    httpx.get(f"{base}/tasks/{task_id}", headers=auth, timeout=5).json()["status"]
                    == "completed"
                ),
                30,
                "the task to complete",
                honcho,
            )
        runs = httpx.get(f"{base}/tasks/{task_id}/runs", headers=auth, timeout=5).json()
        assert [run["status"] for run in runs["items"]] == ["succeeded"]
        after = scrape(base)
        assert metric(after, "chime_runs_total", status="succeeded", trigger="schedule") > metric(
            before, "chime_runs_total", status="succeeded", trigger="schedule"
        )
        assert metric(after, "chime_tasks", status="completed") == 1
        dash = httpx.get(
            f"http://127.0.0.1:{port + 300}/0/data/queues.json",
            auth=("admin", ADMIN_TOKEN),
            timeout=5,
        )
        assert "chime-p5" in {q["name"] for q in dash.json()["queues"]}
    finally:
        tree = descendants(honcho.proc.pid)
        honcho.stop(signal.SIGTERM, timeout=45)
    assert [p for p in tree if alive(p)] == []
