"""All settings, read from environment variables in this one module.

A bad value raises :class:`ConfigError` with a one-line message naming the variable; the
command line prints it and exits, so a process never starts half-configured.
"""

import ipaddress
import os
import re
import uuid
from collections.abc import Mapping
from dataclasses import dataclass, field
from functools import cache
from urllib.parse import urlparse

from app.core.errors import ConfigError
from app.core.limits import BOUNDS as LIMIT_BOUNDS
from app.core.limits import Limits
from app.logs import mask_url

_PREFIX_RE = re.compile(r"^[A-Za-z0-9_.-]{1,64}$")


@dataclass(frozen=True)
class Settings:
    redis_url: str = "redis://localhost:6379/0"
    port: int = 8080
    #: the address ``chime web`` and ``chime dashboard`` listen on
    host: str = "0.0.0.0"
    #: proxies whose ``X-Forwarded-For``/``-Proto`` are believed; None: no proxy is trusted
    forwarded_allow_ips: tuple[str, ...] | None = None
    key_prefix: str = "chime"
    #: token -> agent id, from ``CHIME_AGENT_TOKENS`` (``agent_uuid:token,...``)
    agent_tokens: Mapping[str, str] = field(default_factory=dict)
    admin_token: str | None = None
    #: when set, ``GET /metrics`` needs ``Authorization: Bearer <this token>``
    metrics_token: str | None = None
    max_body_bytes: int = 1024 * 1024
    #: what ``http.request`` may reach (host globs, IP literals, CIDR blocks, ``public``);
    #: None: the default, public addresses only (``workers/egress.py`` reads it)
    http_allow: tuple[str, ...] | None = None
    #: the key secrets (and webhook signing keys) are encrypted with; None: no secrets
    secret_key: str | None = None
    run_history: int = 100
    #: a concurrency slot whose holder stops renewing frees after this long
    semaphore_lease_seconds: float = 60.0
    #: how many due tasks one claim takes
    claim_batch: int = 500
    #: a claim not committed within this long is taken over by another scheduler
    claim_lease_seconds: float = 30.0
    #: a run committed but not seen on RQ after this long is enqueued again
    enqueue_grace_seconds: float = 30.0
    #: an occurrence later than this counts as missed (misfire policy applies)
    misfire_grace_seconds: float = 60.0
    log_level: str = "INFO"
    #: runs one ``chime worker`` process executes at once
    worker_concurrency: int = 200
    #: after SIGTERM, how long a worker lets its runs in flight finish before it exits
    worker_shutdown_grace_seconds: float = 25.0
    #: per-agent limits every agent has unless the admin overrides them (``app/core/limits.py``)
    max_tasks: int = 10_000
    max_running: int = 100
    max_runs_per_minute: int = 6_000
    min_interval_seconds: int = 1
    #: no retry waits less than this, whatever the task's backoff asks
    retry_min_delay_seconds: float = 1.0

    @property
    def default_limits(self) -> Limits:
        return Limits(
            max_tasks=self.max_tasks,
            max_running=self.max_running,
            max_runs_per_minute=self.max_runs_per_minute,
            min_interval_seconds=self.min_interval_seconds,
        )

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None) -> "Settings":
        e = os.environ if env is None else env
        d = cls()
        admin_token = _token(e, "CHIME_ADMIN_TOKEN")
        return cls(
            redis_url=_redis_url(e.get("REDIS_URL", d.redis_url)),
            port=_int(e, "PORT", d.port, 1, 65535),
            host=_host(e.get("CHIME_HOST") or d.host),
            forwarded_allow_ips=_proxies(e.get("CHIME_FORWARDED_ALLOW_IPS")),
            key_prefix=_prefix(e.get("CHIME_KEY_PREFIX", d.key_prefix)),
            agent_tokens=_agent_tokens(e.get("CHIME_AGENT_TOKENS", ""), admin_token),
            admin_token=admin_token,
            metrics_token=_token(e, "CHIME_METRICS_TOKEN"),
            max_body_bytes=_int(e, "CHIME_MAX_BODY_BYTES", d.max_body_bytes, 1, 1 << 30),
            http_allow=_patterns(e.get("CHIME_HTTP_ALLOW")),
            secret_key=_secret_key(e),
            run_history=_int(e, "CHIME_RUN_HISTORY", d.run_history, 1, 100_000),
            semaphore_lease_seconds=_float(
                e, "CHIME_SEMAPHORE_LEASE_SECONDS", d.semaphore_lease_seconds, 0.1, 86400
            ),
            claim_batch=_int(e, "CHIME_CLAIM_BATCH", d.claim_batch, 1, 10_000),
            claim_lease_seconds=_float(
                e, "CHIME_CLAIM_LEASE_SECONDS", d.claim_lease_seconds, 0.1, 3600
            ),
            enqueue_grace_seconds=_float(
                e, "CHIME_ENQUEUE_GRACE_SECONDS", d.enqueue_grace_seconds, 0.1, 3600
            ),
            misfire_grace_seconds=_float(
                e, "CHIME_MISFIRE_GRACE_SECONDS", d.misfire_grace_seconds, 0, 86400
            ),
            log_level=_choice(
                e, "CHIME_LOG_LEVEL", d.log_level, ("DEBUG", "INFO", "WARNING", "ERROR")
            ),
            worker_concurrency=_int(e, "CHIME_WORKER_CONCURRENCY", d.worker_concurrency, 1, 10_000),
            worker_shutdown_grace_seconds=_float(
                e,
                "CHIME_WORKER_SHUTDOWN_GRACE_SECONDS",
                d.worker_shutdown_grace_seconds,
                0,
                3600,
            ),
            max_tasks=_limit(e, "CHIME_MAX_TASKS", "max_tasks", d.max_tasks),
            max_running=_limit(e, "CHIME_MAX_RUNNING", "max_running", d.max_running),
            max_runs_per_minute=_limit(
                e, "CHIME_MAX_RUNS_PER_MINUTE", "max_runs_per_minute", d.max_runs_per_minute
            ),
            min_interval_seconds=_limit(
                e, "CHIME_MIN_INTERVAL_SECONDS", "min_interval_seconds", d.min_interval_seconds
            ),
            retry_min_delay_seconds=_float(
                e, "CHIME_RETRY_MIN_DELAY_SECONDS", d.retry_min_delay_seconds, 0.1, 3600
            ),
        )


