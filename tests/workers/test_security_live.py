"""Security, live: real ``chime worker`` processes on the test Redis, the API in process, a
local server as the receiver. Egress in every spelling, signed webhooks checked with only the
key (by the README's own snippet), secrets that appear nowhere, RQ jobs that do not outlive
their runs, and a template that cannot blow a worker's memory up."""

import re
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any
from urllib.parse import quote

import pytest
import redis
from litestar.testing import TestClient

from app.api.app import create_app
from app.core.task import Run, Task
from app.settings import Settings
from app.store.enqueue import dequeue_runs, enqueue_runs
from app.store.keys import Keys
from app.store.runs import load_run
from app.store.tasks import TaskStore
from tests.support.agents import AGENT
from tests.support.waiting import wait_for
from tests.support.workers import LocalServer, Workers, status_of, worker_task
from tests.workers.sink import AsyncSink

ROOT = Path(__file__).resolve().parents[2]
TOKEN = "token-of-the-live-agent"
SECRET_KEY = "secret-key-of-the-live-tests-0123456789"
SECRET = "Zx9-S3cr3t-Value-q7"
AUTH = {"Authorization": f"Bearer {TOKEN}"}
TERMINAL = ("succeeded", "failed", "canceled")


@pytest.fixture
def api(redis_url: str) -> Iterator[TestClient[Any]]:
    settings = Settings.from_env(
        {
            "REDIS_URL": redis_url,
            "CHIME_AGENT_TOKENS": f"{AGENT}:{TOKEN}",
            "CHIME_SECRET_KEY": SECRET_KEY,
        }
    )
    with TestClient(create_app(settings)) as client:
        yield client


def queue(store: TaskStore, rq: redis.Redis, keys: Keys, task: Task) -> Run:
    run = store.run_now(task.id, AGENT)
    enqueue_runs(rq, keys, [(run.id, run.priority)])
    return run


def finished(r: redis.Redis, keys: Keys, runs: list[Run], timeout: float = 60) -> list[Run]:
    wait_for(
        lambda: all(status_of(r, keys, run.id) in TERMINAL for run in runs),
        timeout=timeout,
        what="the runs to finish",
    )
    loaded = [load_run(r, keys, run.id) for run in runs]
    assert all(run is not None for run in loaded)
    return [run for run in loaded if run is not None]


def create_task(api: TestClient[Any], steps: list[dict[str, Any]], **fields: Any) -> str:
    body = {
        "title": "live",
        "description": "",
        "schedule_kind": "event",
        "created_by": AGENT,
        "max_retries": 0,
        "payload": {"steps": steps},
        **fields,
    }
    resp = api.post("/tasks", json=body, headers=AUTH)
    assert resp.status_code == 201, resp.text
    return str(resp.json()["id"])


def run_now(api: TestClient[Any], task_id: str) -> str:
    resp = api.post(f"/tasks/{task_id}/run_now", headers=AUTH)
    assert resp.status_code == 202, resp.text
    return str(resp.json()["id"])


def wait_run(api: TestClient[Any], run_id: str, timeout: float = 60) -> dict[str, Any]:
    def done() -> dict[str, Any] | None:
        run: dict[str, Any] = api.get(f"/runs/{run_id}", headers=AUTH).json()
        return run if run["status"] in TERMINAL else None

    result: dict[str, Any] = wait_for(done, timeout=timeout, what=f"run {run_id}")
    return result


# -- egress ------------------------------------------------------------------------------------

#: spellings of this machine's loopback the local server answers on
REACHABLE = ["127.0.0.1", "2130706433", "0x7f000001", "127.1", "0177.0.0.1", "[::ffff:127.0.0.1]"]
#: spellings of addresses refused before any connection is tried
UNREACHABLE = [
    "[::1]", "[::127.0.0.1]", "[64:ff9b::7f00:1]", "[2002:7f00:1::]", "[fc00::1]", "10.0.0.1",
    "100.64.0.1", "169.254.169.254", "[fe80::1]",
]  # fmt: skip


