"""Jitter: each scheduled occurrence fires at its time plus an offset fixed per (task,
occurrence), so every scheduler, however many and whenever they run, computes the same instant.

The offset is a hash of the task id and the nominal occurrence (epoch ms), reduced into
``[0, jitter_seconds)`` at millisecond grain: spread evenly over the window, and the same on
every machine (no random state, no clock). A task keeps its nominal occurrence in
``next_occurrence`` while ``next_run_at`` holds the instant it fires; runs keep the nominal one
as ``scheduled_for`` and their ids are derived from it. A snoozed occurrence fires exactly at
``snoozed_until`` (it is not jittered again).
"""

import hashlib

from app.core.task import Task


def offset_ms(task_id: str, occurrence_ms: int, jitter_seconds: int) -> int:
    """The offset of one occurrence, in ``[0, jitter_seconds * 1000)`` ms (0 without jitter)."""
    window = jitter_seconds * 1000
    if window <= 0:
        return 0
    digest = hashlib.blake2b(f"{task_id}:{occurrence_ms}".encode(), digest_size=8).digest()
    return int.from_bytes(digest, "big") % window


def fire_at(task: Task, occurrence_ms: int, after_fire_ms: int | None = None) -> int:
    """The instant ``occurrence_ms`` of ``task`` fires: its offset added, never before
    ``after_fire_ms`` (the occurrence before it: with a window wider than the gap between
    occurrences, they still fire in order, each within its own window)."""
    if task.jitter_seconds <= 0 or occurrence_ms == task.snoozed_until:
        return occurrence_ms
    fire = occurrence_ms + offset_ms(task.id, occurrence_ms, task.jitter_seconds)
    if after_fire_ms is not None and after_fire_ms > fire:
        fire = min(after_fire_ms, occurrence_ms + task.jitter_seconds * 1000 - 1)
    return fire


def nominal(task: Task) -> int | None:
    """The nominal occurrence of the task's ``next_run_at``: ``next_occurrence`` when it belongs
    to it (within the jitter window before it), else ``next_run_at`` itself (no jitter, a
    snoozed occurrence)."""
    fire, occ = task.next_run_at, task.next_occurrence
    if fire is None or occ is None:
        return fire
    if occ <= fire < occ + task.jitter_seconds * 1000:
        return occ
    return fire


def placed(task: Task, occurrence_ms: int | None) -> tuple[int | None, int | None]:
    """``(next_run_at, next_occurrence)`` of a task whose schedule (re)starts at
    ``occurrence_ms``: the instant it fires, and the nominal occurrence when they differ."""
    if occurrence_ms is None:
        return None, None
    fire = fire_at(task, occurrence_ms)
    return fire, (occurrence_ms if fire != occurrence_ms else None)