@cache
def get_settings() -> Settings:
    """The process's settings, read once."""
    return Settings.from_env()


def _redis_url(value: str) -> str:
    parsed = urlparse(value)
    if parsed.scheme not in ("redis", "rediss", "unix") or not (parsed.hostname or parsed.path):
        raise ConfigError(
            "REDIS_URL must look like redis://host:port/db (or rediss://, unix://), got "
            + repr(mask_url(value))
        )
    try:
        parsed.port  # noqa: B018 - raises ValueError on a bad port
    except ValueError:
        raise ConfigError(f"REDIS_URL has a bad port: {mask_url(value)!r}") from None
    return value


def _int(env: Mapping[str, str], name: str, default: int, lo: int, hi: int) -> int:
    raw = env.get(name)
    if raw is None or raw == "":
        return default
    try:
        value = int(raw)
    except ValueError:
        raise ConfigError(f"{name} must be a whole number, got {raw!r}") from None
    if not lo <= value <= hi:
        raise ConfigError(f"{name} must be between {lo} and {hi}, got {value}")
    return value


def _limit(env: Mapping[str, str], name: str, limit: str, default: int) -> int:
    lo, hi = LIMIT_BOUNDS[limit]
    return _int(env, name, default, lo, hi)


def _float(env: Mapping[str, str], name: str, default: float, lo: float, hi: float) -> float:
    raw = env.get(name)
    if raw is None or raw == "":
        return default
    try:
        value = float(raw)
    except ValueError:
        raise ConfigError(f"{name} must be a number, got {raw!r}") from None
    if not lo <= value <= hi:
        raise ConfigError(f"{name} must be between {lo} and {hi}, got {value}")
    return value


def _choice(env: Mapping[str, str], name: str, default: str, choices: tuple[str, ...]) -> str:
    raw = env.get(name) or default
    if raw.upper() not in choices:
        raise ConfigError(f"{name} must be one of {', '.join(choices)}, got {raw!r}")
    return raw.upper()


def _prefix(value: str) -> str:
    if not _PREFIX_RE.match(value):
        raise ConfigError(f"CHIME_KEY_PREFIX must be 1-64 letters, digits or _.-, got {value!r}")
    return value


#: the shortest token accepted in the settings: a guessable token is no token
MIN_TOKEN_LENGTH = 16


