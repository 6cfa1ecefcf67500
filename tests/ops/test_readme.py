"""The README's configuration table names every variable that ``app/settings.py`` reads, with
the default the code uses."""

import re

from app.settings import Settings
from tests.ops.support import ROOT


def _table() -> dict[str, str]:
    text = (ROOT / "README.md").read_text()
    section = text.split("## Configuration", 1)[1].split("\n## ", 1)[0]
    rows = re.findall(r"^\| `([A-Z_]+)` \| ([^|]*) \|", section, re.MULTILINE)
    return {name: default.strip() for name, default in rows}


def test_every_setting_is_documented() -> None:
    source = (ROOT / "app" / "settings.py").read_text()
    read = set(re.findall(r'"((?:CHIME_|REDIS_URL|PORT)[A-Z_]*)"', source))

    assert read == set(_table())


def test_documented_defaults_are_the_code_defaults() -> None:
    table = _table()
    d = Settings()
    for name, value in {
        "REDIS_URL": d.redis_url,
        "PORT": d.port,
        "CHIME_KEY_PREFIX": d.key_prefix,
        "CHIME_MAX_BODY_BYTES": d.max_body_bytes,
        "CHIME_RUN_HISTORY": d.run_history,
        "CHIME_SEMAPHORE_LEASE_SECONDS": d.semaphore_lease_seconds,
        "CHIME_CLAIM_BATCH": d.claim_batch,
        "CHIME_CLAIM_LEASE_SECONDS": d.claim_lease_seconds,
        "CHIME_ENQUEUE_GRACE_SECONDS": d.enqueue_grace_seconds,
        "CHIME_MISFIRE_GRACE_SECONDS": d.misfire_grace_seconds,
        "CHIME_LOG_LEVEL": d.log_level,
    }.items():
        shown = str(int(value)) if isinstance(value, float) and value.is_integer() else str(value)
        assert table[name].startswith(f"`{shown}`"), (name, table[name], shown)
    for unset in (
        "CHIME_AGENT_TOKENS",
        "CHIME_ADMIN_TOKEN",
        "CHIME_HTTP_ALLOW",
        "CHIME_SECRET_KEY",
    ):
        assert table[unset].startswith("(none")