def test_a_worker_refuses_every_spelling_by_default_and_reaches_loopback_once_allowed(
    store: TaskStore,
    r: redis.Redis,
    rq_client: redis.Redis,
    keys: Keys,
    workers: Workers,
    http_server: LocalServer,
) -> None:
    tasks = {}
    for host in REACHABLE + UNREACHABLE + ["0.0.0.0"]:
        url = f"http://{host}:{http_server.port}/echo"
        step = {"name": "call", "action": "http.request", "params": {"url": url}}
        tasks[host], _ = store.create(worker_task([step], max_retries=0))

    # the default: public addresses only
    default = workers.start("--concurrency", "20", CHIME_HTTP_ALLOW="")
    runs = {host: queue(store, rq_client, keys, task) for host, task in tasks.items()}
    done = dict(zip(runs, finished(r, keys, list(runs.values())), strict=True))
    for host, run in done.items():
        assert run.status == "failed", host
        assert "not allowed by the default egress policy" in (run.error or ""), (host, run.error)
    assert http_server.recorder.requests == []
    default.kill()
    default.wait(10)

    # opened for loopback: every spelling of it reaches the server, nothing else does
    workers.start("--concurrency", "20", CHIME_HTTP_ALLOW="127.0.0.0/8,0.0.0.0/8")
    runs = {host: queue(store, rq_client, keys, task) for host, task in tasks.items()}
    done = dict(zip(runs, finished(r, keys, list(runs.values())), strict=True))
    for host in [*REACHABLE, "0.0.0.0"]:
        assert done[host].status == "succeeded", (host, done[host].error)
    for host in UNREACHABLE:
        if host in ("[::127.0.0.1]", "[64:ff9b::7f00:1]", "[2002:7f00:1::]"):
            # they stand for 127.0.0.1: allowed, but nothing routes them here
            assert "refused" not in (done[host].error or ""), (host, done[host].error)
            continue
        assert done[host].status == "failed"
        assert "not allowed by CHIME_HTTP_ALLOW=127.0.0.0/8,0.0.0.0/8" in (done[host].error or "")
    assert len(http_server.recorder.requests) == len(REACHABLE) + 1


# -- signed webhooks -------------------------------------------------------------------------


def readme_verify() -> Callable[[str, str, bytes], bool]:
    """The receiver's check exactly as the README's Security section shows it."""
    text = (ROOT / "README.md").read_text()
    section = text.split("### Signed webhooks", 1)[1]
    code = re.search(r"```python\n(.*?)```", section, re.DOTALL)
    assert code, "the README shows no receiver"
    scope: dict[str, Any] = {}
    exec(code.group(1), scope)
    verify: Callable[[str, str, bytes], bool] = scope["verify"]
    return verify


def test_a_receiver_verifies_every_request_with_only_the_key(
    api: TestClient[Any], workers: Workers, http_server: LocalServer
) -> None:
    verify = readme_verify()
    key = api.post("/agents/me/signing-key", headers=AUTH).json()["signing_key"]
    task_id = create_task(
        api,
        [
            {
                "name": "post",
                "action": "http.request",
                # a same-origin 307: the body is sent twice, each hop signed
                "params": {
                    "method": "POST",
                    "url": f"{http_server.url}/redirect?code=307&to=/echo",
                    "json": {"n": 1, "text": "héllo"},
                },
            },
            {"name": "get", "action": "http.request", "params": {"url": f"{http_server.url}/text"}},
        ],
    )
    workers.start(CHIME_SECRET_KEY=SECRET_KEY)
    assert wait_run(api, run_now(api, task_id))["status"] == "succeeded"
    requests = http_server.recorder.requests
    assert [q["path"] for q in requests] == ["/redirect", "/echo", "/text"]
    for request in requests:
        header = request["headers"]["Chime-Signature"]
        body = request["body"].encode()
        assert verify(key, header, body), request
        assert not verify(key, header, body + b" ")
        assert not verify("whsec_" + "x" * 43, header, body)
        assert abs(int(header.split(",")[0][2:]) - time.time()) < 120
    assert requests[0]["body"] == requests[1]["body"] != ""

    # a new key signs from now on; the old one no longer verifies
    new_key = api.post("/agents/me/signing-key", headers=AUTH).json()["signing_key"]
    requests.clear()
    assert wait_run(api, run_now(api, task_id))["status"] == "succeeded"
    header = requests[0]["headers"]["Chime-Signature"]
    assert verify(new_key, header, requests[0]["body"].encode())
    assert not verify(key, header, requests[0]["body"].encode())


