"""Run a pipeline's steps in order on the event loop: templating, per-step timeouts, outputs.

No Redis here: the job records what this returns. Each step runs under its own
``timeout_seconds`` (``asyncio.timeout``): on timeout the step is cancelled where it waits, so an
``http.request`` is aborted and its connection closed, and a ``sleep`` ends at once. The first
failing step fails the attempt and the steps after it are ``skipped``.

Keeping the loop free: rendering the templates of a large pipeline (or one fed by a large earlier
output) is Python code that can take long, so it runs on a thread, where the interpreter hands
the loop its turn every few milliseconds; smaller ones render inline. Rendering stops as soon as
a step's params would pass ``RENDER_LIMIT`` (``app/core/templating.py``).

Secrets: the run's :class:`Credentials` give ``{{ secrets.NAME }}`` its values and the
``http.request`` signing key. Every step's output and error is masked (``app/core/masking.py``)
before it is kept or offered to later steps' templates, so no value reaches the run record.
"""

import asyncio
import contextlib
import json
import time
from collections.abc import Coroutine
from dataclasses import dataclass
from typing import Any

import httpx
import msgspec

from app import clock
from app.core.actions import ACTION_PARAMS, ActionParams
from app.core.errors import PipelineError
from app.core.masking import Masker
from app.core.pipeline import Pipeline, Step
from app.core.status import RunStatus
from app.core.task import Run, Task
from app.core.templating import TemplateError, render, secret_refs
from app.settings import Settings
from app.store.secrets import Credentials
from workers.actions import Emit, StepContext, StepFailed, call_action
from workers.egress import EgressPolicy

#: a step's output is kept up to this size once serialized (JSON); longer ones are cut
MAX_OUTPUT_BYTES = 64 * 1024
MAX_ERROR_CHARS = 4000
#: the error of a step aborted (or skipped) because the run's cancel was requested
CANCELED = "canceled by request"
#: params or earlier outputs larger than this (JSON bytes) are rendered on a thread
INLINE_RENDER_BYTES = 64 * 1024


@dataclass
class PipelineResult:
    succeeded: bool
    #: one record per step: name, action, status, started_at, finished_at, duration_ms,
    #: output (and output_truncated), error
    steps: list[dict[str, Any]]
    error: str | None = None


def template_context(
    task: Task, run: Run, attempt: int, secrets: dict[str, str] | None = None
) -> dict[str, Any]:
    event = run.event
    return {
        "task": {"id": task.id},
        "run": {"id": run.id, "attempt": attempt, "scheduled_for": clock.iso(run.scheduled_for)},
        "event": {"name": event.get("name"), "data": event.get("data") or {}} if event else None,
        "steps": {},
        "secrets": dict(secrets or {}),
    }


async def run_pipeline(
    pipeline: Pipeline,
    task: Task,
    run: Run,
    settings: Settings,
    *,
    attempt: int | None = None,
    emit: Emit | None = None,
    http: httpx.AsyncClient | None = None,
    policy: EgressPolicy | None = None,
    stop: asyncio.Event | None = None,
    credentials: Credentials | None = None,
    cancel: asyncio.Event | None = None,
    run_extra: dict[str, Any] | None = None,
) -> PipelineResult:
    """Execute every step; ``stop`` (set when the attempt lost its lease) skips the rest;
    ``cancel`` (set when the run's cancel was requested) aborts the step in flight too."""
    number = attempt or run.attempt
    creds = credentials or Credentials()
    mask = Masker(creds.secrets.values())
    context = template_context(task, run, number, creds.secrets)
    context["run"].update(run_extra or {})
    large = len(msgspec.json.encode(task.payload)) > INLINE_RENDER_BYTES
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
        if cancel is not None and cancel.is_set():
            record["status"] = "skipped"
            error = CANCELED
            continue
        ctx = StepContext(
            task=task,
            run=run,
            settings=settings,
            timeout=step.timeout_seconds,
            attempt=number,
            emit=emit,
            http=http,
            policy=policy,
            signing_key=creds.signing_key,
            signing_error=creds.signing_error,
            mask=mask,
        )
        output, step_error, kept = await _run_step(
            step, context, ctx, large, creds.unavailable, cancel
        )
        duration_ms = clock.ms(time.monotonic() - ctx.started)
        started_ms = clock.now_ms() - duration_ms
        record.update(
            status=RunStatus.FAILED if step_error is not None else RunStatus.SUCCEEDED,
            started_at=clock.iso(started_ms),
            finished_at=clock.iso(started_ms + duration_ms),
            duration_ms=duration_ms,
        )
        if kept is not None:
            record.update(kept)
            large = large or bool(kept.get("output_truncated"))
        if step_error is not None:
            record["error"] = step_error[:MAX_ERROR_CHARS]
            error = f"step {step.name} ({step.action}): {record['error']}"
        else:
            context["steps"][step.name] = {"output": output}
    return PipelineResult(succeeded=error is None, steps=records, error=error)


