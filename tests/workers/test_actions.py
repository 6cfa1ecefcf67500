"""Each built-in action through the pipeline runner, against a local HTTP server (no Redis)."""

import logging
import time
from typing import Any

import pytest

from app.core.actions import ACTION_PARAMS
from app.settings import Settings
from tests.support.workers import LocalServer, http, run_steps
from workers.actions import ACTIONS
from workers.egress import EgressRefused, egress_policy
from workers.pipeline import MAX_OUTPUT_BYTES


def test_every_action_has_a_function_and_every_function_a_params_struct() -> None:
    assert set(ACTIONS) == set(ACTION_PARAMS)


def test_log_outputs_and_logs_the_message(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO, "chime.worker")
    result = run_steps([{"name": "l", "action": "log", "params": {"message": "hello world"}}])
    assert result.succeeded and result.error is None
    (step,) = result.steps
    assert step["status"] == "succeeded"
    assert step["output"] == "hello world"
    assert step["started_at"].endswith("Z") and step["finished_at"].endswith("Z")
    assert step["duration_ms"] >= 0
    (record,) = [r for r in caplog.records if r.getMessage() == "step.log"]
    assert record.__dict__["text"] == "hello world"


def test_sleep_waits_and_fail_fails_and_later_steps_are_skipped() -> None:
    t0 = time.monotonic()
    result = run_steps(
        [
            {"name": "nap", "action": "sleep", "params": {"seconds": 0.2}},
            {"name": "boom", "action": "fail", "params": {"message": "no luck"}},
            {"name": "never", "action": "log", "params": {"message": "x"}},
        ]
    )
    assert time.monotonic() - t0 >= 0.2
    assert not result.succeeded
    assert [s["status"] for s in result.steps] == ["succeeded", "failed", "skipped"]
    assert result.steps[0]["output"] == {"seconds": 0.2}
    assert result.steps[1]["error"] == "no luck"
    assert result.error == "step boom (fail): no luck"


def test_a_step_that_outlives_its_timeout_fails_without_waiting(http_server: LocalServer) -> None:
    t0 = time.monotonic()
    result = run_steps(
        [
            http("slow", f"{http_server.url}/slow?s=3", **{}) | {"timeout_seconds": 0.3},
        ]
    )
    assert time.monotonic() - t0 < 2
    assert result.steps[0]["status"] == "failed"
    assert "timed out after 0.3s" in result.steps[0]["error"]


def test_sleep_stops_when_its_step_times_out() -> None:
    # stored payloads are validated at create time; this one skips it to reach the runtime bound
    t0 = time.monotonic()
    result = run_steps(
        [{"name": "nap", "action": "sleep", "params": {"seconds": 5}, "timeout_seconds": 0.2}],
        validate=False,
    )
    assert time.monotonic() - t0 < 1
    assert result.steps[0]["error"] == "timed out after 0.2s"


def test_event_emit_calls_the_injected_emitter_with_rendered_data() -> None:
    calls: list[tuple[str, dict[str, Any]]] = []

    async def emit(name: str, data: dict[str, Any]) -> dict[str, Any]:
        calls.append((name, data))
        return {"event_id": "e1", "runs": ["r1"]}

    result = run_steps(
        [
            {"name": "a", "action": "log", "params": {"message": "x"}},
            {
                "name": "tell",
                "action": "event.emit",
                "params": {
                    "name": "report.{{ run.attempt }}",
                    "data": {"from": "{{ task.id }}", "said": "{{ steps.a.output }}", "n": 1},
                },
            },
        ],
        emit=emit,
        run={"attempt": 2},
    )
    assert result.succeeded
    assert calls[0][0] == "report.2"
    assert calls[0][1]["said"] == "x" and calls[0][1]["n"] == 1
    assert result.steps[1]["output"] == {"event_id": "e1", "runs": ["r1"]}


def test_event_emit_without_an_emitter_fails_the_step() -> None:
    result = run_steps([{"name": "e", "action": "event.emit", "params": {"name": "x"}}])
    assert "not available" in result.steps[0]["error"]


