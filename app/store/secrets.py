"""An agent's secrets and its webhook signing key, kept sealed in Redis.

Secrets (``PUT /secrets/{name}``) are sealed with ``CHIME_SECRET_KEY`` (``app/crypto.py``):
without that setting none can be stored (:class:`SecretsUnavailable`, a 503). Listing reads
names and times only, never a value; only the worker opens values, for the run that uses them.

A signing key is sealed the same way when ``CHIME_SECRET_KEY`` is set, and kept as it is
otherwise (``plain.<key>``), so signed webhooks work on a deployment without secrets; a key kept
plain is sealed on its next rotation once the setting exists.
"""

import secrets as random
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

import msgspec
import redis
import redis.asyncio

from app import clock
from app.core.errors import ChimeError, ValidationError
from app.core.templating import SECRET_NAME
from app.crypto import SealError, seal, unseal
from app.settings import Settings
from app.store.codec import text
from app.store.keys import Keys

#: the largest secret value, in characters
MAX_VALUE_CHARS = 8 * 1024
#: signing keys start with this, so one found in a log or a repository is recognised
SIGNING_KEY_PREFIX = "whsec_"
_PLAIN = "plain."


class SecretsUnavailable(ChimeError):
    """Secrets cannot be stored: ``CHIME_SECRET_KEY`` is not set."""

    def __init__(self) -> None:
        super().__init__(
            "secrets need CHIME_SECRET_KEY: set it (32+ random characters) on every process"
        )


@dataclass(frozen=True)
class SecretInfo:
    name: str
    updated_at: int


class _Stored(msgspec.Struct, forbid_unknown_fields=True):
    sealed: str
    updated_at: int


def check_name(name: str) -> str:
    """``name`` if it is a secret's name, else a 400 naming ``name``."""
    if not SECRET_NAME.match(name):
        raise ValidationError("name", "1..64 characters of A-Z, a-z, 0-9 and _")
    return name


def _context(agent: str, name: str) -> str:
    return f"secret:{agent}:{name}"


def put_secret(
    client: "redis.Redis", keys: Keys, settings: Settings, agent: str, name: str, value: str
) -> None:
    """Create or replace the agent's secret ``name``."""
    check_name(name)
    if settings.secret_key is None:
        raise SecretsUnavailable()
    if not 1 <= len(value) <= MAX_VALUE_CHARS:
        raise ValidationError("value", f"must be 1..{MAX_VALUE_CHARS} characters")
    stored = _Stored(seal(settings.secret_key, value, _context(agent, name)), clock.now_ms())
    client.hset(keys.secrets(agent), name, msgspec.json.encode(stored))


def list_secrets(client: "redis.Redis", keys: Keys, agent: str) -> list[SecretInfo]:
    """The agent's secrets by name: names and times, never values."""
    out = []
    for name, raw in client.hgetall(keys.secrets(agent)).items():
        stored = msgspec.json.decode(raw, type=_Stored)
        out.append(SecretInfo(text(name), stored.updated_at))
    return sorted(out, key=lambda s: s.name)


def delete_secret(client: "redis.Redis", keys: Keys, agent: str, name: str) -> bool:
    """Forget the agent's secret ``name``; False when it had none of that name."""
    check_name(name)
    return bool(client.hdel(keys.secrets(agent), name))


def check_secrets_exist(
    client: "redis.Redis", keys: Keys, agent: str, refs: Sequence[tuple[str, str]]
) -> None:
    """A 400 naming the first field whose ``{{ secrets.NAME }}`` the agent does not have."""
    if not refs:
        return
    names = list(dict.fromkeys(name for _, name in refs))
    found = dict(zip(names, client.hmget(keys.secrets(agent), names), strict=True))
    for _, name in refs:
        if found[name] is None:
            raise missing_secret(refs, name)


def missing_secret(refs: Sequence[tuple[str, str]], name: str) -> ValidationError:
    """The 400 of a secret ``name`` the agent does not have, naming the first field using it."""
    where = next((w for w, n in refs if n == name), "payload")
    return ValidationError(
        where, f"no secret named {name!r}: create it first with PUT /secrets/{name}"
    )


def rotate_signing_key(client: "redis.Redis", keys: Keys, settings: Settings, agent: str) -> str:
    """A new signing key for the agent (the old one stops at once); its only copy to show."""
    key = SIGNING_KEY_PREFIX + random.token_urlsafe(32)
    if settings.secret_key is None:
        stored = _PLAIN + key
    else:
        stored = seal(settings.secret_key, key, f"signing-key:{agent}")
    client.set(keys.signing_key(agent), stored)
    return key


@dataclass
class Credentials:
    """What one run may use: its secrets' values, and the agent's signing key."""

    secrets: dict[str, str] = field(default_factory=dict)
    #: name -> why that secret cannot be used (gone, or CHIME_SECRET_KEY missing or changed)
    unavailable: dict[str, str] = field(default_factory=dict)
    signing_key: str | None = None
    #: set when the agent has a signing key this process cannot open
    signing_error: str | None = None


async def load_credentials(
    client: "redis.asyncio.Redis",
    keys: Keys,
    settings: Settings,
    agent: str,
    names: Iterable[str],
    signing: bool,
) -> Credentials:
    """The named secrets of ``agent`` and (when ``signing``) its signing key, in one round
    trip; nothing is read when neither is wanted."""
    wanted = list(dict.fromkeys(names))
    creds = Credentials()
    if not wanted and not signing:
        return creds
    pipe = client.pipeline(transaction=False)
    if wanted:
        pipe.hmget(keys.secrets(agent), wanted)
    if signing:
        pipe.get(keys.signing_key(agent))
    replies: list[Any] = await pipe.execute()
    if wanted:
        for name, raw in zip(wanted, replies[0], strict=True):
            _open_secret(creds, settings, agent, name, raw)
    if signing and replies[-1] is not None:
        _open_signing_key(creds, settings, agent, text(replies[-1]))
    return creds


def _open_secret(creds: Credentials, settings: Settings, agent: str, name: str, raw: Any) -> None:
    if raw is None:
        creds.unavailable[name] = "no such secret (deleted since the task was saved?)"
        return
    if settings.secret_key is None:
        creds.unavailable[name] = "this worker has no CHIME_SECRET_KEY to open it"
        return
    try:
        stored = msgspec.json.decode(raw, type=_Stored)
        creds.secrets[name] = unseal(settings.secret_key, stored.sealed, _context(agent, name))
    except (SealError, msgspec.DecodeError):
        creds.unavailable[name] = (
            "cannot be opened: CHIME_SECRET_KEY is not the one it was set with"
        )


def _open_signing_key(creds: Credentials, settings: Settings, agent: str, stored: str) -> None:
    if stored.startswith(_PLAIN):
        creds.signing_key = stored[len(_PLAIN) :]
        return
    if settings.secret_key is None:
        creds.signing_error = "the signing key is sealed and this worker has no CHIME_SECRET_KEY"
        return
    try:
        creds.signing_key = unseal(settings.secret_key, stored, f"signing-key:{agent}")
    except SealError:
        creds.signing_error = (
            "the signing key cannot be opened with this CHIME_SECRET_KEY: rotate it with "
            "POST /agents/me/signing-key"
        )