def test_a_worker_that_cannot_open_the_key_fails_the_step_instead_of_sending_unsigned(
    api: TestClient[Any], workers: Workers, http_server: LocalServer
) -> None:
    api.post("/agents/me/signing-key", headers=AUTH)
    step = {"name": "post", "action": "http.request", "params": {"url": f"{http_server.url}/x"}}
    task_id = create_task(api, [step])
    workers.start()  # no CHIME_SECRET_KEY: the sealed key cannot be opened
    run = wait_run(api, run_now(api, task_id))
    assert run["status"] == "failed"
    assert "no CHIME_SECRET_KEY" in run["error"]
    assert http_server.recorder.requests == []


# -- secrets ---------------------------------------------------------------------------------


def redis_dump(client: redis.Redis) -> str:
    """Every key and value in Redis as text (hashes, strings, lists, sets, sorted sets)."""
    out = []
    for key in client.scan_iter("*"):
        kind = client.type(key)
        if kind == b"hash":
            value: Any = client.hgetall(key)
        elif kind == b"string":
            value = client.get(key)
        elif kind == b"list":
            value = client.lrange(key, 0, -1)
        elif kind == b"set":
            value = client.smembers(key)
        elif kind == b"zset":
            value = client.zrange(key, 0, -1, withscores=True)
        else:
            value = kind
        out.append(f"{key!r} {value!r}")
    return "\n".join(out)


def forms(value: str) -> list[str]:
    return [value, value.lower(), quote(value, safe=""), value.encode().hex()]


