"""``GET /runs/{id}?wait=S``: the answer comes when the run ends (its end is announced by the
script that ends it), or after S seconds; waiting clients hold no thread of the web process."""

import asyncio
import threading
import time
from typing import Any

import anyio
import httpx
import pytest
import redis
from litestar.testing import TestClient

from app.api.app import create_app
from app.api.runs import close_run_waiter
from app.settings import Settings
from tests.support.agents import A, B
from tests.support.api import assert_400, create


def run_now(api: TestClient[Any], task: dict[str, Any]) -> dict[str, Any]:
    resp = api.post(f"/tasks/{task['id']}/run_now", headers=A)
    assert resp.status_code == 202, resp.text
    run: dict[str, Any] = resp.json()
    return run


def test_wait_answers_when_the_run_ends_not_at_the_deadline(api: TestClient[Any]) -> None:
    task = create(api)
    run = run_now(api, task)
    answer: dict[str, Any] = {}

    def wait() -> None:
        started = time.monotonic()
        resp = api.get(f"/runs/{run['id']}", params={"wait": 30}, headers=A)
        answer.update(resp=resp, took=time.monotonic() - started)

    waiter = threading.Thread(target=wait)
    waiter.start()
    time.sleep(0.5)
    assert not answer, "answered before the run ended"
    api.post(f"/tasks/{task['id']}/cancel", headers=A)
    waiter.join(30)
    assert answer["resp"].status_code == 200
    assert answer["resp"].json()["status"] == "canceled"
    assert answer["took"] < 15, answer["took"]


def test_wait_on_a_terminal_run_answers_at_once(api: TestClient[Any]) -> None:
    task = create(api)
    run = run_now(api, task)
    api.post(f"/tasks/{task['id']}/cancel", headers=A)
    started = time.monotonic()
    resp = api.get(f"/runs/{run['id']}", params={"wait": 60}, headers=A)
    assert resp.json()["status"] == "canceled"
    assert time.monotonic() - started < 10


def test_wait_gives_up_after_s_seconds_with_the_run_as_it_is(api: TestClient[Any]) -> None:
    task = create(api)
    run = run_now(api, task)
    started = time.monotonic()
    resp = api.get(f"/runs/{run['id']}", params={"wait": 1.5}, headers=A)
    took = time.monotonic() - started
    assert resp.status_code == 200
    assert resp.json()["status"] == "queued"
    assert took >= 1.5


def test_wait_bounds_and_ownership(api: TestClient[Any]) -> None:
    task = create(api)
    run = run_now(api, task)
    for bad in (-1, 61, "soon"):
        assert_400(api.get(f"/runs/{run['id']}", params={"wait": bad}, headers=A), "wait")
    assert api.get(f"/runs/{run['id']}", params={"wait": 0}, headers=A).status_code == 200
    assert api.get(f"/runs/{run['id']}", params={"wait": 1}, headers=B).status_code == 404
    assert api.get("/runs/nope", params={"wait": 1}, headers=A).status_code == 404


@pytest.mark.parametrize("waiters", [300])
def test_many_waiters_hold_no_thread_and_all_answer_when_the_run_ends(
    api_settings: Settings, api: TestClient[Any], r: redis.Redis, waiters: int
) -> None:
    """More waiters than the thread pool has threads (40): no thread is added for them, a
    plain read still answers at once while they wait (a thread per waiter would leave it
    queued behind them), and every one of them answers when the run ends."""
    task = create(api)
    run = run_now(api, task)
    other = run_now(api, create(api))
    app = create_app(api_settings)

    async def scenario() -> tuple[list[Any], float, int, int]:
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://chime") as client:
            url = f"/runs/{run['id']}"
            before = threading.active_count()
            waiting = [
                asyncio.create_task(client.get(url, params={"wait": 60}, headers=A))
                for _ in range(waiters)
            ]
            await asyncio.sleep(1.0)
            assert not any(w.done() for w in waiting)
            threads = threading.active_count() - before
            pool = anyio.to_thread.current_default_thread_limiter().total_tokens
            started = time.monotonic()
            plain = await client.get(f"/runs/{other['id']}", headers=A)
            plain_took = time.monotonic() - started
            assert plain.status_code == 200
            cancel = await client.post(f"/tasks/{task['id']}/cancel", headers=A)
            assert cancel.status_code == 200
            done = await asyncio.wait_for(asyncio.gather(*waiting), 30)
            await close_run_waiter(app.state)
            return done, plain_took, threads, int(pool)

    done, plain_took, threads, pool = asyncio.run(scenario())
    assert [resp.json()["status"] for resp in done] == ["canceled"] * waiters
    assert plain_took < 10
    # the reads borrow threads of the bounded pool for a moment; the waiting holds none
    assert threads <= pool < waiters, f"{threads} more threads while {waiters} clients wait"
