"""The OpenAPI document says what the API does: schemathesis drives the live app with every
check on, once with an agent token and once with the admin token, and any disagreement fails.

Runs in-process over ASGI against the session's Redis, with a fixed seed and a bounded number
of cases per operation, so it is deterministic and quick. Two kinds of help are given to the
generator, both written here on purpose:

- custom string formats (``cron``, ``rrule``, ``date-time-local``, ``iana-timezone``,
  ``http-url``): the schema names the format and describes it; a generator for valid values is
  registered below, since no pattern can say which cron expressions ever fire;
- :func:`obey_documented_rules`: the rules the schema states only in its descriptions, because
  JSON Schema cannot relate two values (``retry_max_delay_seconds >= retry_delay_seconds``,
  ``dedupe_window_seconds`` only with a ``dedupe_key``, unique step names, a sleep within its
  step's timeout, ``json`` or ``body``), applied to schema-valid cases only, so invalid ones
  still test the refusals.

Path ids are drawn at random (404) or, for half the cases, name a real task or run of the
caller, so the 2xx answers are checked against their schemas too.
"""

import uuid
import zlib
from typing import Any

import msgspec
import pytest
import schemathesis
from hypothesis import HealthCheck, settings
from hypothesis import strategies as st

from app import clock
from app.api.app import create_app
from app.core.taskspec import TaskSpec, new_task
from app.settings import Settings
from app.store.tasks import TaskStore
from tests.support.agents import ADMIN_TOKEN, AGENT_A, AGENT_B, SECRET_KEY, TOKEN_A, TOKEN_B

schemathesis.openapi.format(
    "cron",
    st.sampled_from(["0 * * * *", "*/15 9-17 * * 1-5", "30 2 * * *", "@daily", "0 0 1 1 * 30"]),
)
schemathesis.openapi.format(
    "rrule",
    st.sampled_from(
        [
            "FREQ=DAILY;BYHOUR=9",
            "RRULE:FREQ=WEEKLY;BYDAY=MO,WE",
            "DTSTART:20200101T000000Z\nRRULE:FREQ=DAILY;COUNT=1",
            "DTSTART;TZID=Europe/Paris:20261207T090000\nRRULE:FREQ=MONTHLY;BYMONTHDAY=-1",
        ]
    ),
)
schemathesis.openapi.format(
    "date-time-local",
    st.sampled_from(["2026-12-24T18:00:00Z", "2030-01-01T00:00:00", "2001-02-03 04:05:06+02:00"]),
)
schemathesis.openapi.format(
    "iana-timezone", st.sampled_from(["UTC", "Europe/Paris", "America/New_York", "Asia/Kolkata"])
)
schemathesis.openapi.format(
    "http-url", st.sampled_from(["https://example.com/hook", "http://10.0.0.1:8080/x?a=1"])
)

#: cases per operation and generation phase; derandomize gives every run the same cases
MAX_EXAMPLES = 25


@pytest.fixture
def fuzz_app(redis_url: str) -> Any:
    return create_app(
        Settings.from_env(
            {
                "REDIS_URL": redis_url,
                "CHIME_AGENT_TOKENS": f"{AGENT_A}:{TOKEN_A},{AGENT_B}:{TOKEN_B}",
                "CHIME_ADMIN_TOKEN": ADMIN_TOKEN,
                # secrets configured, as a deployment that offers them (503 is a server fault
                # to the fuzzer; the refusal without the key is tested in test_secrets.py)
                "CHIME_SECRET_KEY": SECRET_KEY,
            }
        )
    )


def _schema(fuzz_app: Any, token: str) -> Any:
    config = schemathesis.Config.from_dict(
        {"auth": {"openapi": {"BearerToken": {"bearer": token}}}}
    )
    return schemathesis.openapi.from_asgi("/schema/openapi.json", fuzz_app, config=config)


@pytest.fixture
def agent_schema(fuzz_app: Any, agent: dict[str, Any]) -> Any:
    return _schema(fuzz_app, TOKEN_A)


@pytest.fixture
def admin_schema(fuzz_app: Any, admin: dict[str, Any]) -> Any:
    return _schema(fuzz_app, ADMIN_TOKEN)


