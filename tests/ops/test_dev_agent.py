"""The development agent ``chime dev`` prints: minted once, reused while its token works."""

import json
import stat
from pathlib import Path

import redis

from app.dev import AGENT_FILE, dev_agent
from app.settings import Settings
from app.store.agents import agent_for_token, revoke_agent
from app.store.keys import Keys


def test_minted_once_then_reused(r: redis.Redis, keys: Keys, tmp_path: Path) -> None:
    settings = Settings()

    first = dev_agent(r, keys, tmp_path, settings)
    again = dev_agent(r, keys, tmp_path, settings)

    assert first is not None and again == first
    assert agent_for_token(r, keys, first[1]) == first[0]
    saved = tmp_path / AGENT_FILE
    assert json.loads(saved.read_text()) == {"agent_id": first[0], "token": first[1]}
    assert stat.S_IMODE(saved.stat().st_mode) == 0o600


def test_a_revoked_or_damaged_saved_agent_is_replaced(
    r: redis.Redis, keys: Keys, tmp_path: Path
) -> None:
    settings = Settings()
    first = dev_agent(r, keys, tmp_path, settings)
    assert first is not None
    revoke_agent(r, keys, first[0])

    second = dev_agent(r, keys, tmp_path, settings)
    assert second is not None and second[0] != first[0]
    assert agent_for_token(r, keys, second[1]) == second[0]

    (tmp_path / AGENT_FILE).write_text("{not json")
    third = dev_agent(r, keys, tmp_path, settings)
    assert third is not None and agent_for_token(r, keys, third[1]) == third[0]


def test_configured_agent_tokens_mint_nothing(r: redis.Redis, keys: Keys, tmp_path: Path) -> None:
    settings = Settings(agent_tokens={"tok": "0b7e7f34-51c6-4bd1-9d4e-4b0d6d6d0a11"})

    assert dev_agent(r, keys, tmp_path, settings) is None
    assert r.dbsize() == 0
    assert not (tmp_path / AGENT_FILE).exists()
