"""The foundation pieces: settings parsing, key layout, script loading, record codec."""

import pytest

from app import clock
from app.core.errors import ConfigError
from app.core.task import Run, Task
from app.settings import Settings
from app.store import scripts
from app.store.codec import from_hash, to_hash
from app.store.keys import QUEUE_NAMES, Keys


def test_defaults_and_overrides() -> None:
    s = Settings.from_env({})
    assert s.redis_url == "redis://localhost:6379/0"
    assert s.port == 8080
    s = Settings.from_env(
        {
            "PORT": "9000",
            "CHIME_AGENT_TOKENS": "0b7e7f34-51c6-4bd1-9d4e-4b0d6d6d0a11:first-token-16chars, "
            "1c3f1f7a-6f0b-4f38-8d0e-9a0b1c2d3e4f:second-token-16ch",
            "CHIME_HTTP_ALLOW": "example.com, *.internal",
        }
    )
    assert s.port == 9000
    assert s.agent_tokens == {
        "first-token-16chars": "0b7e7f34-51c6-4bd1-9d4e-4b0d6d6d0a11",
        "second-token-16ch": "1c3f1f7a-6f0b-4f38-8d0e-9a0b1c2d3e4f",
    }
    assert s.http_allow == ("example.com", "*.internal")


@pytest.mark.parametrize(
    ("env", "fragment"),
    [
        ({"REDIS_URL": "http://x"}, "REDIS_URL"),
        ({"REDIS_URL": "redis://host:notaport/0"}, "REDIS_URL"),
        ({"PORT": "eighty"}, "PORT"),
        ({"PORT": "0"}, "PORT"),
        ({"CHIME_AGENT_TOKENS": "justatoken"}, "CHIME_AGENT_TOKENS"),
        ({"CHIME_AGENT_TOKENS": "not-a-uuid:secret"}, "CHIME_AGENT_TOKENS"),
        ({"CHIME_LOG_LEVEL": "LOUD"}, "CHIME_LOG_LEVEL"),
        ({"CHIME_KEY_PREFIX": "a b"}, "CHIME_KEY_PREFIX"),
        ({"CHIME_ADMIN_TOKEN": "short"}, "CHIME_ADMIN_TOKEN must be at least 16"),
        ({"CHIME_METRICS_TOKEN": "short"}, "CHIME_METRICS_TOKEN must be at least 16"),
        (
            {"CHIME_AGENT_TOKENS": "0b7e7f34-51c6-4bd1-9d4e-4b0d6d6d0a11:x"},
            "CHIME_AGENT_TOKENS entry 1: the token must be at least 16",
        ),
        (
            {
                "CHIME_AGENT_TOKENS": "0b7e7f34-51c6-4bd1-9d4e-4b0d6d6d0a11:same-token-for-two,"
                "1c3f1f7a-6f0b-4f38-8d0e-9a0b1c2d3e4f:same-token-for-two"
            },
            "CHIME_AGENT_TOKENS entry 2: the token is already given to another entry",
        ),
        (
            {
                "CHIME_ADMIN_TOKEN": "operator-token-0123",
                "CHIME_AGENT_TOKENS": "0b7e7f34-51c6-4bd1-9d4e-4b0d6d6d0a11:operator-token-0123",
            },
            "CHIME_AGENT_TOKENS entry 1: the token is the admin token",
        ),
        ({"CHIME_HOST": "0.0.0.0:80"}, "CHIME_HOST"),
        ({"CHIME_FORWARDED_ALLOW_IPS": "10.0.0.0/8, proxy"}, "CHIME_FORWARDED_ALLOW_IPS"),
    ],
)
def test_bad_settings_name_the_variable(env: dict[str, str], fragment: str) -> None:
    with pytest.raises(ConfigError) as exc:
        Settings.from_env(env)
    message = str(exc.value)
    assert fragment in message
    assert "\n" not in message


def test_bad_tokens_are_not_echoed() -> None:
    with pytest.raises(ConfigError) as exc:
        Settings.from_env({"CHIME_AGENT_TOKENS": "not-a-uuid:supersecret"})
    assert "supersecret" not in str(exc.value)
    for env in (
        {"CHIME_ADMIN_TOKEN": "supersecret"},
        {"CHIME_AGENT_TOKENS": "0b7e7f34-51c6-4bd1-9d4e-4b0d6d6d0a11:supersecret"},
    ):
        with pytest.raises(ConfigError) as exc:
            Settings.from_env(env)
        assert "supersecret" not in str(exc.value)


