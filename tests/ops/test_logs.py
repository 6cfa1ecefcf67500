"""Structured log lines: one line per event, parseable, never carrying a credential."""

import logging
import shlex
from collections.abc import Iterator

import pytest

from app.logs import LogfmtFormatter, configure_logging, mask, mask_headers


def _parse(line: str) -> dict[str, str]:
    """logfmt with double-quoted values, as shlex splits it."""
    return dict(part.split("=", 1) for part in shlex.split(line))


def _record(msg: str, **extra: object) -> logging.LogRecord:
    record = logging.LogRecord("chime.worker", logging.INFO, __file__, 1, msg, None, None)
    record.__dict__.update(extra)
    return record


def test_a_run_transition_is_one_parseable_line() -> None:
    line = LogfmtFormatter().format(
        _record("run.transition", task_id="t1", run_id="r1", attempt=2, status="running")
    )

    assert "\n" not in line
    fields = _parse(line)
    assert fields["event"] == "run.transition"
    assert fields["level"] == "info"
    assert fields["logger"] == "chime.worker"
    assert fields["ts"].endswith("Z")
    assert (fields["task_id"], fields["run_id"], fields["attempt"], fields["status"]) == (
        "t1",
        "r1",
        "2",
        "running",
    )


def test_values_with_spaces_quotes_and_newlines_stay_on_one_line() -> None:
    line = LogfmtFormatter().format(_record("step.failed", error='boom "x"\nline 2', none=None))

    assert "\n" not in line
    fields = _parse(line)
    assert fields["error"] == 'boom "x"\\nline 2'
    assert fields["none"] == "null"


def test_secrets_are_masked_in_fields_and_nested_headers() -> None:
    line = LogfmtFormatter().format(
        _record(
            "http.request",
            token="chm_secret1",
            headers={"Authorization": "Bearer chm_secret2", "X-Api-Key": "k3", "Accept": "a"},
            params={"json": {"client_secret": "s4"}, "cookies": ["c5"]},
        )
    )

    for secret in ("chm_secret1", "chm_secret2", "k3", "s4", "c5"):
        assert secret not in line
    assert "'Accept': 'a'" in line


def test_mask_headers_masks_credential_like_names_only() -> None:
    headers = {
        "Authorization": "Bearer x",
        "Proxy-Authorization": "Basic y",
        "Cookie": "sid=1",
        "Set-Cookie": "sid=2",
        "X-Auth-Token": "t",
        "X-API-KEY": "k",
        "api_key": "k",
        "X-Webhook-Secret": "s",
        "Content-Type": "application/json",
    }

    masked = mask_headers(headers)

    assert masked["Content-Type"] == "application/json"
    assert {k for k, v in masked.items() if v == "***"} == set(headers) - {"Content-Type"}
    assert headers["Authorization"] == "Bearer x"
    assert mask_headers(None) == {}
    assert mask([{"password": "p"}, 1]) == [{"password": "***"}, 1]


@pytest.fixture
def _restore_root() -> Iterator[None]:
    root = logging.getLogger()
    handlers, level = list(root.handlers), root.level
    quiet = {name: logging.getLogger(name).level for name in ("httpx", "httpcore")}
    yield
    root.handlers[:] = handlers
    root.setLevel(level)
    for name, old in quiet.items():
        logging.getLogger(name).setLevel(old)


@pytest.mark.usefixtures("_restore_root")
def test_configure_logging_writes_logfmt_to_stderr_at_the_level(
    capsys: pytest.CaptureFixture[str],
) -> None:
    configure_logging("warning")
    log = logging.getLogger("chime.test")

    log.info("hidden")
    log.warning("shown", extra={"run_id": "r9"})

    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1
    assert _parse(err[0])["event"] == "shown"
    assert _parse(err[0])["run_id"] == "r9"


@pytest.mark.usefixtures("_restore_root")
def test_http_client_request_lines_are_silenced(capsys: pytest.CaptureFixture[str]) -> None:
    configure_logging("DEBUG")

    logging.getLogger("httpx").info("HTTP Request: GET https://x/?api_key=s3cret")

    assert "s3cret" not in capsys.readouterr().err


@pytest.mark.usefixtures("_restore_root")
def test_a_framework_logger_with_its_own_handler_goes_through_ours(
    capsys: pytest.CaptureFixture[str],
) -> None:
    framework = logging.getLogger("litestar")
    own = logging.StreamHandler()
    framework.addHandler(own)
    framework.propagate = False
    try:
        configure_logging("INFO")
        framework.info("app.started", extra={"color_message": "\x1b[1mapp\x1b[0m"})
    finally:
        framework.removeHandler(own)

    err = capsys.readouterr().err.strip().splitlines()
    assert err == [err[0]] and _parse(err[0])["event"] == "app.started"
    assert "color_message" not in err[0]