def test_http_get_parses_json_and_masks_sensitive_response_headers(
    http_server: LocalServer,
) -> None:
    result = run_steps([http("get", f"{http_server.url}/json")])
    out = result.steps[0]["output"]
    assert out["status"] == 200
    assert out["body"] == {"items": [{"id": 7}], "next": "/text"}
    assert out["headers"]["set-cookie"] == "***"
    assert out["headers"]["content-type"] == "application/json"


def test_http_text_body_stays_text(http_server: LocalServer) -> None:
    result = run_steps([http("get", f"{http_server.url}/text")])
    assert result.steps[0]["output"]["body"] == "plain words"


def test_outputs_flow_into_later_steps_with_raw_values(http_server: LocalServer) -> None:
    result = run_steps(
        [
            http("a", f"{http_server.url}/json"),
            http(
                "b",
                f"{http_server.url}/echo",
                method="POST",
                headers={"X-Item": "item-{{ steps.a.output.body.items.0.id }}"},
                json={"id": "{{ steps.a.output.body.items.0.id }}", "run": "{{ run.id }}"},
            ),
            http("c", "{{ steps.b.output.url }}", method="PUT", body="raw {{ task.id }}"),
        ]
    )
    assert result.succeeded, result.error
    echoed = result.steps[1]["output"]["body"]
    assert echoed["method"] == "POST"
    assert echoed["headers"]["x-item"] == "item-7"
    assert echoed["headers"]["content-type"] == "application/json"
    assert '"id": 7' in echoed["body"]
    third = result.steps[2]["output"]["body"]
    assert third["method"] == "PUT" and third["body"].startswith("raw ")


def test_a_template_without_a_value_fails_the_step_at_run_time() -> None:
    result = run_steps([{"name": "l", "action": "log", "params": {"message": "{{ event.name }}"}}])
    assert not result.succeeded
    assert result.steps[0]["error"].startswith("template {{ event.name }}")


def test_a_rendered_value_of_the_wrong_type_fails_the_step(http_server: LocalServer) -> None:
    result = run_steps(
        [
            http("a", f"{http_server.url}/json"),
            {"name": "l", "action": "log", "params": {"message": "{{ steps.a.output.body }}"}},
        ]
    )
    assert "params after templating" in result.steps[1]["error"]


def test_unexpected_status_fails_but_keeps_the_response(http_server: LocalServer) -> None:
    result = run_steps([http("a", f"{http_server.url}/status/404")])
    step = result.steps[0]
    assert step["status"] == "failed"
    assert step["error"] == "unexpected status 404"
    assert step["output"]["status"] == 404
    ok = run_steps([http("a", f"{http_server.url}/status/404", expect_status=[404])])
    assert ok.succeeded


def test_redirects_are_followed_and_303_turns_post_into_get(http_server: LocalServer) -> None:
    base = http_server.url
    result = run_steps(
        [http("a", f"{base}/redirect?code=303&to=/echo", method="POST", json={"x": 1})]
    )
    out = result.steps[0]["output"]
    assert out["url"] == f"{base}/echo"
    assert out["body"]["method"] == "GET" and out["body"]["body"] == ""
    kept = run_steps([http("a", f"{base}/redirect?code=307&to=/echo", method="POST", body="b")])
    assert kept.steps[0]["output"]["body"]["method"] == "POST"
    assert kept.steps[0]["output"]["body"]["body"] == "b"


def test_an_expected_redirect_status_is_not_followed(http_server: LocalServer) -> None:
    result = run_steps([http("a", f"{http_server.url}/redirect?to=/json", expect_status=302)])
    assert result.steps[0]["output"]["status"] == 302
    assert [r["path"] for r in http_server.recorder.requests] == ["/redirect"]


def test_too_many_redirects_fail(http_server: LocalServer) -> None:
    result = run_steps([http("a", f"{http_server.url}/loop")])
    assert result.steps[0]["error"] == "more than 5 redirects"
    assert len(http_server.recorder.requests) == 6


