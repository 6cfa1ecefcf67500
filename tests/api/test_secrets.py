"""``/secrets`` and ``POST /agents/me/signing-key``: per agent, values never shown, sealed at
rest; tasks may name only secrets their agent has; deep params never get stored."""

from collections.abc import Iterator
from typing import Any

import pytest
import redis
from litestar.testing import TestClient

from app.api.app import create_app
from app.settings import Settings
from tests.support.agents import (
    ADMIN,
    ADMIN_TOKEN,
    AGENT_A,
    AGENT_B,
    SECRET_KEY,
    TOKEN_A,
    TOKEN_B,
    A,
    B,
)
from tests.support.api import assert_400, task_body

VALUE = "sk_live_Zq81-value-of-a"


@pytest.fixture
def sapi(redis_url: str) -> Iterator[TestClient[Any]]:
    settings = Settings.from_env(
        {
            "REDIS_URL": redis_url,
            "CHIME_AGENT_TOKENS": f"{AGENT_A}:{TOKEN_A},{AGENT_B}:{TOKEN_B}",
            "CHIME_ADMIN_TOKEN": ADMIN_TOKEN,
            "CHIME_SECRET_KEY": SECRET_KEY,
        }
    )
    with TestClient(create_app(settings)) as client:
        yield client


def uses_secret(name: str, where: str = "headers") -> dict[str, Any]:
    params: dict[str, Any] = {"url": "https://hooks.example.com/x"}
    if where == "headers":
        params["headers"] = {"Authorization": f"Bearer {{{{ secrets.{name} }}}}"}
    else:
        params["json"] = {"deep": [{"k": f"{{{{ secrets.{name} }}}}"}]}
    return {"steps": [{"name": "call", "action": "http.request", "params": params}]}


def test_put_list_delete_for_the_calling_agent_only(sapi: TestClient[Any], r: redis.Redis) -> None:
    assert sapi.put("/secrets/API_KEY", json={"value": VALUE}, headers=A).status_code == 204
    assert sapi.put("/secrets/other_1", json={"value": "x"}, headers=A).status_code == 204
    listed = sapi.get("/secrets", headers=A)
    assert listed.status_code == 200
    items = listed.json()["items"]
    assert [i["name"] for i in items] == ["API_KEY", "other_1"]
    assert all(set(i) == {"name", "updated_at"} and i["updated_at"].endswith("Z") for i in items)
    assert VALUE not in listed.text
    # another agent sees none of them and cannot delete them
    assert sapi.get("/secrets", headers=B).json() == {"items": []}
    assert sapi.delete("/secrets/API_KEY", headers=B).status_code == 404
    # replacing keeps one entry; deleting removes it; a second delete is 404
    assert sapi.put("/secrets/API_KEY", json={"value": VALUE + "2"}, headers=A).status_code == 204
    assert len(sapi.get("/secrets", headers=A).json()["items"]) == 2
    assert sapi.delete("/secrets/API_KEY", headers=A).status_code == 204
    assert sapi.delete("/secrets/API_KEY", headers=A).status_code == 404
    assert [i["name"] for i in sapi.get("/secrets", headers=A).json()["items"]] == ["other_1"]
    # at rest: sealed, never the value
    dump = repr({k: r.dump(k) for k in r.keys("*")})
    assert VALUE not in dump and "value-of-a" not in dump


@pytest.mark.parametrize(
    ("name", "body", "field"),
    [
        ("bad-name", {"value": "v"}, "name"),
        ("x" * 65, {"value": "v"}, "name"),
        ("OK", {"value": ""}, "value"),
        ("OK", {"value": "v" * 8193}, "value"),
        ("OK", {"value": 5}, "value"),
        ("OK", {"value": "v", "extra": 1}, "extra"),
        ("OK", {}, "value"),
    ],
)
def test_bad_names_and_values_are_400_naming_the_field(
    sapi: TestClient[Any], name: str, body: dict[str, Any], field: str
) -> None:
    assert_400(sapi.put(f"/secrets/{name}", json=body, headers=A), field)


def test_the_largest_value_is_taken(sapi: TestClient[Any]) -> None:
    assert sapi.put("/secrets/BIG", json={"value": "v" * 8192}, headers=A).status_code == 204


def test_without_chime_secret_key_put_is_503_naming_it(api: TestClient[Any]) -> None:
    resp = api.put("/secrets/API_KEY", json={"value": VALUE}, headers=A)
    assert resp.status_code == 503
    assert "CHIME_SECRET_KEY" in resp.json()["detail"]
    assert api.get("/secrets", headers=A).json() == {"items": []}


