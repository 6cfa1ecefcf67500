"""The minted-agent store: tokens are stored only as hashes and stop working when revoked."""

import hashlib
import uuid

import pytest
import redis

from app import clock
from app.core.errors import ValidationError
from app.store.agents import (
    agent_for_token,
    create_agent,
    get_agent,
    list_agents,
    revoke_agent,
)
from app.store.keys import Keys


def test_create_stores_only_the_hash_of_the_token(r: redis.Redis, keys: Keys) -> None:
    agent_id, token = create_agent(r, keys, "billing bot")

    assert uuid.UUID(agent_id)
    assert token.startswith("chm_") and len(token) > 40
    sha = hashlib.sha256(token.encode()).hexdigest()
    stored = r.hgetall(keys.agent(agent_id))
    assert stored["name"] == "billing bot"
    assert stored["token_sha256"] == sha
    assert abs(int(stored["created_at"]) - clock.now_ms()) < 5000
    assert r.get(keys.token(sha)) == agent_id
    assert r.zscore(keys.agents, agent_id) == int(stored["created_at"])
    dump = [r.dump(k) for k in r.keys("*")]
    assert all(token.encode() not in (d or b"") for d in dump)


def test_agent_for_token_finds_the_agent_and_nothing_else(r: redis.Redis, keys: Keys) -> None:
    agent_id, token = create_agent(r, keys, "a")
    other_id, other_token = create_agent(r, keys, "b")

    assert agent_for_token(r, keys, token) == agent_id
    assert agent_for_token(r, keys, other_token) == other_id
    assert agent_for_token(r, keys, token + "x") is None
    assert agent_for_token(r, keys, "") is None


def test_list_gives_agents_oldest_first(r: redis.Redis, keys: Keys) -> None:
    first, _ = create_agent(r, keys, "first")
    clock.shift(1000)
    second, _ = create_agent(r, keys, "second")

    agents = list_agents(r, keys)

    assert [(a.agent_id, a.name) for a in agents] == [(first, "first"), (second, "second")]
    assert agents[1].created_at - agents[0].created_at >= 1000
    assert agents[0].to_json()["created_at"].endswith("Z")  # type: ignore[union-attr]
    assert list_agents(r, Keys("other")) == []


def test_revoke_removes_the_agent_and_its_token(r: redis.Redis, keys: Keys) -> None:
    agent_id, token = create_agent(r, keys, "gone")
    kept_id, kept_token = create_agent(r, keys, "kept")

    assert revoke_agent(r, keys, agent_id) is True

    assert agent_for_token(r, keys, token) is None
    assert get_agent(r, keys, agent_id) is None
    assert [a.agent_id for a in list_agents(r, keys)] == [kept_id]
    assert agent_for_token(r, keys, kept_token) == kept_id
    assert r.keys(f"*{agent_id}*") == []


def test_revoke_of_an_unknown_agent_is_false_and_changes_nothing(
    r: redis.Redis, keys: Keys
) -> None:
    create_agent(r, keys, "kept")
    before = {k: r.dump(k) for k in r.keys("*")}

    assert revoke_agent(r, keys, str(uuid.uuid4())) is False

    assert {k: r.dump(k) for k in r.keys("*")} == before


@pytest.mark.parametrize("name", ["", "   ", "x" * 201])
def test_create_refuses_a_bad_name_before_writing(r: redis.Redis, keys: Keys, name: str) -> None:
    with pytest.raises(ValidationError) as err:
        create_agent(r, keys, name)
    assert err.value.field == "name"
    assert r.dbsize() == 0
