"""Waiting for something another process or thread does: poll, with a generous deadline."""

import time
from collections.abc import Callable
from typing import Any

import httpx

#: what a probe of a server or process that is not up yet raises: it counts as "not yet"
NOT_YET: tuple[type[BaseException], ...] = (httpx.HTTPError, OSError)


def wait_for(
    probe: Callable[[], Any],
    timeout: float = 20.0,
    what: str = "",
    proc: Any = None,
    *,
    every: float = 0.02,
) -> Any:
    """Poll ``probe`` until it returns a truthy value; that value, or AssertionError naming
    ``what`` after ``timeout`` seconds. With ``proc`` (a started process's output,
    ``tests.ops.support.Output``) its exit ends the wait at once and its output is shown."""
    deadline = time.monotonic() + timeout
    while True:
        try:
            value = probe()
        except NOT_YET:
            value = None
        if value:
            return value
        if proc is not None and proc.proc.poll() is not None:
            raise AssertionError(f"process exited while waiting for {what}:\n{proc.text()}")
        if time.monotonic() > deadline:
            tail = f":\n{proc.text()[-6000:]}" if proc is not None else ""
            raise AssertionError(f"timed out after {timeout}s waiting for {what or probe}{tail}")
        time.sleep(every)