def test_cross_origin_redirects_drop_every_header_the_step_set(http_server: LocalServer) -> None:
    other = f"http://localhost:{http_server.port}/echo"
    result = run_steps(
        [
            http(
                "a",
                f"{http_server.url}/redirect?to={other}",
                headers={"Authorization": "Bearer s3cret", "X-Plain": "kept"},
            )
        ]
    )
    headers = result.steps[0]["output"]["body"]["headers"]
    assert "authorization" not in headers
    assert "x-plain" not in headers
    assert headers["chime-run-id"] and headers["chime-task-id"]


def test_the_allowlist_refuses_other_hosts_before_connecting(http_server: LocalServer) -> None:
    denied = run_steps(
        [http("a", f"{http_server.url}/json")], settings=Settings(http_allow=("example.com",))
    )
    assert "not allowed by CHIME_HTTP_ALLOW" in denied.steps[0]["error"]
    assert http_server.recorder.requests == []
    allowed = run_steps(
        [http("a", f"{http_server.url}/json")], settings=Settings(http_allow=("127.0.0.0/8",))
    )
    assert allowed.succeeded


def test_a_redirect_to_a_host_the_allowlist_denies_is_not_followed(
    http_server: LocalServer,
) -> None:
    result = run_steps(
        [http("a", f"{http_server.url}/redirect?to=http://127.0.0.2:{http_server.port}/json")],
        settings=Settings(http_allow=("127.0.0.1",)),
    )
    assert "127.0.0.2, a loopback address: not allowed by" in result.steps[0]["error"]
    assert [r["path"] for r in http_server.recorder.requests] == ["/redirect"]


def test_a_redirect_to_the_metadata_address_is_refused(http_server: LocalServer) -> None:
    result = run_steps(
        [http("a", f"{http_server.url}/redirect?to=http://169.254.169.254/latest/meta-data")]
    )
    assert "169.254.169.254, a link-local address" in result.steps[0]["error"]


@pytest.mark.parametrize(
    ("url", "addresses"),
    [
        ("http://169.254.169.254/", ["169.254.169.254"]),
        ("http://[fe80::1]/", ["fe80::1"]),
        ("http://metadata.internal/", ["10.0.0.1", "169.254.169.254"]),
        ("http://mapped.internal/", ["::ffff:169.254.1.1"]),
        ("http://aws6.internal/", ["fd00:ec2::254"]),
    ],
)
def test_link_local_and_metadata_addresses_are_refused(url: str, addresses: list[str]) -> None:
    host = url.split("//")[1].split("/")[0].strip("[]")
    with pytest.raises(EgressRefused, match="link-local"):
        egress_policy(Settings()).check_addresses(host, addresses)
    # neither a pattern that matches the host nor the widest blocks open metadata addresses
    policy = egress_policy(Settings(http_allow=("*", "0.0.0.0/0", "::/0")))
    with pytest.raises(EgressRefused, match="link-local"):
        policy.check_addresses(host, addresses)


def test_ordinary_addresses_pass_the_egress_check() -> None:
    egress_policy(Settings()).check_addresses("api.example.com", ["93.184.216.34"])
    policy = egress_policy(Settings(http_allow=("*.internal", "10.0.0.0/8")))
    policy.check_url("http://h.internal:8080/")
    policy.check_addresses("h.internal", ["10.1.2.3"])


def test_large_outputs_are_truncated_once_serialized(http_server: LocalServer) -> None:
    result = run_steps([http("a", f"{http_server.url}/big?n=100000")])
    step = result.steps[0]
    assert step["output_truncated"] is True
    assert isinstance(step["output"], str)
    assert len(step["output"].encode()) <= MAX_OUTPUT_BYTES


def test_connection_errors_fail_the_step() -> None:
    from app.embedded_redis import free_port

    result = run_steps([http("a", f"http://127.0.0.1:{free_port()}/")])
    assert "ConnectError" in result.steps[0]["error"]