def test_a_secret_appears_in_no_answer_record_job_or_log_line(
    api: TestClient[Any],
    workers: Workers,
    http_server: LocalServer,
    rq_client: redis.Redis,
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level("DEBUG")
    assert api.put("/secrets/API_KEY", json={"value": SECRET}, headers=AUTH).status_code == 204
    listener = create_task(
        api,
        [{"name": "heard", "action": "log", "params": {"message": "got {{ event.data.k }}"}}],
        schedule_expr="leak.*",
    )
    use = "{{ secrets.API_KEY }}"
    elsewhere = f"http://localhost:{http_server.port}/echo?k={use}"
    task_id = create_task(
        api,
        [
            {
                "name": "echo",
                "action": "http.request",
                "params": {
                    "method": "POST",
                    "url": f"{http_server.url}/echo?k={use}",
                    "headers": {"X-Api-Key": use, "X-Other": f"Bearer {use}"},
                    "json": {"k": use, "note": f"key is {use}"},
                },
            },
            {"name": "say", "action": "log", "params": {"message": f"key={use}"}},
            {
                "name": "tell",
                "action": "event.emit",
                "params": {"name": "leak.x", "data": {"k": use}},
            },
            {
                # refused, and the error quotes the URL that held the secret
                "name": "leak",
                "action": "http.request",
                "params": {
                    "method": "POST",
                    "url": f"{http_server.url}/redirect?code=307&to={elsewhere}",
                    "body": "b",
                },
            },
        ],
    )
    workers.start(CHIME_SECRET_KEY=SECRET_KEY, CHIME_LOG_LEVEL="DEBUG")
    run = wait_run(api, run_now(api, task_id))
    assert run["status"] == "failed"
    assert [s["status"] for s in run["steps"]] == ["succeeded"] * 3 + ["failed"]
    assert "refused: a 307 redirect to another origin" in run["error"]
    # the secret was used: the receiver got it, in a header and in the body
    sent = http_server.recorder.requests[0]
    assert sent["headers"]["X-Api-Key"] == SECRET and SECRET in sent["body"]
    # and masked where it came back
    echoed = run["steps"][0]["output"]
    assert echoed["body"]["headers"]["x-api-key"] == "***"
    assert run["steps"][1]["output"] == "key=***"
    heard = wait_for(
        lambda: [
            x
            for x in api.get(f"/tasks/{listener}/runs", headers=AUTH).json()["items"]
            if x["status"] in TERMINAL
        ],
        what="the event run",
    )
    assert heard[0]["steps"][0]["output"] == "got ***"

    answers = [
        api.get(path, headers=AUTH).text
        for path in (
            f"/tasks/{task_id}",
            f"/tasks/{task_id}/runs",
            f"/runs/{run['id']}",
            f"/tasks/{listener}/runs",
            "/tasks",
            "/secrets",
        )
    ]
    places = {
        "API answers": "\n".join(answers),
        "Redis (runs, tasks, events, RQ jobs)": redis_dump(rq_client),
        "worker log": workers.output(),
        "API log": caplog.text,
    }
    assert "rq:job:" in places["Redis (runs, tasks, events, RQ jobs)"]
    assert "step.log" in places["worker log"] and "run.transition" in places["worker log"]
    for where, text in places.items():
        for form in forms(SECRET):
            assert form not in text, f"{form!r} found in {where}"


# -- RQ jobs after cancels ---------------------------------------------------------------------


def test_no_rq_job_without_a_ttl_outlives_its_run_after_cancels(
    store: TaskStore,
    r: redis.Redis,
    rq_client: redis.Redis,
    keys: Keys,
    workers: Workers,
    sink: AsyncSink,
) -> None:
    step = {
        "name": "hold",
        "action": "http.request",
        "params": {"url": f"{sink.url}/hold/x?ms=300"},
    }
    tasks = [store.create(worker_task([step]))[0] for _ in range(3)]
    runs = [queue(store, rq_client, keys, task) for task in tasks for _ in range(10)]
    workers.start("--concurrency", "4")
    wait_for(
        lambda: sum(status_of(r, keys, run.id) == "running" for run in runs) >= 4,
        what="runs in flight",
    )
    for task in tasks:
        _, queued = store.cancel(task.id, AGENT)
        dequeue_runs(rq_client, queued)
    done = finished(r, keys, runs)
    statuses = {run.status for run in done}
    assert statuses == {"succeeded", "canceled"}, statuses
    orphans = [
        key
        for key in rq_client.scan_iter("rq:job:*")
        if rq_client.type(key) == b"hash" and rq_client.ttl(key) == -1
    ]
    assert orphans == []
    for run in done:
        if run.status == "canceled":
            assert not rq_client.exists(f"rq:job:{run.id}")


# -- templates -------------------------------------------------------------------------------


def peak_rss_mib(pid: int) -> float:
    status = Path(f"/proc/{pid}/status").read_text()
    found = re.search(r"^VmHWM:\s+(\d+) kB", status, re.MULTILINE)
    assert found
    return int(found.group(1)) / 1024


def test_a_worker_stops_expanding_templates_at_the_limit(
    api: TestClient[Any], workers: Workers, http_server: LocalServer
) -> None:
    # 9 KB of templates over a 1 MiB output: 450 MiB if built before the size check
    task_id = create_task(
        api,
        [
            {
                "name": "a",
                "action": "http.request",
                "params": {"url": f"{http_server.url}/big?n=1048576"},
            },
            {
                "name": "b",
                "action": "log",
                "params": {"message": "{{ steps.a.output.body }}" * 450},
            },
        ],
    )
    proc = workers.start("--concurrency", "1")
    run = wait_run(api, run_now(api, task_id))
    assert run["status"] == "failed"
    assert "rendering stopped: the step's params would pass 10485760 characters" in run["error"]
    # the worker's high-water mark stays near its size at rest (about 60 MiB here)
    assert peak_rss_mib(proc.pid) < 250


def test_a_secret_a_run_cannot_open_fails_its_step_naming_it(
    api: TestClient[Any], workers: Workers, http_server: LocalServer
) -> None:
    api.put("/secrets/API_KEY", json={"value": SECRET}, headers=AUTH)
    step = {
        "name": "call",
        "action": "http.request",
        "params": {"url": f"{http_server.url}/echo", "headers": {"X-Key": "{{ secrets.API_KEY }}"}},
    }
    task_id = create_task(api, [step])
    # a worker without the key cannot open it, and says so
    without = workers.start()
    run = wait_run(api, run_now(api, task_id))
    assert run["error"] == (
        "step call (http.request): secret API_KEY: this worker has no CHIME_SECRET_KEY to open it"
    )
    without.kill()
    without.wait(10)
    # deleted since the task was saved: the step fails naming it
    assert api.delete("/secrets/API_KEY", headers=AUTH).status_code == 204
    workers.start(CHIME_SECRET_KEY=SECRET_KEY)
    run = wait_run(api, run_now(api, task_id))
    assert "secret API_KEY: no such secret" in run["error"]
    assert http_server.recorder.requests == []
