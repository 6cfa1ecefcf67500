"""Pipeline validation: what POST /tasks accepts and the field each refusal names."""

from typing import Any

import pytest

from app.core.actions import ACTION_PARAMS, HttpRequestParams
from app.core.errors import PipelineError
from app.core.pipeline import (
    DEFAULT_STEP_TIMEOUT,
    MAX_STEP_TIMEOUT,
    load_pipeline,
    parse_params,
    parse_pipeline,
    pipeline_payload,
)


def step(name: str = "s", action: str = "log", **kw: Any) -> dict[str, Any]:
    params = kw.pop("params", {"message": "hi"} if action == "log" else {})
    return {"name": name, "action": action, "params": params, **kw}


def test_a_pipeline_of_every_action_parses_with_defaults_filled() -> None:
    payload = {
        "steps": [
            step("get", "http.request", params={"url": "https://example.com/x?a=1"}),
            step("say", "log", params={"message": "got {{ steps.get.output.status }}"}),
            step("nap", "sleep", params={"seconds": 1}, timeout_seconds=2),
            step(
                "tell",
                "event.emit",
                params={"name": "done", "data": {"body": "{{ steps.get.output.body }}"}},
            ),
            step("boom", "fail", params={}),
        ]
    }
    p = parse_pipeline(payload)
    assert [s.name for s in p.steps] == ["get", "say", "nap", "tell", "boom"]
    assert p.steps[0].timeout_seconds == DEFAULT_STEP_TIMEOUT
    assert p.steps[2].timeout_seconds == 2.0
    assert p.max_seconds == 4 * DEFAULT_STEP_TIMEOUT + 2
    stored = pipeline_payload(p)
    assert stored["steps"][0]["timeout_seconds"] == DEFAULT_STEP_TIMEOUT
    assert load_pipeline(stored) == p


def test_params_default_to_empty_object() -> None:
    p = parse_pipeline({"steps": [{"name": "x", "action": "fail"}]})
    assert p.steps[0].params == {}


@pytest.mark.parametrize(
    ("payload", "field", "fragment"),
    [
        (None, "payload", "object"),
        ([], "payload", "object"),
        ({}, "payload.steps", "required"),
        ({"steps": []}, "payload.steps", "1..50"),
        ({"steps": [step(f"s{i}") for i in range(51)]}, "payload.steps", "got 51"),
        ({"steps": [step()], "extra": 1}, "payload.extra", "unknown"),
        ({"steps": ["log"]}, "payload.steps[0]", "object"),
        ({"steps": [step(), step("t", other=1)]}, "payload.steps[1].other", "unknown"),
        ({"steps": [step(""), step()]}, "payload.steps[0].name", "letters"),
        ({"steps": [step("a.b")]}, "payload.steps[0].name", "letters"),
        ({"steps": [step("x" * 65)]}, "payload.steps[0].name", "letters"),
        ({"steps": [step("a"), step("a")]}, "payload.steps[1].name", "duplicate"),
        ({"steps": [step(action="shell")]}, "payload.steps[0].action", "unknown action"),
        ({"steps": [step(action=None)]}, "payload.steps[0].action", "unknown action"),
        ({"steps": [step(timeout_seconds=0)]}, "payload.steps[0].timeout_seconds", "> 0"),
        ({"steps": [step(timeout_seconds=-1)]}, "payload.steps[0].timeout_seconds", "> 0"),
        (
            {"steps": [step(timeout_seconds=MAX_STEP_TIMEOUT + 1)]},
            "payload.steps[0].timeout_seconds",
            "at most",
        ),
        ({"steps": [step(timeout_seconds="5")]}, "payload.steps[0].timeout_seconds", "number"),
        ({"steps": [step(timeout_seconds=True)]}, "payload.steps[0].timeout_seconds", "number"),
        ({"steps": [step(params=[1])]}, "payload.steps[0].params", "object"),
    ],
)
def test_malformed_pipelines_name_the_field(payload: Any, field: str, fragment: str) -> None:
    with pytest.raises(PipelineError) as exc:
        parse_pipeline(payload)
    assert exc.value.field == field
    assert fragment in exc.value.reason


