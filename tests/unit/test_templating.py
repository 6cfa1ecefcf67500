"""Rendering templates at run time: raw values, embedded text, and missing values."""

from typing import Any

import pytest

from app.core.templating import TemplateError, render, render_string

CTX: dict[str, Any] = {
    "task": {"id": "t-1"},
    "run": {"id": "r-1", "attempt": 2, "scheduled_for": "2026-01-01T00:00:00.000Z"},
    "event": {"name": "invoice.paid", "data": {"amount": 12.5, "tags": ["a", "b"]}},
    "steps": {
        "fetch": {"output": {"status": 200, "body": {"items": [{"id": 7}], "ok": True}}},
        "say": {"output": "hello"},
    },
}


@pytest.mark.parametrize(
    ("text", "value"),
    [
        ("{{ task.id }}", "t-1"),
        ("{{run.attempt}}", 2),
        ("{{ run.scheduled_for }}", "2026-01-01T00:00:00.000Z"),
        ("{{ event.name }}", "invoice.paid"),
        ("{{ event.data.amount }}", 12.5),
        ("{{ event.data }}", {"amount": 12.5, "tags": ["a", "b"]}),
        ("{{ steps.fetch.output.status }}", 200),
        ("{{ steps.fetch.output.body.items.0.id }}", 7),
        ("{{ steps.say.output }}", "hello"),
    ],
)
def test_a_lone_template_yields_the_raw_value(text: str, value: Any) -> None:
    assert render_string(text, CTX) == value


def test_embedded_templates_become_text() -> None:
    text = (
        "run {{ run.id }} try {{ run.attempt }} tags={{ event.data.tags }}"
        " ok={{ steps.fetch.output.body.ok }}"
    )
    assert render_string(text, CTX) == 'run r-1 try 2 tags=["a","b"] ok=true'


def test_strings_without_templates_and_lone_braces_stay_as_they_are() -> None:
    assert render_string("plain {{ text", CTX) == "plain {{ text"
    assert render_string("{x}", CTX) == "{x}"


def test_render_walks_objects_and_lists_and_keeps_other_values() -> None:
    value = {"a": ["{{ task.id }}", 3, None], "b": {"c": "{{ steps.fetch.output.status }}"}}
    assert render(value, CTX) == {"a": ["t-1", 3, None], "b": {"c": 200}}


@pytest.mark.parametrize(
    "text",
    [
        "{{ event.data.missing }}",
        "{{ steps.fetch.output.body.items.3.id }}",
        "{{ steps.fetch.output.body.items.x }}",
        "x {{ steps.say.output.field }}",
        "{{ steps.nope.output }}",
    ],
)
def test_a_missing_value_is_an_error(text: str) -> None:
    with pytest.raises(TemplateError) as exc:
        render_string(text, CTX)
    assert "has no" in exc.value.reason


def test_a_run_without_event_has_no_event_values() -> None:
    ctx = {**CTX, "event": None}
    with pytest.raises(TemplateError):
        render_string("{{ event.name }}", ctx)
