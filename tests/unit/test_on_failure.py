"""``payload.on_failure`` in the pipeline model: 1..10 steps, names unique with the steps',
``run.error`` and ``run.failed_step`` readable there only, and left out of a payload without
it."""

from typing import Any

import pytest

from app.core.errors import PipelineError
from app.core.pipeline import parse_pipeline, pipeline_payload, secret_names

STEP = {"name": "s", "action": "log", "params": {"message": "m"}}


def alert(name: str = "a", message: str = "{{ run.failed_step }}: {{ run.error }}") -> Any:
    return {"name": name, "action": "log", "params": {"message": message}}


def refused(payload: Any, field: str) -> str:
    with pytest.raises(PipelineError) as exc:
        parse_pipeline(payload)
    assert exc.value.field == field, exc.value
    return exc.value.reason


def test_on_failure_steps_are_parsed_and_stored_normalized() -> None:
    payload = {"steps": [STEP], "on_failure": [alert(), alert("b", "{{ steps.a.output }}")]}
    stored = pipeline_payload(parse_pipeline(payload))
    assert [s["name"] for s in stored["on_failure"]] == ["a", "b"]
    assert stored["on_failure"][0]["timeout_seconds"] == 30.0
    # a pipeline without it is stored as before
    assert pipeline_payload(parse_pipeline({"steps": [STEP]})) == {
        "steps": [{**STEP, "timeout_seconds": 30.0}]
    }


def test_limits_and_names() -> None:
    assert "1..10" in refused({"steps": [STEP], "on_failure": []}, "payload.on_failure")
    many = [alert(f"a{i}") for i in range(11)]
    refused({"steps": [STEP], "on_failure": many}, "payload.on_failure")
    refused({"steps": [STEP], "on_failure": {"name": "a"}}, "payload.on_failure")
    assert "duplicate" in refused(
        {"steps": [STEP], "on_failure": [alert("s")]}, "payload.on_failure[0].name"
    )
    assert "duplicate" in refused(
        {"steps": [STEP], "on_failure": [alert(), alert()]}, "payload.on_failure[1].name"
    )
    refused(
        {"steps": [STEP], "on_failure": [{**alert(), "action": "nope"}]},
        "payload.on_failure[0].action",
    )
    refused({"steps": [STEP], "later": []}, "payload.later")
    # a name of the wrong type is a 400 like any other bad name
    refused(
        {"steps": [STEP], "on_failure": [{**alert(), "name": {}}]}, "payload.on_failure[0].name"
    )


def test_run_error_and_failed_step_are_read_in_on_failure_steps_only() -> None:
    reason = refused({"steps": [alert("x")]}, "payload.steps[0].params.message")
    assert reason.startswith("{{ run.failed_step }}: unknown field")
    # a main step's output is not there to read: only earlier on_failure steps
    refused(
        {"steps": [STEP], "on_failure": [alert(message="{{ steps.s.output }}")]},
        "payload.on_failure[0].params.message",
    )


def test_secrets_in_on_failure_steps_are_checked_too() -> None:
    payload = {"steps": [STEP], "on_failure": [alert(message="{{ secrets.HOOK }}")]}
    assert secret_names(pipeline_payload(parse_pipeline(payload))) == [
        ("payload.on_failure[0].params.message", "HOOK")
    ]