@pytest.mark.parametrize(
    ("action", "params", "field", "fragment"),
    [
        ("http.request", {}, "url", "missing required field"),
        ("http.request", {"url": 5}, "url", "Expected `str`"),
        ("http.request", {"url": "ftp://x/y"}, "url", "http"),
        ("http.request", {"url": "/relative"}, "url", "http"),
        ("http.request", {"url": "http://h:99999/"}, "url", "valid URL"),
        ("http.request", {"url": "http://h/", "method": "BREW"}, "method", "one of"),
        ("http.request", {"url": "http://h/", "headers": {"a": 1}}, "headers[...]", "str"),
        ("http.request", {"url": "http://h/", "json": {}, "body": "x"}, "body", "not both"),
        ("http.request", {"url": "http://h/", "expect_status": 42}, "expect_status", "HTTP"),
        (
            "http.request",
            {"url": "http://h/", "expect_status": [200, 700]},
            "expect_status",
            "HTTP",
        ),
        ("http.request", {"url": "http://h/", "expect_status": "200"}, "expect_status", "Expected"),
        ("http.request", {"url": "http://h/", "verb": "GET"}, "verb", "unknown field"),
        ("log", {}, "message", "missing required field"),
        ("log", {"message": 3}, "message", "Expected `str`"),
        ("sleep", {"seconds": -1}, "seconds", ">= 0"),
        ("sleep", {"seconds": "1"}, "seconds", "Expected"),
        ("sleep", {"seconds": 31}, "seconds", "timeout_seconds"),
        ("event.emit", {"data": {}}, "name", "missing required field"),
        ("event.emit", {"name": ""}, "name", "length"),
        ("event.emit", {"name": "x", "data": [1]}, "data", "Expected `object`"),
        ("fail", {"message": None}, "message", "Expected `str`"),
    ],
)
def test_bad_params_name_the_param(
    action: str, params: dict[str, Any], field: str, fragment: str
) -> None:
    with pytest.raises(PipelineError) as exc:
        parse_pipeline({"steps": [{"name": "a", "action": action, "params": params}]})
    assert exc.value.field == f"payload.steps[0].params.{field}"
    assert fragment in exc.value.reason


def test_a_later_step_can_sleep_as_long_as_its_own_timeout() -> None:
    p = parse_pipeline(
        {"steps": [step("a", "sleep", params={"seconds": 100}, timeout_seconds=100)]}
    )
    assert p.steps[0].params == {"seconds": 100}


def test_http_method_is_case_insensitive_and_status_lists_are_accepted() -> None:
    params = parse_params(
        "http.request",
        {"url": "http://h/", "method": "post", "expect_status": [200, 404]},
        "p",
    )
    assert isinstance(params, HttpRequestParams)
    assert params.method == "POST"
    assert params.accepts(404)
    assert not params.accepts(201)
    default = parse_params("http.request", {"url": "http://h/"}, "p")
    assert isinstance(default, HttpRequestParams)
    assert default.accepts(204)
    assert not default.accepts(301)


@pytest.mark.parametrize(
    ("text", "fragment"),
    [
        ("{{ nothing.here }}", "unknown root"),
        ("{{ task.title }}", "unknown field"),
        ("{{ run.status }}", "unknown field"),
        ("{{ run }}", "unknown field"),
        ("{{ event.kind }}", "unknown field"),
        ("{{ event.name.x }}", "unknown field"),
        ("{{ steps.later.output }}", "no earlier step"),
        ("{{ steps.me.output }}", "no earlier step"),
        ("{{ steps.first }}", "steps.NAME.output"),
        ("{{ steps.first.status }}", "steps.NAME.output"),
        ("{{ }}", "malformed"),
        ("{{ run..id }}", "malformed"),
        ("{{ run.id + 1 }}", "malformed"),
    ],
)
def test_templates_are_checked_statically(text: str, fragment: str) -> None:
    payload = {
        "steps": [
            step("first"),
            step("me", "http.request", params={"url": "http://h/", "headers": {"X-A": text}}),
            step("later"),
        ]
    }
    with pytest.raises(PipelineError) as exc:
        parse_pipeline(payload)
    assert exc.value.field == "payload.steps[1].params.headers.X-A"
    assert fragment in exc.value.reason


def test_templates_inside_lists_and_json_are_checked() -> None:
    payload = {
        "steps": [
            step("a", "http.request", params={"url": "http://h/", "json": {"l": ["ok", "{{ x }}"]}})
        ]
    }
    with pytest.raises(PipelineError) as exc:
        parse_pipeline(payload)
    assert exc.value.field == "payload.steps[0].params.json.l[1]"


def test_valid_templates_pass_and_skip_url_checks() -> None:
    payload = {
        "steps": [
            step("first", params={"message": "{{ task.id }} {{ run.id }} {{run.attempt}}"}),
            step(
                "call",
                "http.request",
                params={
                    "url": "{{ event.data.callback }}",
                    "json": {
                        "when": "{{ run.scheduled_for }}",
                        "name": "{{ event.name }}",
                        "all": "{{ event.data }}",
                        "prev": "{{ steps.first.output }}",
                        "deep": "{{ steps.first.output.items.0.id }}",
                    },
                },
            ),
        ]
    }
    assert len(parse_pipeline(payload).steps) == 2


def test_every_action_has_a_params_struct() -> None:
    assert set(ACTION_PARAMS) == {"http.request", "log", "sleep", "event.emit", "fail"}
