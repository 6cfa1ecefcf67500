"""The ``chime dev`` supervisor on plain processes: prefixed output, and no process left after a
stop, not even a grandchild in its own process group that ignores SIGTERM (as RQ's work horse
runs)."""

import io
import sys
import textwrap
import time

from app.dev import Child, Supervisor
from tests.ops.support import alive, chime_env
from tests.support.waiting import wait_for

STUBBORN = textwrap.dedent(
    """
    import os, signal, sys, time
    pid = os.fork()
    if pid == 0:
        os.setpgrp()
        signal.signal(signal.SIGTERM, signal.SIG_IGN)
        time.sleep(120)
        os._exit(0)
    print(f"grandchild {pid}", flush=True)
    time.sleep(120)
    """
)


def test_stop_all_leaves_no_process_behind() -> None:
    out = io.StringIO()
    sup = Supervisor(out)
    sup.start(Child("stubborn", [sys.executable, "-c", STUBBORN], chime_env()))
    sup.start(Child("sleeper", [sys.executable, "-c", "import time; time.sleep(120)"], chime_env()))
    line = wait_for(lambda: "grandchild" in out.getvalue() and out.getvalue(), 20, "the fork")
    grandchild = int(line.split("grandchild ")[1].split()[0])
    pids = [c.proc.pid for c in sup.children if c.proc] + [grandchild]
    assert all(alive(p) for p in pids)

    started = time.monotonic()
    sup.stop_all(grace=1)

    assert [p for p in pids if alive(p)] == []
    assert time.monotonic() - started < 10
    assert "stubborn  | grandchild" in out.getvalue()


def test_first_exited_names_the_child_that_died() -> None:
    sup = Supervisor(io.StringIO())
    sup.start(Child("quick", [sys.executable, "-c", "raise SystemExit(3)"], chime_env()))
    sup.start(Child("slow", [sys.executable, "-c", "import time; time.sleep(120)"], chime_env()))
    try:
        dead = wait_for(sup.first_exited, 20, "the quick child to exit")
        assert dead.name == "quick"
        assert dead.proc is not None and dead.proc.returncode == 3
    finally:
        sup.stop_all(grace=5)


def test_an_orphaned_grandchild_seen_earlier_is_stopped_too() -> None:
    out = io.StringIO()
    sup = Supervisor(out)
    script = STUBBORN.replace(
        'print(f"grandchild {pid}", flush=True)\ntime.sleep(120)',
        'print(f"grandchild {pid}", flush=True)\ntime.sleep(0.5)',
    )
    sup.start(Child("parent", [sys.executable, "-c", script], chime_env()))
    line = wait_for(lambda: "grandchild" in out.getvalue() and out.getvalue(), 20, "the fork")
    grandchild = int(line.split("grandchild ")[1].split()[0])
    sup.watch()
    wait_for(sup.first_exited, 20, "the parent to exit")
    assert alive(grandchild)

    sup.stop_all(grace=1)

    assert not alive(grandchild)