def test_one_agent_may_hold_two_tokens_and_proxies_parse() -> None:
    agent = "0b7e7f34-51c6-4bd1-9d4e-4b0d6d6d0a11"
    s = Settings.from_env(
        {
            "CHIME_AGENT_TOKENS": f"{agent}:old-token-of-the-agent,{agent}:new-token-of-the-agent",
            "CHIME_FORWARDED_ALLOW_IPS": "10.0.0.0/8, 127.0.0.1",
            "CHIME_HOST": "127.0.0.1",
        }
    )
    assert set(s.agent_tokens.values()) == {agent}
    assert s.forwarded_allow_ips == ("10.0.0.0/8", "127.0.0.1")
    assert s.host == "127.0.0.1"
    assert Settings.from_env({}).forwarded_allow_ips is None


def test_password_not_echoed_for_bad_redis_url() -> None:
    with pytest.raises(ConfigError) as exc:
        Settings.from_env({"REDIS_URL": "http://user:hunter2@host"})
    assert "hunter2" not in str(exc.value)


def test_keys_share_one_hash_tag() -> None:
    k = Keys("chime")
    assert k.task("t1") == "{chime}:task:t1"
    assert len(set(k.indexes("a", "active", "cron"))) == 8
    assert k.index(None, None, None) in k.indexes("a", "active", "cron")
    assert k.index("a", None, "cron") in k.indexes("a", "active", "cron")
    assert QUEUE_NAMES[0] == "chime-p1" and QUEUE_NAMES[-1] == "chime-p9"


def test_record_codec_round_trip() -> None:
    task = Task(
        id="t",
        title="x",
        description="",
        schedule_kind="cron",
        schedule_expr="* * * * *",
        payload={"steps": [{"name": "a", "action": "log", "params": {"message": "hi"}}]},
        created_by="agent",
        created_at=1,
        updated_at=2,
        retry_delay_seconds=1.5,
    )
    fields = to_hash(task)
    assert "dedupe_key" not in fields
    assert from_hash(Task, fields) == task
    run = Run(id="r", task_id="t", agent_id="a", trigger="schedule", created_at=5, steps=[{}])
    assert from_hash(Run, to_hash(run)) == run


def test_script_includes_expand(tmp_path: pytest.TempPathFactory) -> None:
    assert list(scripts.NAMES) == scripts.installed() == sorted(scripts.NAMES)
    for name in scripts.NAMES:
        text = scripts.source(name)
        assert "@include" not in text
        assert text.lstrip().startswith("--"), f"{name}.lua has no header"


def test_script_error_mapping() -> None:
    with pytest.raises(scripts.ScriptError) as exc:
        scripts.check([-2, "paused"])
    assert exc.value.code is scripts.ErrorCode.CONFLICT
    assert exc.value.detail == "paused"
    assert scripts.check(["a", "b"]) == ["a", "b"]


def test_clock_moves_without_the_wall() -> None:
    before = clock.now_ms()
    clock.shift(3_600_000)
    assert clock.now_ms() - before >= 3_600_000
    clock.reset()
    assert clock.now_ms() - before < 60_000
    assert clock.iso(0) == "1970-01-01T00:00:00.000Z"


def test_test_redis_is_private(r) -> None:  # type: ignore[no-untyped-def]
    assert r.connection_pool.connection_kwargs["port"] != 6379
    r.set("x", "1")
    assert r.get("x") == "1"


def test_embedded_redis_dies_with_the_process_that_started_it(tmp_path) -> None:  # type: ignore[no-untyped-def]
    """A parent killed with SIGKILL leaves no redis-server behind."""
    import os
    import signal
    import subprocess
    import sys
    import time

    script = (
        "from app.embedded_redis import EmbeddedRedis\n"
        "s = EmbeddedRedis(); s.start(); print(s.proc.pid, flush=True)\n"
        "import time; time.sleep(60)\n"
    )
    parent = subprocess.Popen([sys.executable, "-c", script], stdout=subprocess.PIPE, text=True)
    assert parent.stdout is not None
    server_pid = int(parent.stdout.readline())
    os.kill(parent.pid, signal.SIGKILL)
    parent.wait()
    parent.stdout.close()
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        try:
            os.kill(server_pid, 0)
        except ProcessLookupError:
            return
        with open(f"/proc/{server_pid}/stat") as f:
            if f.read().split(") ")[1].startswith("Z"):
                return
        time.sleep(0.05)
    os.kill(server_pid, signal.SIGKILL)
    raise AssertionError("redis-server outlived the process that started it")