async def _run_step(
    step: Step,
    context: dict[str, Any],
    ctx: StepContext,
    large: bool,
    unavailable: dict[str, str],
    cancel: asyncio.Event | None = None,
) -> tuple[Any, str | None, dict[str, Any] | None]:
    """(output, error, the output as stored) of one step, secrets masked; the step's clock
    starts before its params are rendered, as the step's ``started_at`` says."""
    for _, name in secret_refs(step.params, "params") if unavailable else ():
        if name in unavailable:
            return None, f"secret {name}: {unavailable[name]}", None
    output, error = await _execute(step, context, ctx, large, cancel)
    if ctx.mask:
        output = ctx.mask(output)
        error = None if error is None else ctx.mask.text(error)
    kept = stored_output(output) if output is not None else None
    return output, error, kept


async def _execute(
    step: Step,
    context: dict[str, Any],
    ctx: StepContext,
    large: bool,
    cancel: asyncio.Event | None = None,
) -> tuple[Any, str | None]:
    try:
        if large:
            typed = await asyncio.to_thread(_params, step, context)
        else:
            typed = _params(step, context)
    except _BadParams as exc:
        return None, str(exc)
    output: Any = None
    error: str | None = None
    try:
        async with asyncio.timeout(ctx.remaining()):
            output = await _unless_canceled(call_action(step.action, typed, ctx), cancel)
    except TimeoutError:
        return None, f"timed out after {ctx.timeout:g}s"
    except _Canceled:
        return None, CANCELED
    except StepFailed as exc:
        output, error = exc.output, str(exc)
    except Exception as exc:
        error = f"{type(exc).__name__}: {exc}"
    return output, error


class _Canceled(Exception):
    """The run's cancel was requested while its step ran: the step was aborted."""


async def _unless_canceled(action: Coroutine[Any, Any, Any], cancel: asyncio.Event | None) -> Any:
    """The action's result, or :class:`_Canceled` as soon as ``cancel`` is set: the action is
    cancelled then (an HTTP request in flight is cut, a sleep ends)."""
    if cancel is None:
        return await action
    if cancel.is_set():
        action.close()
        raise _Canceled
    work = asyncio.ensure_future(action)
    canceled = asyncio.ensure_future(cancel.wait())
    try:
        await asyncio.wait({work, canceled}, return_when=asyncio.FIRST_COMPLETED)
    finally:
        canceled.cancel()
        if not work.done():
            work.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await work
    if work.cancelled():
        raise _Canceled
    return work.result()


class _BadParams(Exception):
    """The step's params after templating do not fit its action."""


def _params(step: Step, context: dict[str, Any]) -> ActionParams:
    try:
        rendered = render(step.params, context)
        typed: ActionParams = msgspec.convert(rendered, ACTION_PARAMS[step.action], strict=False)
    except TemplateError as exc:
        raise _BadParams(f"template {exc}") from None
    except PipelineError as exc:
        raise _BadParams(f"params.{exc.field}: {exc.reason}") from None
    except msgspec.ValidationError as exc:
        raise _BadParams(f"params after templating: {exc}") from None
    return typed


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
