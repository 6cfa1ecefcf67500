"""Bounds a pipeline cannot pass: rendered size (stopped while it is built), params depth
(refused at create), and the headers a step may set."""

import re
import tracemalloc
from typing import Any

import pytest

from app.core.errors import PipelineError
from app.core.pipeline import MAX_PARAMS_DEPTH, parse_pipeline, secret_names
from app.core.templating import RENDER_LIMIT, TemplateError, render, render_string

MIB = 1024 * 1024


def nested(depth: int) -> dict[str, Any]:
    """Params whose innermost object is at ``depth`` (the params object is level 1)."""
    value: dict[str, Any] = {}
    for _ in range(depth - 1):
        value = {"a": value}
    return value


def http_step(**params: Any) -> dict[str, Any]:
    return {"name": "call", "action": "http.request", "params": {"url": "https://h/", **params}}


def test_expansion_stops_as_soon_as_the_result_would_pass_its_limit() -> None:
    # 9 KB of templates over a 1 MiB output: about 450 MiB if built, then checked
    ctx = {"steps": {"a": {"output": "x" * MIB}}}
    text = "{{ steps.a.output }}" * 450
    tracemalloc.start()
    try:
        with pytest.raises(TemplateError, match=f"would pass {RENDER_LIMIT} characters"):
            render({"body": text}, ctx)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    # one copy of the output is looked up and joined at most; nothing near 450 MiB
    assert peak < 3 * MIB, peak


def test_raw_values_repeated_count_towards_the_limit_too() -> None:
    ctx = {"steps": {"a": {"output": {"blob": "y" * MIB}}}}
    # each lone template is the same 1 MiB object; the request body would be 11 copies of it
    with pytest.raises(TemplateError, match="rendering stopped"):
        render({"json": ["{{ steps.a.output }}"] * 11}, ctx)
    ten = render({"json": ["{{ steps.a.output }}"] * 9}, ctx)
    assert len(ten["json"]) == 9


def test_a_small_limit_stops_at_the_first_piece_past_it() -> None:
    ctx = {"run": {"id": "r" * 10}}
    assert render_string("{{ run.id }}-{{ run.id }}", ctx, limit=21) == "r" * 10 + "-" + "r" * 10
    with pytest.raises(TemplateError):
        render_string("{{ run.id }}-{{ run.id }}", ctx, limit=20)


def test_params_nested_32_levels_pass_and_33_are_refused_naming_the_field() -> None:
    parse_pipeline({"steps": [http_step(json=nested(MAX_PARAMS_DEPTH - 1))]})
    with pytest.raises(PipelineError) as exc:
        parse_pipeline({"steps": [http_step(json=nested(MAX_PARAMS_DEPTH))]})
    assert exc.value.field == "payload.steps[0].params.json" + ".a" * (MAX_PARAMS_DEPTH - 1)
    assert exc.value.reason == f"nested deeper than {MAX_PARAMS_DEPTH} levels"
    # lists count as levels too, and a depth no recursion could walk is refused all the same
    deep: Any = []
    for _ in range(5000):
        deep = [deep]
    with pytest.raises(PipelineError, match="nested deeper"):
        parse_pipeline({"steps": [http_step(json=deep)]})


@pytest.mark.parametrize(
    "name",
    [
        "Host", "host", "Content-Length", "Transfer-Encoding", "Connection", "Keep-Alive",
        "Upgrade", "TE", "Trailer", "Expect", "Proxy-Authorization", "proxy-connection",
    ],
)  # fmt: skip
def test_framing_and_routing_headers_are_refused_at_create(name: str) -> None:
    with pytest.raises(PipelineError) as exc:
        parse_pipeline({"steps": [http_step(headers={name: "x"})]})
    assert exc.value.field == f"payload.steps[0].params.headers.{name}"
    assert "frames or routes the request" in exc.value.reason


@pytest.mark.parametrize(
    ("headers", "reason"),
    [
        ({"X-A": "one\r\nX-Injected: two"}, "CR, LF or NUL"),
        ({"X-A": "trailing\n"}, "CR, LF or NUL"),
        ({"X A": "v"}, "not a valid header name"),
        ({"X-A\n": "v"}, "not a valid header name"),
    ],
)
def test_header_names_and_values_that_would_break_the_request_are_refused(
    headers: dict[str, str], reason: str
) -> None:
    with pytest.raises(PipelineError, match=reason):
        parse_pipeline({"steps": [http_step(headers=headers)]})


def test_secret_templates_are_checked_and_listed_with_their_field() -> None:
    payload = parse_pipeline(
        {
            "steps": [
                http_step(headers={"Authorization": "Bearer {{ secrets.API_KEY }}"}),
                {"name": "l", "action": "log", "params": {"message": "{{secrets.other_1}}"}},
            ]
        }
    )
    from app.core.pipeline import pipeline_payload

    assert secret_names(pipeline_payload(payload)) == [
        ("payload.steps[0].params.headers.Authorization", "API_KEY"),
        ("payload.steps[1].params.message", "other_1"),
    ]
    for bad in ("{{ secrets }}", "{{ secrets.a.b }}", "{{ secrets.bad-name }}"):
        with pytest.raises(PipelineError, match=re.escape("expected secrets.NAME")):
            parse_pipeline({"steps": [http_step(headers={"X": bad})]})
