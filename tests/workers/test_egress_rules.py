"""Egress through the worker's own client, in process: every spelling refused by default and
reached through the matching ``CHIME_HTTP_ALLOW`` entry, a rebinding resolver, allowed names
that resolve to loopback, and what a redirect to another origin may carry.

Addresses nobody here can reach (``10.0.0.1``, ``fc00::1``) are "reached" through a network
backend that records the address the client connected to and opens the socket to the local
server instead: what is asserted is the address the checked connection went to.
"""

import socket
from typing import Any

import httpcore
import pytest
from httpcore._backends.auto import AutoBackend

from app.settings import Settings
from tests.support.egress import SPELLINGS
from tests.support.workers import LOOPBACK, LocalServer, http, run_steps


class Recording(httpcore.AsyncNetworkBackend):
    """Records each address asked for, and connects to the local server whatever it was."""

    def __init__(self, port: int) -> None:
        self.port = port
        self.asked: list[str] = []
        self.inner = AutoBackend()

    async def connect_tcp(
        self,
        host: str,
        port: int,
        timeout: float | None = None,
        local_address: str | None = None,
        socket_options: Any = None,
    ) -> httpcore.AsyncNetworkStream:
        self.asked.append(host)
        return await self.inner.connect_tcp("127.0.0.1", self.port, timeout, local_address)

    async def sleep(self, seconds: float) -> None:
        await self.inner.sleep(seconds)


def pinned(addresses: list[str]) -> Any:
    async def resolve(host: str, port: int) -> list[str]:
        return addresses

    return resolve


@pytest.mark.parametrize(("host", "address", "kind", "entry"), SPELLINGS)
def test_each_spelling_is_refused_by_default_and_reached_through_its_entry(
    http_server: LocalServer, host: str, address: str, kind: str, entry: str
) -> None:
    url = f"http://{host}:{http_server.port}/echo"
    net = Recording(http_server.port)
    refused = run_steps([http("a", url)], settings=Settings(), network=net)
    assert not refused.succeeded
    assert f"{address}, a" in refused.steps[0]["error"]
    assert "not allowed by the default egress policy" in refused.steps[0]["error"]
    assert net.asked == [] and http_server.recorder.requests == []

    allowed = run_steps([http("a", url)], settings=Settings(http_allow=(entry,)), network=net)
    assert allowed.succeeded, allowed.error
    assert net.asked == [address]
    assert len(http_server.recorder.requests) == 1


def test_a_rebinding_resolver_never_reaches_its_second_answer(
    http_server: LocalServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    answers = iter(["93.184.216.34", "127.0.0.1", "127.0.0.1"])
    lookups: list[str] = []

    def getaddrinfo(host: str, port: Any, *args: Any, **kw: Any) -> list[Any]:
        lookups.append(host)
        address = next(answers)
        return [(socket.AF_INET, socket.SOCK_STREAM, 6, "", (address, port or 0))]

    monkeypatch.setattr(socket, "getaddrinfo", getaddrinfo)
    net = Recording(http_server.port)
    result = run_steps(
        [
            # the first connection: one lookup, public, connected to what was checked
            http("first", f"http://rebind.test:{http_server.port}/echo"),
            # another origin, so a new connection and a new lookup: now loopback
            http("second", "http://rebind.test:81/echo"),
        ],
        settings=Settings(),
        network=net,
    )
    assert result.steps[0]["status"] == "succeeded"
    assert lookups == ["rebind.test", "rebind.test"]  # no second lookup for one connection
    assert net.asked == ["93.184.216.34"]
    assert "host rebind.test resolves to 127.0.0.1, a loopback address" in result.steps[1]["error"]
    assert len(http_server.recorder.requests) == 1


def test_an_allowed_name_resolving_to_loopback_is_refused_unless_loopback_is_allowed(
    http_server: LocalServer,
) -> None:
    url = f"http://api.example.test:{http_server.port}/echo"
    refused = run_steps(
        [http("a", url)],
        settings=Settings(http_allow=("api.example.test",)),
        resolve=pinned(["127.0.0.1"]),
    )
    assert "resolves to 127.0.0.1, a loopback address: not allowed by" in refused.steps[0]["error"]
    assert http_server.recorder.requests == []
    reached = run_steps(
        [http("a", url)],
        settings=Settings(http_allow=("api.example.test", "127.0.0.0/8")),
        resolve=pinned(["127.0.0.1"]),
    )
    assert reached.succeeded, reached.error
    assert len(http_server.recorder.requests) == 1


# -- redirects -------------------------------------------------------------------------------

#: the local server under another name: another origin, the same socket
OTHER = "other.test"


def redirect(server: LocalServer, code: int, to: str) -> str:
    return f"{server.url}/redirect?code={code}&to={to}"


def run_loopback(steps: list[dict[str, Any]]) -> Any:
    return run_steps(
        steps, settings=Settings(http_allow=(LOOPBACK,)), resolve=pinned(["127.0.0.1"])
    )


@pytest.mark.parametrize(("code", "method"), [(307, "POST"), (308, "PUT"), (301, "PUT")])
def test_a_body_is_never_sent_to_another_origin(
    http_server: LocalServer, code: int, method: str
) -> None:
    other = f"http://{OTHER}:{http_server.port}/echo"
    result = run_loopback(
        [http("a", redirect(http_server, code, other), method=method, json={"card": "4111"})]
    )
    error = result.steps[0]["error"]
    assert f"refused: a {code} redirect to another origin" in error
    assert f"would send the {method} body there" in error
    assert [r["path"] for r in http_server.recorder.requests] == ["/redirect"]


def test_a_hop_to_another_origin_carries_none_of_the_step_s_headers(
    http_server: LocalServer,
) -> None:
    other = f"http://{OTHER}:{http_server.port}/echo"
    result = run_loopback(
        [
            http(
                "a",
                redirect(http_server, 303, other),
                method="POST",
                headers={"X-Auth": "k-123", "Authorization": "Bearer t", "Chime-Signature": "f"},
                json={"card": "4111"},
            )
        ]
    )
    assert result.succeeded, result.error
    first, second = http_server.recorder.requests
    assert first["headers"]["X-Auth"] == "k-123" and first["body"] == '{"card": "4111"}'
    assert "Chime-Signature" not in first["headers"]  # only the worker signs
    assert second["method"] == "GET" and second["body"] == ""
    assert second["headers"]["Host"] == f"{OTHER}:{http_server.port}"
    sent = {k.lower() for k in second["headers"]}
    assert not sent & {"x-auth", "authorization", "content-type", "chime-signature"}
    assert {"chime-run-id", "chime-task-id", "chime-attempt"} <= sent


def test_the_same_origin_keeps_headers_and_a_307_body(http_server: LocalServer) -> None:
    result = run_loopback(
        [
            http(
                "a",
                redirect(http_server, 307, "/echo"),
                method="POST",
                headers={"X-Auth": "k-123"},
                body="payload",
            )
        ]
    )
    assert result.succeeded, result.error
    echoed = result.steps[0]["output"]["body"]
    assert echoed["method"] == "POST" and echoed["body"] == "payload"
    assert echoed["headers"]["x-auth"] == "k-123"


def test_every_redirect_hop_is_checked_against_the_policy(http_server: LocalServer) -> None:
    result = run_steps(
        [http("a", redirect(http_server, 302, f"http://10.0.0.1:{http_server.port}/echo"))],
        settings=Settings(http_allow=(LOOPBACK,)),
    )
    assert "10.0.0.1, a private address: not allowed by CHIME_HTTP_ALLOW" in result.error
    assert [r["path"] for r in http_server.recorder.requests] == ["/redirect"]
