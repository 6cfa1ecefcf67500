"""Processes the benchmarks start (imported by the scripts beside it)."""

import subprocess
from collections.abc import Sequence


def stop(procs: Sequence["subprocess.Popen[bytes]"]) -> None:
    """SIGTERM every process, then wait for each: a worker gets its shutdown grace (25 s by
    default) and a margin before SIGKILL."""
    for p in procs:
        p.terminate()
    for p in procs:
        try:
            p.wait(40)
        except subprocess.TimeoutExpired:
            p.kill()
            p.wait(10)