def _token(env: Mapping[str, str], name: str) -> str | None:
    """A bearer token setting: unset, or at least MIN_TOKEN_LENGTH characters (never echoed)."""
    raw = (env.get(name) or "").strip()
    if not raw:
        return None
    if len(raw) < MIN_TOKEN_LENGTH:
        raise ConfigError(f"{name} must be at least {MIN_TOKEN_LENGTH} characters")
    return raw


def _agent_tokens(raw: str, admin_token: str | None = None) -> dict[str, str]:
    """Parse ``agent_uuid:token,agent_uuid:token``; never echo a token in an error.

    Each token is at least MIN_TOKEN_LENGTH characters, names one agent only, and is not the
    admin token (an agent must never be taken for the admin). An agent may have several
    tokens (to rotate one without downtime).
    """
    tokens: dict[str, str] = {}
    for n, pair in enumerate(p.strip() for p in raw.split(",")):
        if not pair:
            continue
        where = f"CHIME_AGENT_TOKENS entry {n + 1}"
        agent, sep, token = pair.partition(":")
        token = token.strip()
        if not sep or not token:
            raise ConfigError(f"{where} must be agent_uuid:token")
        try:
            agent_id = str(uuid.UUID(agent.strip()))
        except ValueError:
            raise ConfigError(f"{where}: {agent.strip()[:40]!r} is not a UUID") from None
        if len(token) < MIN_TOKEN_LENGTH:
            raise ConfigError(f"{where}: the token must be at least {MIN_TOKEN_LENGTH} characters")
        if token in tokens:
            raise ConfigError(f"{where}: the token is already given to another entry")
        if token == admin_token:
            raise ConfigError(f"{where}: the token is the admin token (CHIME_ADMIN_TOKEN)")
        tokens[token] = agent_id
    return tokens


def _host(value: str) -> str:
    value = value.strip()
    if not value or any(c.isspace() or c in "/:@" for c in value.strip("[]")):
        raise ConfigError(f"CHIME_HOST must be an address to listen on, got {value!r}")
    return value


def _proxies(raw: str | None) -> tuple[str, ...] | None:
    """``*`` or comma-separated IPs/CIDR blocks of trusted proxies; None: trust none."""
    if raw is None or not raw.strip():
        return None
    entries = tuple(p.strip() for p in raw.split(",") if p.strip())
    for entry in entries:
        if entry == "*":
            continue
        try:
            ipaddress.ip_network(entry, strict=False)
        except ValueError:
            raise ConfigError(
                f"CHIME_FORWARDED_ALLOW_IPS: {entry[:60]!r} is not an IP address or CIDR block"
            ) from None
    return entries


#: a host glob of CHIME_HTTP_ALLOW: letters, digits, ``-``, ``_``, dots and the glob ``*?[]!``
_HOST_GLOB = re.compile(r"^[a-z0-9*?\[\]!._-]+$")


def _patterns(raw: str | None) -> tuple[str, ...] | None:
    """``CHIME_HTTP_ALLOW``: host globs, IP literals, CIDR blocks and ``public``, lowercased;
    None (unset) is the default policy. Anything else stops the process naming the entry."""
    if raw is None or not raw.strip():
        return None
    entries = tuple(p.strip().lower() for p in raw.split(",") if p.strip())
    for entry in entries:
        if "/" in entry or ":" in entry or entry.startswith("["):
            try:
                ipaddress.ip_network(entry.strip("[]"), strict=False)
            except ValueError:
                raise ConfigError(
                    f"CHIME_HTTP_ALLOW: {entry[:60]!r} is not a host glob, an IP address or a "
                    "CIDR block (no scheme, port or path)"
                ) from None
        elif not _HOST_GLOB.match(entry):
            raise ConfigError(
                f"CHIME_HTTP_ALLOW: {entry[:60]!r} is not a host glob, an IP address or a "
                "CIDR block"
            )
    return entries


#: the shortest CHIME_SECRET_KEY accepted: the key behind every stored secret
MIN_SECRET_KEY_LENGTH = 32


def _secret_key(env: Mapping[str, str]) -> str | None:
    raw = (env.get("CHIME_SECRET_KEY") or "").strip()
    if not raw:
        return None
    if len(raw) < MIN_SECRET_KEY_LENGTH:
        raise ConfigError(f"CHIME_SECRET_KEY must be at least {MIN_SECRET_KEY_LENGTH} characters")
    return raw
