"""Minted agents and their bearer tokens.

Only the SHA-256 of a token is stored, so a copy of Redis does not leak working tokens: the
token itself is shown once, when it is minted. Static tokens from ``CHIME_AGENT_TOKENS`` live
in the settings, not here.
"""

import hashlib
import secrets
import uuid
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import redis

from app import clock
from app.core.errors import ValidationError
from app.store.codec import text
from app.store.keys import Keys

#: Minted tokens start with this, so a leaked one is easy to recognise in a scan.
TOKEN_PREFIX = "chm_"
MAX_NAME = 200


@dataclass(frozen=True)
class Agent:
    agent_id: str
    name: str
    created_at: int

    def to_json(self) -> dict[str, str | None]:
        return {
            "agent_id": self.agent_id,
            "name": self.name,
            "created_at": clock.iso(self.created_at),
        }


def token_sha256(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def create_agent(client: "redis.Redis", keys: Keys, name: str) -> tuple[str, str]:
    """Mint an agent and its token; returns ``(agent_id, token)``, the token's only copy."""
    name = name.strip()
    if not name or len(name) > MAX_NAME:
        raise ValidationError("name", f"must be 1..{MAX_NAME} characters")
    agent_id = str(uuid.uuid4())
    token = TOKEN_PREFIX + secrets.token_urlsafe(32)
    sha = token_sha256(token)
    now = clock.now_ms()
    with client.pipeline(transaction=True) as pipe:
        pipe.hset(
            keys.agent(agent_id), mapping={"name": name, "token_sha256": sha, "created_at": now}
        )
        pipe.set(keys.token(sha), agent_id)
        pipe.zadd(keys.agents, {agent_id: now})
        pipe.execute()
    return agent_id, token


def get_agent(client: "redis.Redis", keys: Keys, agent_id: str) -> Agent | None:
    fields = client.hgetall(keys.agent(agent_id))
    return _agent(agent_id, fields) if fields else None


def list_agents(client: "redis.Redis", keys: Keys) -> list[Agent]:
    """Minted agents that are not revoked, oldest first."""
    ids = [text(i) for i in client.zrange(keys.agents, 0, -1)]
    if not ids:
        return []
    with client.pipeline(transaction=False) as pipe:
        for agent_id in ids:
            pipe.hgetall(keys.agent(agent_id))
        rows = pipe.execute()
    return [_agent(i, fields) for i, fields in zip(ids, rows, strict=True) if fields]


def _agent(agent_id: str, fields: Mapping[Any, Any]) -> Agent:
    data = {text(k): text(v) for k, v in fields.items()}
    return Agent(agent_id, data.get("name", ""), int(data.get("created_at", "0")))


def revoke_agent(client: "redis.Redis", keys: Keys, agent_id: str) -> bool:
    """Forget a minted agent and its token at once; False when there was no such agent.

    The agent's tasks stay (an operator can still see and cancel them); only the token stops
    working.
    """
    key = keys.agent(agent_id)
    # An agent's token never changes, so reading it before the transaction cannot race.
    sha = client.hget(key, "token_sha256")
    with client.pipeline(transaction=True) as pipe:
        if sha:
            pipe.delete(keys.token(text(sha)))
        pipe.delete(key)
        pipe.zrem(keys.agents, agent_id)
        removed = pipe.execute()
    return bool(removed[-2] or removed[-1])


def agent_for_token(client: "redis.Redis", keys: Keys, token: str) -> str | None:
    """The agent id of a minted token, or None when it is unknown or revoked."""
    if not token:
        return None
    agent_id = client.get(keys.token(token_sha256(token)))
    return text(agent_id) if agent_id else None
