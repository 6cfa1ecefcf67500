"""``chime dashboard``: rq-dashboard on Chime's Redis, listing the priority queues and runs."""

import base64
import sys
from collections.abc import Iterator

import httpx
import pytest
import redis
from rq import Queue

from app.dashboard import create_dashboard
from app.store.enqueue import enqueue_runs
from app.store.keys import QUEUE_NAMES, Keys
from tests.ops.support import ROOT, Output, chime_env, free_ports, run_chime
from tests.support.waiting import wait_for


@pytest.fixture
def dashboard(redis_url: str) -> Iterator[str]:
    port = free_ports()
    out = Output(
        [sys.executable, "-m", "app.cli", "dashboard", "--no-auth"],
        chime_env(REDIS_URL=redis_url, PORT=str(port)),
        ROOT,
    )
    base = f"http://127.0.0.1:{port}"
    try:
        wait_for(lambda: httpx.get(base + "/", timeout=1).status_code == 200, 30, "dashboard", out)
        yield base
    finally:
        out.stop()


def test_the_queues_json_lists_every_priority_queue_and_the_queued_run(
    dashboard: str, redis_url: str, keys: Keys
) -> None:
    with redis.Redis.from_url(redis_url) as rq:
        enqueue_runs(rq, keys, [("run-on-p3", 3)])

    queues = httpx.get(dashboard + "/0/data/queues.json", timeout=5).json()["queues"]

    counts = {q["name"]: q["count"] for q in queues}
    assert set(QUEUE_NAMES) <= set(counts)
    assert counts["chime-p3"] == 1
    assert counts["chime-p1"] == 0
    jobs = httpx.get(dashboard + "/0/data/jobs/chime-p3/queued/8/asc/1.json", timeout=5).json()[
        "jobs"
    ]
    assert [j["id"] for j in jobs] == ["run-on-p3"]


def test_without_an_admin_token_the_dashboard_refuses_to_start(redis_url: str) -> None:
    result = run_chime("dashboard", REDIS_URL=redis_url)

    assert result.returncode == 2
    assert result.stderr.splitlines() == [
        "chime: chime dashboard needs CHIME_ADMIN_TOKEN (its password: the dashboard can delete "
        "jobs); pass --no-auth to serve it without credentials on purpose"
    ]


def test_the_admin_token_guards_the_dashboard(redis_url: str) -> None:
    with redis.Redis.from_url(redis_url) as rq:
        Queue("chime-p1", connection=rq).enqueue_call("workers.job.execute_run", args=("x",))
    client = create_dashboard(redis_url, "adm1n").test_client()

    assert client.get("/0/data/queues.json").status_code == 401
    wrong = base64.b64encode(b"admin:nope").decode()
    assert (
        client.get("/0/data/queues.json", headers={"Authorization": f"Basic {wrong}"}).status_code
        == 401
    )
    right = base64.b64encode(b"admin:adm1n").decode()
    answer = client.get("/0/data/queues.json", headers={"Authorization": f"Basic {right}"})
    assert answer.status_code == 200
    assert "chime-p1" in {q["name"] for q in answer.get_json()["queues"]}
