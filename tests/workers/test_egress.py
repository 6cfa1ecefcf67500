"""The ``http.request`` client: connections pinned to checked addresses, TLS against the host
name, the run headers, a timed-out step's connection closed, and a heavy step that leaves the
event loop free."""

import asyncio
import ssl
import subprocess
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest

from app.core.pipeline import parse_pipeline
from app.settings import Settings
from tests.support.records import make_run
from tests.support.workers import LOOPBACK, LocalServer, http, run_steps, worker_task
from tests.workers.sink import AsyncSink
from workers.egress import PinnedTransport, egress_policy, make_client
from workers.pipeline import run_pipeline


def pinned(addresses: list[str], seen: list[str]) -> Any:
    async def resolve(host: str, port: int) -> list[str]:
        seen.append(host)
        return addresses

    return resolve


def test_the_connection_goes_to_the_checked_address_without_a_second_lookup(
    http_server: LocalServer,
) -> None:
    seen: list[str] = []
    # no DNS server knows this name: only the checked address can have been connected to
    url = f"http://elsewhere.invalid:{http_server.port}/echo"
    result = run_steps([http("a", url)], resolve=pinned(["127.0.0.1"], seen))
    assert result.succeeded, result.error
    assert seen == ["elsewhere.invalid"]
    assert (
        result.steps[0]["output"]["body"]["headers"]["host"]
        == f"elsewhere.invalid:{http_server.port}"
    )


@pytest.mark.parametrize("addresses", [["169.254.169.254"], ["127.0.0.1", "fe80::1"]])
def test_a_name_that_resolves_to_a_refused_address_is_never_connected_to(
    http_server: LocalServer, addresses: list[str]
) -> None:
    seen: list[str] = []
    url = f"http://rebound.invalid:{http_server.port}/json"
    result = run_steps([http("a", url)], resolve=pinned(addresses, seen))
    assert "a link-local address" in result.steps[0]["error"]
    assert http_server.recorder.requests == []


def test_every_request_carries_the_run_headers_over_any_given(http_server: LocalServer) -> None:
    result = run_steps(
        [http("a", f"{http_server.url}/echo", headers={"chime-run-id": "spoofed", "X-Kept": "1"})],
        run={"attempt": 3},
    )
    headers = result.steps[0]["output"]["body"]["headers"]
    assert headers["chime-run-id"] != "spoofed"
    assert headers["chime-attempt"] == "3"
    assert headers["chime-task-id"] and headers["x-kept"] == "1"
    # and on every hop of a redirect
    http_server.recorder.requests.clear()
    run_steps([http("a", f"{http_server.url}/redirect?to=/echo")])
    assert [r["headers"].get("Chime-Attempt") for r in http_server.recorder.requests] == ["1", "1"]


@pytest.fixture
def tls_server(tmp_path: Path) -> Iterator[tuple[int, ssl.SSLContext]]:
    """An HTTPS server whose certificate names ``chime.test`` only; and a context trusting it."""
    cert, key = tmp_path / "cert.pem", tmp_path / "key.pem"
    subprocess.run(
        [
            "openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1",
            "-keyout", str(key), "-out", str(cert), "-subj", "/CN=chime.test",
            "-addext", "subjectAltName=DNS:chime.test",
        ],
        check=True,
        capture_output=True,
    )  # fmt: skip

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            body = b'{"tls": true}'
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, format: str, *args: Any) -> None:
            return

    httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    server_ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    server_ctx.load_cert_chain(cert, key)
    httpd.socket = server_ctx.wrap_socket(httpd.socket, server_side=True)
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    try:
        yield int(httpd.server_address[1]), ssl.create_default_context(cafile=str(cert))
    finally:
        httpd.shutdown()
        httpd.server_close()


def test_tls_checks_the_certificate_against_the_host_name_not_the_address(
    tls_server: tuple[int, ssl.SSLContext],
) -> None:
    port, trust = tls_server
    seen: list[str] = []
    good = run_steps(
        [http("a", f"https://chime.test:{port}/")],
        resolve=pinned(["127.0.0.1"], seen),
        verify=trust,
    )
    assert good.succeeded, good.error
    assert good.steps[0]["output"]["body"] == {"tls": True}
    # the same address under a name the certificate does not carry is refused
    bad = run_steps(
        [http("a", f"https://other.test:{port}/")],
        resolve=pinned(["127.0.0.1"], seen),
        verify=trust,
    )
    assert not bad.succeeded
    assert "CERTIFICATE_VERIFY_FAILED" in bad.steps[0]["error"]


def test_a_timed_out_step_closes_its_connection(sink: AsyncSink) -> None:
    threads_before = threading.active_count()
    task = worker_task()
    run = make_run(task)
    pipeline = parse_pipeline(
        {
            "steps": [
                {
                    "name": "hang",
                    "action": "http.request",
                    "params": {"url": f"{sink.url}/hang/h1"},
                    "timeout_seconds": 0.3,
                }
            ]
        }
    )

    async def go() -> tuple[Any, int, bool]:
        settings = Settings(http_allow=(LOOPBACK,))
        policy = egress_policy(settings)
        async with make_client(policy, 10) as client:
            result = await run_pipeline(pipeline, task, run, settings, http=client, policy=policy)
            transport = client._transport
            assert isinstance(transport, PinnedTransport)
            open_now = transport.connections()
            # the sink sees the client hang up while the client (and its pool) is still open
            for _ in range(500):
                if "h1" in sink.record.disconnected:
                    break
                await asyncio.sleep(0.01)
            return result, open_now, "h1" in sink.record.disconnected

    result, open_after, disconnected = asyncio.run(go())
    assert result.steps[0]["error"] == "timed out after 0.3s"
    assert open_after == 0
    assert disconnected
    assert threading.active_count() == threads_before


def test_a_large_templated_json_body_renders_off_the_loop(sink: AsyncSink) -> None:
    # a JSON body of 40,000 templates: too large to render on the loop
    body = {"items": ["{{ run.id }}"] * 40_000}
    steps = [
        {
            "name": "big",
            "action": "http.request",
            "params": {"url": f"{sink.url}/x", "method": "POST", "json": body},
        }
    ]
    task = worker_task(steps)
    run = make_run(task)
    pipeline = parse_pipeline(task.payload)

    async def go() -> tuple[Any, int]:
        ticks = 0
        running = True

        async def ticker() -> None:
            nonlocal ticks
            while running:
                await asyncio.sleep(0.001)
                ticks += 1

        beat = asyncio.create_task(ticker())
        await asyncio.sleep(0.01)
        before = ticks
        settings = Settings(http_allow=(LOOPBACK,))
        policy = egress_policy(settings)
        async with make_client(policy, 10) as client:
            result = await run_pipeline(pipeline, task, run, settings, http=client, policy=policy)
        during = ticks - before
        running = False
        await beat
        return result, during

    started = time.monotonic()
    result, during = asyncio.run(go())
    assert result.succeeded, result.error
    assert sink.record.calls["x"] == 1
    # other coroutines ran while the template rendered
    assert during >= 3, (during, time.monotonic() - started)


def test_a_cookie_one_run_receives_is_not_sent_by_the_next(http_server: LocalServer) -> None:
    # /json answers with Set-Cookie; the shared client must not keep it for the next request
    result = run_steps([http("a", f"{http_server.url}/json"), http("b", f"{http_server.url}/echo")])
    assert result.succeeded
    assert "cookie" not in result.steps[1]["output"]["body"]["headers"]
