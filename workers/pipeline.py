"""Run a pipeline's steps in order: templating, per-step timeouts, outputs passed along.

No Redis here: the job records what this returns. Each step runs in a thread that the runner
waits on for at most the step's ``timeout_seconds``; on timeout the step fails and its cancel
event is set (``sleep`` stops at once, ``http.request`` is bounded by its own timeout too).
Actions registered ``inline`` never block, so they run directly, without a thread. The first
failing step fails the attempt and the steps after it are ``skipped``.
"""

import json
import threading
import time
from dataclasses import dataclass, field
from typing import Any

import msgspec

from app import clock
from app.core.actions import ACTION_PARAMS
from app.core.errors import PipelineError
from app.core.pipeline import Pipeline
from app.core.task import Run, Task
from app.core.templating import TemplateError, render
from app.settings import Settings
from workers.actions import ACTIONS, INLINE, Emit, Resolve, StepContext, StepFailed, resolve_host

#: a step's output is kept up to this size once serialized (JSON); longer ones are cut
MAX_OUTPUT_BYTES = 64 * 1024
MAX_ERROR_CHARS = 4000


@dataclass
class PipelineResult:
    succeeded: bool
    #: one record per step: name, action, status, started_at, finished_at, duration_ms,
    #: output (and output_truncated), error
    steps: list[dict[str, Any]]
    error: str | None = None


@dataclass
class _Outcome:
    output: Any = None
    error: str | None = None
    done: threading.Event = field(default_factory=threading.Event)


def template_context(task: Task, run: Run, attempt: int) -> dict[str, Any]:
    event = run.event
    return {
        "task": {"id": task.id},
        "run": {"id": run.id, "attempt": attempt, "scheduled_for": clock.iso(run.scheduled_for)},
        "event": {"name": event.get("name"), "data": event.get("data") or {}} if event else None,
        "steps": {},
    }


def run_pipeline(
    pipeline: Pipeline,
    task: Task,
    run: Run,
    settings: Settings,
    *,
    attempt: int | None = None,
    emit: Emit | None = None,
    resolve: Resolve = resolve_host,
    stop: threading.Event | None = None,
) -> PipelineResult:
    """Execute every step; ``stop`` (set when the attempt lost its lease) skips the rest."""
    context = template_context(task, run, attempt or run.attempt)
    records: list[dict[str, Any]] = []
    error: str | None = None
    for step in pipeline.steps:
        record: dict[str, Any] = {"name": step.name, "action": step.action}
        records.append(record)
        if error is not None:
            record["status"] = "skipped"
            continue
        if stop is not None and stop.is_set():
            record["status"] = "skipped"
            error = "attempt stopped: its heartbeat lease was lost"
            continue
        ctx = StepContext(
            task=task,
            run=run,
            settings=settings,
            timeout=step.timeout_seconds,
            emit=emit,
            resolve=resolve,
        )
        started_ms, t0 = clock.now_ms(), time.monotonic()
        outcome = _run_step(step.action, step.params, context, ctx)
        duration_ms = round((time.monotonic() - t0) * 1000)
        record.update(
            status="failed" if outcome.error is not None else "succeeded",
            started_at=clock.iso(started_ms),
            finished_at=clock.iso(started_ms + duration_ms),
            duration_ms=duration_ms,
        )
        if outcome.output is not None:
            record.update(stored_output(outcome.output))
        if outcome.error is not None:
            record["error"] = outcome.error[:MAX_ERROR_CHARS]
            error = f"step {step.name} ({step.action}): {record['error']}"
        else:
            context["steps"][step.name] = {"output": outcome.output}
    return PipelineResult(succeeded=error is None, steps=records, error=error)


def _run_step(
    action: str, params: dict[str, Any], context: dict[str, Any], ctx: StepContext
) -> _Outcome:
    outcome = _Outcome()
    try:
        rendered = render(params, context)
        typed = msgspec.convert(rendered, ACTION_PARAMS[action], strict=False)
    except TemplateError as exc:
        outcome.error = f"template {exc}"
        return outcome
    except PipelineError as exc:
        outcome.error = f"params.{exc.field}: {exc.reason}"
        return outcome
    except msgspec.ValidationError as exc:
        outcome.error = f"params after templating: {exc}"
        return outcome
    fn = ACTIONS[action]

    def target() -> None:
        try:
            outcome.output = fn(typed, ctx)
        except StepFailed as exc:
            outcome.error = str(exc)
            outcome.output = exc.output
        except Exception as exc:
            outcome.error = f"{type(exc).__name__}: {exc}"
        finally:
            outcome.done.set()

    if action in INLINE:
        target()
        return outcome
    thread = threading.Thread(target=target, name=f"chime-step-{action}", daemon=True)
    thread.start()
    if not outcome.done.wait(ctx.timeout):
        ctx.cancel.set()
        return _Outcome(error=f"timed out after {ctx.timeout:g}s")
    return outcome


def stored_output(output: Any) -> dict[str, Any]:
    """``{"output": ...}``, or the first 64 KiB of its JSON text with ``output_truncated``."""
    text = json.dumps(output, default=str, ensure_ascii=False)
    raw = text.encode()
    if len(raw) <= MAX_OUTPUT_BYTES:
        return {"output": output}
    return {
        "output": raw[:MAX_OUTPUT_BYTES].decode(errors="ignore"),
        "output_truncated": True,
    }