def _caller(store: TaskStore, agent: str | None) -> dict[str, Any]:
    """A task and a run of the caller (None: the admin) to aim at."""
    spec = msgspec.convert(
        {
            "title": "fuzz target",
            "description": "",
            "schedule_kind": "cron",
            "schedule_expr": "0 * * * *",
            "created_by": agent or AGENT_B,
            "payload": {"steps": [{"name": "s", "action": "log", "params": {"message": "m"}}]},
        },
        TaskSpec,
    )
    task, _ = store.create(new_task(spec, task_id=str(uuid.uuid4()), now_ms=clock.now_ms()))
    run = store.run_now(task.id, agent)
    return {"agent": agent, "task": task.id, "run": run.id}


@pytest.fixture
def agent(store: TaskStore) -> dict[str, Any]:
    return _caller(store, AGENT_A)


@pytest.fixture
def admin(store: TaskStore) -> dict[str, Any]:
    return _caller(store, None)


agent_api = schemathesis.pytest.from_fixture("agent_schema")
admin_api = schemathesis.pytest.from_fixture("admin_schema")


@pytest.fixture(autouse=True)
def _node_id_for_schemathesis(request: pytest.FixtureRequest) -> None:
    """schemathesis 4.32's lazy schema reads ``node._nodeid``, which pytest 9.2 no longer has."""
    if not hasattr(request.node, "_nodeid"):
        request.node._nodeid = request.node.nodeid


#: every operation's bounded examples run inside one test (a subtest each): minutes on a busy
#: machine, where the default per-test timeout is sized for one case
pytestmark = pytest.mark.timeout(900)

BOUNDED = settings(
    max_examples=MAX_EXAMPLES,
    derandomize=True,
    database=None,
    deadline=None,
    suppress_health_check=list(HealthCheck),
)


@agent_api.parametrize()
@BOUNDED
def test_an_agent_gets_what_the_schema_says(case: Any, agent: dict[str, Any]) -> None:
    call_and_validate(case, agent)


@admin_api.parametrize()
@BOUNDED
def test_the_admin_gets_what_the_schema_says(case: Any, admin: dict[str, Any]) -> None:
    call_and_validate(case, admin)


def call_and_validate(case: Any, caller: dict[str, Any]) -> None:
    aim_at_real_ids(case, caller)
    if case.meta is not None and case.meta.generation.mode.is_positive:
        obey_documented_rules(case, caller)
    case.call_and_validate()


def aim_at_real_ids(case: Any, caller: dict[str, Any]) -> None:
    """Half the task and run ids (chosen by a hash of the drawn one) name real ones."""
    params = case.path_parameters or {}
    for name, real in (("task_id", caller["task"]), ("run_id", caller["run"])):
        drawn = params.get(name)
        if isinstance(drawn, str) and zlib.crc32(drawn.encode()) % 2 == 0:
            params[name] = real


def obey_documented_rules(case: Any, caller: dict[str, Any]) -> None:
    """Make a schema-valid body also keep the rules its descriptions state."""
    body = case.body
    if not isinstance(body, dict):
        return
    if caller["agent"] is not None and "created_by" in body and case.method == "POST":
        body["created_by"] = caller["agent"]
    delay = body.get("retry_delay_seconds", 10.0)
    if isinstance(delay, int | float) and body.get("retry_max_delay_seconds", 3600.0) < delay:
        body["retry_max_delay_seconds"] = delay
    if body.get("dedupe_window_seconds") is not None and body.get("dedupe_key") is None:
        body["dedupe_key"] = "k"
    payload = body.get("payload")
    for part, prefix in (("steps", "s"), ("on_failure", "f")):
        if not isinstance(payload, dict) or not isinstance(payload.get(part), list):
            continue
        for i, step in enumerate(payload[part]):
            step["name"] = f"{prefix}{i}"
            params = step.get("params") or {}
            if step.get("action") == "sleep" and "seconds" in params:
                step["timeout_seconds"] = max(step.get("timeout_seconds", 30.0), params["seconds"])
                if step["timeout_seconds"] == 0:
                    step["timeout_seconds"] = 1
