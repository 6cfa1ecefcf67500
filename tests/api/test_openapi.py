"""The OpenAPI document and the declarations it comes from: one task shape, examples that the
server accepts, unions on schedule_kind and action, and the promises the server keeps."""

from typing import Any

import msgspec
import pytest
from litestar.testing import TestClient

from app.api.schemas import TaskChanges, TaskOut
from app.core.actions import ACTION_PARAMS
from app.core.status import ScheduleKind
from app.core.task import Task
from app.core.taskspec import EXAMPLES, INPUT_FIELDS, NULLABLE_FIELDS, TaskSpec
from tests.support.agents import ADMIN, AGENT_A, A
from tests.support.api import assert_400, create


@pytest.fixture
def doc(api: TestClient[Any]) -> dict[str, Any]:
    served: dict[str, Any] = api.get("/schema/openapi.json").json()
    return served


def test_the_task_record_stores_every_declared_field_with_its_default() -> None:
    record = {f.name: f for f in msgspec.inspect.type_info(Task).fields}  # type: ignore[attr-defined]
    for field in msgspec.inspect.type_info(TaskSpec).fields:  # type: ignore[attr-defined]
        assert field.name in record, field.name
        if not field.required:
            assert record[field.name].default == field.default, field.name


def test_put_and_the_response_are_derived_from_the_declaration() -> None:
    assert TaskChanges.__struct_fields__ == INPUT_FIELDS
    assert set(INPUT_FIELDS) <= set(TaskOut.__struct_fields__)
    assert {"schedule_expr", "dedupe_key", "dedupe_window_seconds", "concurrency_key"} == set(
        NULLABLE_FIELDS
    )


@pytest.mark.parametrize("kind", list(ScheduleKind))
def test_each_task_example_is_accepted(api: TestClient[Any], kind: ScheduleKind) -> None:
    body = {**EXAMPLES[kind], "created_by": AGENT_A}
    resp = api.post("/tasks", json=body, headers=A)
    assert resp.status_code == 201, resp.text
    assert resp.json()["schedule_kind"] == kind.value


@pytest.mark.parametrize("action", sorted(ACTION_PARAMS))
def test_each_action_example_is_accepted(api: TestClient[Any], action: str) -> None:
    step = {"name": "s", "action": action, "params": ACTION_PARAMS[action].example}
    if action == "sleep":
        step["timeout_seconds"] = 10
    task = create(api, payload={"steps": [step]})
    assert task["payload"]["steps"][0]["action"] == action


def test_tasks_are_a_union_on_schedule_kind_with_an_example_each(doc: dict[str, Any]) -> None:
    schemas = doc["components"]["schemas"]
    create_body = doc["paths"]["/tasks"]["post"]["requestBody"]["content"]["application/json"]
    assert create_body["schema"] == {"$ref": "#/components/schemas/TaskCreate"}
    assert set(create_body["examples"]) == {k.value for k in ScheduleKind}
    union = schemas["TaskCreate"]
    assert union["discriminator"]["propertyName"] == "schedule_kind"
    assert len(union["oneOf"]) == len(ScheduleKind)
    for kind in ScheduleKind:
        variant = schemas[f"{kind.value.capitalize()}Task"]
        assert variant["additionalProperties"] is False
        assert variant["properties"]["schedule_kind"]["enum"] == [kind.value]
        assert ("schedule_expr" in variant["required"]) is (kind is not ScheduleKind.EVENT)
        assert variant["examples"] == [EXAMPLES[kind]]
        assert variant["properties"]["priority"] == {
            "description": "1 runs first",
            "type": "integer",
            "minimum": 1,
            "maximum": 9,
            "default": 5,
        }
    assert schemas["CronTask"]["properties"]["schedule_expr"]["format"] == "cron"


def test_steps_are_a_union_on_action_with_their_params(doc: dict[str, Any]) -> None:
    schemas = doc["components"]["schemas"]
    steps = schemas["Pipeline"]["properties"]["steps"]
    assert (steps["minItems"], steps["maxItems"]) == (1, 50)
    mapping = steps["items"]["discriminator"]["mapping"]
    assert set(mapping) == set(ACTION_PARAMS)
    for action, params in ACTION_PARAMS.items():
        step = schemas[mapping[action].rsplit("/", 1)[1]]
        assert step["additionalProperties"] is False
        assert step["properties"]["params"]["$ref"].endswith(f"/{params.__name__}")
        assert schemas[params.__name__]["additionalProperties"] is False
        assert schemas[params.__name__]["examples"] == [params.example]


def test_every_operation_documents_its_errors_with_the_error_body(doc: dict[str, Any]) -> None:
    for path, item in doc["paths"].items():
        for method, operation in item.items():
            responses = operation["responses"]
            assert "400" in responses, (method, path)
            if operation.get("security"):
                assert {"401", "503"} <= set(responses), (method, path)
                assert "WWW-Authenticate" in responses["401"]["headers"]
            if "requestBody" in operation:
                assert {"400", "413"} <= set(responses), (method, path)
                ref = operation["requestBody"]["content"]["application/json"]["schema"]["$ref"]
                target = doc["components"]["schemas"][ref.rsplit("/", 1)[1]]
                assert target.get("additionalProperties") is False or "oneOf" in target


def test_an_unknown_query_parameter_is_a_400(api: TestClient[Any]) -> None:
    assert_400(api.get("/tasks?limt=10", headers=A), "limt")
    assert api.get("/tasks?limit=10", headers=A).status_code == 200


def test_a_whole_number_written_as_a_float_is_that_integer(api: TestClient[Any]) -> None:
    task = create(api, priority=2.0, max_retries=0.0)
    assert (task["priority"], task["max_retries"]) == (2, 0)
    assert_400(api.post("/tasks", json={**_body(), "priority": 2.5}, headers=A), "priority")
    step = {"name": "s", "action": "http.request"}
    step["params"] = {"url": "https://example.com/", "expect_status": [200.0, 204]}
    task = create(api, payload={"steps": [step]})
    assert task["payload"]["steps"][0]["params"]["expect_status"] == [200, 204]


def test_options_lists_every_method_of_the_path(api: TestClient[Any]) -> None:
    assert api.options("/tasks", headers=ADMIN).headers["allow"] == "GET, OPTIONS, POST"
    task = create(api)
    allow = api.options(f"/tasks/{task['id']}", headers=ADMIN).headers["allow"]
    assert allow == "GET, OPTIONS, PUT"


def _body() -> dict[str, Any]:
    return {**EXAMPLES[ScheduleKind.CRON], "created_by": AGENT_A}