def test_the_admin_token_has_no_secrets_nor_signing_key(sapi: TestClient[Any]) -> None:
    assert sapi.put("/secrets/X", json={"value": "v"}, headers=ADMIN).status_code == 403
    assert sapi.get("/secrets", headers=ADMIN).status_code == 403
    assert sapi.delete("/secrets/X", headers=ADMIN).status_code == 403
    assert sapi.post("/agents/me/signing-key", headers=ADMIN).status_code == 403
    assert sapi.get("/secrets").status_code == 401


@pytest.mark.parametrize("where", ["headers", "json"])
def test_a_task_may_name_only_secrets_its_agent_has(sapi: TestClient[Any], where: str) -> None:
    resp = sapi.post("/tasks", json=task_body(payload=uses_secret("API_KEY", where)), headers=A)
    field = (
        "payload.steps[0].params.headers.Authorization"
        if where == "headers"
        else "payload.steps[0].params.json.deep[0].k"
    )
    assert_400(resp, field)
    assert "no secret named 'API_KEY'" in resp.json()["detail"]
    sapi.put("/secrets/API_KEY", json={"value": VALUE}, headers=B)  # another agent's: no use
    assert (
        sapi.post(
            "/tasks", json=task_body(payload=uses_secret("API_KEY", where)), headers=A
        ).status_code
        == 400
    )
    sapi.put("/secrets/API_KEY", json={"value": VALUE}, headers=A)
    created = sapi.post("/tasks", json=task_body(payload=uses_secret("API_KEY", where)), headers=A)
    assert created.status_code == 201, created.text
    # the task keeps the template, never the value
    assert "{{ secrets.API_KEY }}" in created.text and VALUE not in created.text


def test_an_update_that_changes_the_payload_is_checked_again(sapi: TestClient[Any]) -> None:
    sapi.put("/secrets/API_KEY", json={"value": VALUE}, headers=A)
    task = sapi.post("/tasks", json=task_body(payload=uses_secret("API_KEY")), headers=A).json()
    resp = sapi.put(f"/tasks/{task['id']}", json={"payload": uses_secret("GONE")}, headers=A)
    assert_400(resp, "payload.steps[0].params.headers.Authorization")
    # a deleted secret does not block changes that leave the payload alone
    sapi.delete("/secrets/API_KEY", headers=A)
    assert sapi.put(f"/tasks/{task['id']}", json={"title": "t2"}, headers=A).status_code == 200


def test_the_admin_creating_for_an_agent_uses_that_agent_s_secrets(sapi: TestClient[Any]) -> None:
    sapi.put("/secrets/API_KEY", json={"value": VALUE}, headers=B)
    body = task_body(payload=uses_secret("API_KEY"), created_by=AGENT_B)
    assert sapi.post("/tasks", json=body, headers=ADMIN).status_code == 201
    body = task_body(payload=uses_secret("API_KEY"), created_by=AGENT_A)
    assert sapi.post("/tasks", json=body, headers=ADMIN).status_code == 400


def test_signing_keys_are_shown_once_and_rotate(sapi: TestClient[Any], r: redis.Redis) -> None:
    first = sapi.post("/agents/me/signing-key", headers=A)
    assert first.status_code == 200
    key = first.json()["signing_key"]
    assert key.startswith("whsec_") and len(key) > 40
    second = sapi.post("/agents/me/signing-key", headers=A).json()["signing_key"]
    assert second != key
    # sealed at rest, since CHIME_SECRET_KEY is set
    dump = repr({k: r.dump(k) for k in r.keys("*")})
    assert key not in dump and second not in dump


def test_framing_headers_are_400_at_create(sapi: TestClient[Any]) -> None:
    for name in ("Host", "Transfer-Encoding", "Content-Length", "Connection", "Proxy-Foo"):
        payload = {
            "steps": [
                {
                    "name": "call",
                    "action": "http.request",
                    "params": {"url": "https://h.example.com/", "headers": {name: "x"}},
                }
            ]
        }
        resp = sapi.post("/tasks", json=task_body(payload=payload), headers=A)
        assert_400(resp, f"payload.steps[0].params.headers.{name}")


def test_params_nested_too_deep_are_400_and_nothing_is_stored(
    sapi: TestClient[Any], r: redis.Redis
) -> None:
    deep: Any = "leaf"
    for _ in range(40):
        deep = {"k": deep}
    payload = {
        "steps": [{"name": "e", "action": "event.emit", "params": {"name": "x", "data": deep}}]
    }
    before = sorted(r.keys("*"))
    resp = sapi.post(
        "/tasks",
        json=task_body(payload=payload, schedule_kind="once", schedule_expr="2020-01-01T00:00:00Z"),
        headers=A,
    )
    assert resp.status_code == 400
    assert "nested deeper than 32 levels" in resp.json()["detail"]
    assert resp.json()["extra"][0]["key"].startswith("payload.steps[0].params.data.k.k")
    # no task, no run, no RQ job: nothing a worker could ever pick up
    assert sorted(r.keys("*")) == before
