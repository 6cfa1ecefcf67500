"""The ``chime`` command: one-line config errors at start, and the agent token commands."""

import json

import pytest
import redis

from app.cli import main
from app.store.agents import agent_for_token
from app.store.keys import Keys
from tests.ops.support import free_ports, run_chime


@pytest.mark.parametrize("command", ["web", "worker", "scheduler", "agents list"])
def test_a_bad_redis_url_is_one_line_and_exit_2(command: str) -> None:
    result = run_chime(*command.split(), REDIS_URL="http://user:hunter2@example.com")

    assert result.returncode == 2
    assert result.stdout == ""
    lines = result.stderr.splitlines()
    assert len(lines) == 1
    assert lines[0].startswith("chime: REDIS_URL ")
    assert "hunter2" not in result.stderr


def test_unparsable_agent_tokens_are_one_line_without_the_token() -> None:
    result = run_chime(
        "worker",
        CHIME_AGENT_TOKENS="0b7e7f34-51c6-4bd1-9d4e-4b0d6d6d0a11:a-long-enough-token,not-a-uuid:s3cret",
    )

    assert result.returncode == 2
    assert result.stderr.splitlines() == [
        "chime: CHIME_AGENT_TOKENS entry 2: 'not-a-uuid' is not a UUID"
    ]
    assert "s3cret" not in result.stderr


def test_an_unreachable_redis_is_one_line_and_exit_1() -> None:
    port = free_ports()
    result = run_chime("scheduler", REDIS_URL=f"redis://127.0.0.1:{port}/0")

    assert result.returncode == 1
    lines = result.stderr.splitlines()
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith(f"chime: cannot reach Redis at redis://127.0.0.1:{port}/0: ")


def test_help_needs_no_settings() -> None:
    result = run_chime("--help", REDIS_URL="nonsense")

    assert result.returncode == 0
    for command in ("web", "scheduler", "worker", "dashboard", "dev", "agents", "tasks"):
        assert command in result.stdout


def test_agents_create_list_revoke(
    r: redis.Redis, keys: Keys, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["agents", "create", "--name", "ops bot"]) == 0
    created = json.loads(capsys.readouterr().out)
    assert set(created) == {"agent_id", "token"}
    assert agent_for_token(r, keys, created["token"]) == created["agent_id"]

    assert main(["agents", "list", "--json"]) == 0
    items = json.loads(capsys.readouterr().out)["items"]
    assert [(a["agent_id"], a["name"]) for a in items] == [(created["agent_id"], "ops bot")]
    assert "token" not in items[0]

    assert main(["agents", "list"]) == 0
    table = capsys.readouterr().out
    assert created["agent_id"] in table and "ops bot" in table
    assert created["token"] not in table

    assert main(["agents", "revoke", created["agent_id"], "--json"]) == 0
    assert json.loads(capsys.readouterr().out) == {
        "agent_id": created["agent_id"],
        "revoked": True,
    }
    assert agent_for_token(r, keys, created["token"]) is None

    assert main(["agents", "revoke", created["agent_id"]]) == 1
    assert capsys.readouterr().err == f"chime: no minted agent {created['agent_id']}\n"
