"""Every status, trigger and schedule kind the Lua scripts write or compare is a member of the
Python enums (``app/core/status.py``): a misspelt ``'cancelled'`` in a script fails here rather
than leaving a run no query can find."""

import re
from pathlib import Path

import pytest

from app.core.status import (
    BackoffStrategy,
    MisfirePolicy,
    OverlapPolicy,
    RunStatus,
    ScheduleKind,
    TaskStatus,
    Trigger,
)

LUA = Path(__file__).resolve().parents[2] / "lua"
#: RQ's own records (job and worker hashes) have RQ's vocabulary, not Chime's
RQ_SCRIPTS = {"rq_start_jobs.lua", "rq_finish_jobs.lua"}
#: literals the scripts compare that name no status, trigger or kind, and why
NOT_VOCABULARY = {
    "keep": "update_task: leave the task's place in due as it is",
    "clear": "update_task: take the task out of due",
    "repeat": "commit_occurrence: the schedule repeats (the other mode is the kind 'once')",
    "exists": "commit_occurrence: the run of this occurrence was made before (an outcome)",
}
STATUSES = {m.value for m in TaskStatus} | {m.value for m in RunStatus}
VOCABULARY = (
    STATUSES
    | {m.value for m in Trigger}
    | {m.value for m in ScheduleKind}
    | {m.value for m in MisfirePolicy}
    | {m.value for m in OverlapPolicy}
    | {m.value for m in BackoffStrategy}
)

_COMPARED = re.compile(r"[=~]=\s*'([a-z_]+)'|'([a-z_]+)'\s*[=~]=")
_ASSIGNED = re.compile(r"\b(?:\w*status|trigger|\w*kind)\s*=\s*'([a-z_]+)'")
_STATUS_WRITTEN = re.compile(r"'HSET',[^)]*?'status',\s*'([a-z_]+)'", re.DOTALL)


def _scripts() -> list[Path]:
    found = sorted([*LUA.glob("*.lua"), *LUA.glob("includes/*.lua")])
    return [p for p in found if p.name not in RQ_SCRIPTS]


def _code(path: Path) -> str:
    """The script without its comments (headers quote statuses in prose)."""
    return "\n".join(line.split("--", 1)[0] for line in path.read_text().splitlines())


def _words(pattern: re.Pattern[str]) -> dict[str, set[str]]:
    out: dict[str, set[str]] = {}
    for path in _scripts():
        for m in pattern.finditer(_code(path)):
            word = next(g for g in m.groups() if g)
            out.setdefault(word, set()).add(path.name)
    return out


def test_the_scripts_are_found() -> None:
    assert len(_scripts()) >= 15
    assert {"create_task.lua", "finish_run.lua", "chime_create_run.lua"} <= {
        p.name for p in _scripts()
    }


@pytest.mark.parametrize(
    ("pattern", "seen"),
    [
        (_COMPARED, {"canceled", "pending", "running", "active", "once", "schedule"}),
        (_ASSIGNED, {"schedule", "run_now", "event", "succeeded", "failed"}),
    ],
    ids=["compared", "assigned"],
)
def test_every_status_kind_and_trigger_in_a_script_is_an_enum_member(
    pattern: re.Pattern[str], seen: set[str]
) -> None:
    words = _words(pattern)
    # the extraction sees what the scripts do (a pattern that matched nothing would pass below)
    assert seen <= set(words)
    unknown = {w: sorted(f) for w, f in words.items() if w not in VOCABULARY | set(NOT_VOCABULARY)}
    assert not unknown, f"not in app/core/status.py: {unknown}"


def test_every_status_a_script_writes_is_a_task_or_run_status() -> None:
    written = _words(_STATUS_WRITTEN)
    assert {"canceled", "completed", "paused", "pending", "queued", "running", "deduped"} <= set(
        written
    )
    unknown = {w: sorted(f) for w, f in written.items() if w not in STATUSES}
    assert not unknown, f"not a TaskStatus or RunStatus: {unknown}"


def test_a_misspelt_status_would_be_caught() -> None:
    code = "if status == 'cancelled' then\n  status = 'runing'\nend"
    compared = {next(g for g in m.groups() if g) for m in _COMPARED.finditer(code)}
    assigned = {m.group(1) for m in _ASSIGNED.finditer(code)}
    assert compared - VOCABULARY == {"cancelled"}
    assert assigned - VOCABULARY == {"runing"}
