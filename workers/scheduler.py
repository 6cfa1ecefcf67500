"""``chime scheduler``: turn due occurrences into runs on RQ, exactly once, on time.

One pass claims a batch of due tasks (``lua/claim_due.lua``: out of ``due`` into ``claims``
under a lease), reads them, plans each occurrence in Python (next time, misfire policy) and
commits the batch in one pipeline (``lua/commit_occurrence.lua``: runs with ids derived from
task and occurrence, next place in ``due``, claim dropped), then enqueues the queued runs on
RQ. Delayed runs (retry backoff, snoozed event runs) are claimed and released the same way,
and the outbox pass (``app/store/outbox.py``) enqueues again every queued run that no one
owns once its deadline passed. A scheduler that dies anywhere leaves claims that another one
takes over when their lease lapses, and outbox entries that are enqueued again after the
grace: nothing is lost and no occurrence runs twice.

Between passes the scheduler sleeps until the earliest time in any of those sets, and wakes at
once on a message on ``keys.wake`` (published when a task becomes the earliest in ``due``), so
it neither polls nor runs late. Writes nobody announces (a worker parking a retry, an outbox
deadline) are bounded by a longest sleep of a few seconds.
"""

import contextlib
import logging
import os
import signal
import sys
import threading
import time
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from functools import partial
from types import FrameType
from typing import Any, Literal, TypeAlias

import redis

from app import clock
from app.clock import ms
from app.core.errors import ChimeError, ConfigError, ScheduleError
from app.core.planning import plan_occurrence
from app.core.schedules import parse_schedule
from app.core.status import RunStatus, ScheduleKind, TaskStatus, Trigger
from app.core.task import Task
from app.service.backend import Backend
from app.service.dispatch import Made, dispatch
from app.service.runs import reconcile
from app.settings import Settings
from app.store import connection, scripts, stats
from app.store.codec import from_hash
from app.store.enqueue import describe
from app.store.keys import Keys
from app.store.scheduling import (
    Claim,
    claim,
    commit_occurrence,
    parse_commit,
    parse_release,
    release_claims,
    release_delayed,
)
from app.store.tasks import TaskStore

logger = logging.getLogger("chime.scheduler")

#: ``after_claim`` or ``after_commit``: the process stops itself there (SIGSTOP), for tests
#: that kill a scheduler at the worst moment.
HALT_ENV = "CHIME_SCHEDULER_TEST_HALT"
HALT_POINTS = frozenset({"after_claim", "after_commit"})
#: The longest sleep: bounds the delay of writes that publish no wake-up.
MAX_SLEEP_SECONDS = 5.0
#: A sleep is cut into slices this long so a stop request is seen quickly (no Redis traffic).
_STOP_CHECK_SECONDS = 0.2
_WAKE_LEAD_SECONDS = 0.002
_WAKE_STEP_SECONDS = 0.0002
#: the longest ``pause_reason`` the scheduler writes
PAUSE_REASON_MAX = 500
_SCRIPTS = (
    "claim_due",
    "commit_occurrence",
    "release_claims",
    "release_delayed",
    "sweep_outbox",
    "reconcile_outbox",
)
#: the longest wait between two tries after an unexpected error
_ERROR_BACKOFF_CAP_SECONDS = 30.0

#: what a scheduler claims: due tasks, or delayed runs
Kind: TypeAlias = Literal["due", "delayed"]
#: a failed commit's log event, and what the claimed member is
_COMMIT_FAILED: dict[Kind, tuple[str, str]] = {
    "due": ("scheduler.commit_failed", "task_id"),
    "delayed": ("scheduler.release_failed", "run_id"),
}


@dataclass(frozen=True)
class Settled:
    """One claim committed: the runs it made or moved into a new status, the occurrences its
    misfire policy skipped, and the script's outcome."""

    made: list[Made] = field(default_factory=list)
    skipped: int = 0
    outcome: str = ""


#: a claim and how to read the reply of its script
Call: TypeAlias = tuple[Claim, Callable[[Any], Settled]]
#: put one script call per claim kept in the pipeline; returns the calls in order
Stage: TypeAlias = Callable[[Sequence[Claim], int, Any], list[Call]]


@dataclass
class PassResult:
    """What one pass did."""

    claimed: int = 0
    #: runs created for scheduled occurrences, by status
    runs: Counter[str] = field(default_factory=Counter)
    #: delayed runs released, by outcome
    released: Counter[str] = field(default_factory=Counter)
    swept: int = 0
    enqueued: int = 0
    #: a batch came back full: more is due, go again without sleeping
    more: bool = False


class Scheduler:
    """The scheduler loop; tests drive it with :meth:`run_once` or run :meth:`run` in a thread."""

    def __init__(
        self,
        settings: Settings,
        *,
        client: redis.Redis | None = None,
        rq: redis.Redis | None = None,
        max_sleep: float | None = None,
        hook: Callable[[str], None] | None = None,
    ) -> None:
        self.settings = settings
        self.keys = Keys(settings.key_prefix)
        self.r = client or connection.client(settings.redis_url)
        self.rq = rq or connection.rq_client(settings.redis_url)
        self.lease_ms = ms(settings.claim_lease_seconds)
        self.grace_ms = ms(settings.enqueue_grace_seconds)
        self.misfire_ms = ms(settings.misfire_grace_seconds)
        self.batch = settings.claim_batch
        self.max_sleep = (
            max_sleep
            if max_sleep is not None
            else min(MAX_SLEEP_SECONDS, settings.enqueue_grace_seconds)
        )
        #: called at ``after_claim`` and ``after_commit`` (tests: stop or race right there)
        self.hook = hook
        #: claims taken and not yet committed: given back on stop
        self._held: dict[Kind, dict[str, Claim]] = {"due": {}, "delayed": {}}
        self.backend = Backend(self.r, self.rq, self.keys, settings)

    # -- one pass ----------------------------------------------------------------------------

    def run_once(self) -> PassResult:
        """Claim and commit due tasks, release delayed runs, sweep the outbox: once each."""
        return self._pass(due=True, delayed=True, outbox=True)

    def _pass(self, *, due: bool, delayed: bool, outbox: bool) -> PassResult:
        result = PassResult()
        if due:
            self._due_tasks(clock.now_ms(), result)
        if delayed:
            self._delayed_runs(clock.now_ms(), result)
        if outbox:
            self._sweep(clock.now_ms(), result)
        return result

    def _due_tasks(self, now: int, result: PassResult) -> None:
        claims = self._claim("due", now, result)
        if not claims:
            return
        self._halt("after_claim")
        settled = self._commit("due", claims, now, self._stage_due)
        self._halt("after_commit")
        made = [m for s in settled for m in s.made]
        skipped = sum(s.skipped for s in settled)
        result.runs.update(m.status for m in made)
        # the batch size, the skipped misfires and the runs' counts go in one round trip
        pipe = self.r.pipeline(transaction=False)
        stats.observe_batch(pipe, self.keys, len(claims))
        if skipped:
            stats.incr(pipe, self.keys, stats.MISFIRES_SKIPPED, skipped)
        result.enqueued += len(dispatch(self.backend, made, pipe=pipe))
        logger.debug(
            "scheduler.batch",
            extra={"claimed": len(claims), "enqueued": result.enqueued, "skipped": skipped},
        )

    def _claim(self, kind: Kind, now: int, result: PassResult) -> list[Claim]:
        """Claim a batch of ``kind`` (held until committed or given back)."""
        claims = claim(self.r, self.keys, kind, now, self.lease_ms, self.batch)
        if kind == "due":
            result.claimed += len(claims)
        result.more = result.more or len(claims) >= self.batch
        self._held[kind].update((c.member, c) for c in claims)
        return claims

    def _commit(self, kind: Kind, claims: Sequence[Claim], now: int, stage: Stage) -> list[Settled]:
        """The one commit path of both kinds: ``stage`` puts one script call per claim it keeps
        in a pipeline (a claim it gives back or drops is no longer held), and each reply is
        read. A claim whose script failed stays claimed until its lease lapses. The scripts
        read what they decide on themselves (the task's dedupe window included), so no reply
        asks for a second try."""
        held = self._held[kind]
        pipe = self.r.pipeline(transaction=False)
        calls = stage(claims, now, pipe)
        if not calls:
            return []
        settled: list[Settled] = []
        for (c, parse), reply in zip(calls, pipe.execute(raise_on_error=False), strict=True):
            held.pop(c.member, None)
            if isinstance(reply, Exception):
                event, member = _COMMIT_FAILED[kind]
                logger.error(event, extra={member: c.member, "error": reply})
                continue
            settled.append(parse(reply))
        return settled

    def _stage_due(self, claims: Sequence[Claim], now: int, pipe: Any) -> list[Call]:
        give_back, commits = self._plan(claims, now)
        if give_back:
            release_claims(self.r, self.keys, "due", give_back)
            for c in give_back:
                self._held["due"].pop(c.member, None)
        calls: list[Call] = []
        for c, task, plan in commits:
            commit_occurrence(self.r, self.keys, self.settings, task, c.token, plan, now, pipe=pipe)
            calls.append((c, partial(_settle_commit, task, plan.skipped)))
        return calls

    def _plan(
        self, claims: Sequence[Claim], now: int
    ) -> tuple[list[Claim], list[tuple[Claim, Task, Any]]]:
        """(claims to give back: the task is not due any more, (claim, task, plan) to commit);
        a task whose schedule cannot be computed is paused alone; any other failure of its plan
        leaves it claimed, retried when the lease lapses."""
        tasks = self._load_tasks([c.member for c in claims])
        give_back: list[Claim] = []
        commits: list[tuple[Claim, Task, Any]] = []
        for c, task in zip(claims, tasks, strict=True):
            if (
                task is None
                or task.status != TaskStatus.ACTIVE
                or task.schedule_kind == ScheduleKind.EVENT
                or task.next_run_at is None
                or task.next_run_at > now
            ):
                give_back.append(c)
                continue
            try:
                plan = plan_occurrence(task, now, self.misfire_ms)
            except ScheduleError as exc:
                # this task alone stops: paused, saying why; the batch goes on
                self._pause_unplannable(task, c, exc)
                continue
            except Exception:
                # left claimed: retried when the lease lapses, and logged each time
                logger.exception("scheduler.plan_failed", extra={"task_id": task.id})
                self._held["due"].pop(c.member, None)
                continue
            commits.append((c, task, plan))
        return give_back, commits

    def _pause_unplannable(self, task: Task, claim: Claim, exc: ScheduleError) -> None:
        """A task whose next occurrence cannot be computed (a rule too slow to compute within
        the bound, or one that no longer parses) is paused with a ``pause_reason`` naming why,
        and its claim is dropped: it never holds up the other tasks again."""
        reason = f"schedule: {exc.reason}"[:PAUSE_REASON_MAX]
        logger.warning("scheduler.task_paused", extra={"task_id": task.id, "reason": reason})
        try:
            TaskStore(self.r, self.keys, self.settings).pause_for(
                task.id, reason, cancel_runs=False
            )
        except ChimeError as err:
            logger.warning("scheduler.pause_failed", extra={"task_id": task.id, "error": err})
        release_claims(self.r, self.keys, "due", [claim])
        self._held["due"].pop(claim.member, None)

    def _load_tasks(self, task_ids: Sequence[str]) -> list[Task | None]:
        pipe = self.r.pipeline(transaction=False)
        for task_id in task_ids:
            pipe.hgetall(self.keys.task(task_id))
        return [from_hash(Task, f) if f else None for f in pipe.execute()]

    def _delayed_runs(self, now: int, result: PassResult) -> None:
        claims = self._claim("delayed", now, result)
        if not claims:
            return
        settled = self._commit("delayed", claims, now, self._stage_delayed)
        result.released.update(s.outcome for s in settled)
        result.enqueued += len(dispatch(self.backend, [m for s in settled for m in s.made]))

    def _stage_delayed(self, claims: Sequence[Claim], now: int, pipe: Any) -> list[Call]:
        for c in claims:
            release_delayed(self.r, self.keys, self.settings, c.member, c.token, now, pipe=pipe)
        return [(c, partial(_settle_release, c.member)) for c in claims]

    def _sweep(self, now: int, result: PassResult) -> None:
        found = reconcile(self.backend, now, self.grace_ms, self.batch)
        result.more = result.more or found.more
        if found.requeued:
            result.enqueued += len(found.requeued)
            result.swept += len(found.requeued)
            logger.warning("scheduler.outbox_enqueued_again", extra={"runs": len(found.requeued)})

    def _halt(self, point: str) -> None:
        if self.hook is not None:
            self.hook(point)

    # -- sleeping ----------------------------------------------------------------------------

    def next_times(self) -> dict[str, int | None]:
        """The earliest score of each set the scheduler acts on (None when empty)."""
        k = self.keys
        names = {
            "due": k.due,
            "claims": k.claims,
            "delayed": k.delayed,
            "delayed_claims": k.delayed_claims,
            "outbox": k.outbox,
        }
        pipe = self.r.pipeline(transaction=False)
        for key in names.values():
            pipe.zrange(key, 0, 0, withscores=True)
        out: dict[str, int | None] = {}
        for name, first in zip(names, pipe.execute(), strict=True):
            out[name] = int(first[0][1]) if first else None
        return out

    def run(self, stop: threading.Event) -> None:
        """Loop until ``stop`` is set; then give back claims in hand."""
        logger.info("scheduler.started", extra={"batch": self.batch, "lease_ms": self.lease_ms})
        pubsub: Any = None
        outage = connection.Outage(logger, "scheduler")
        errors = 0
        try:
            while not stop.is_set():
                try:
                    if pubsub is None:
                        pubsub = self._subscribe()
                        self.warm_up()
                    self._step(pubsub, stop)
                    outage.ok()
                    errors = 0
                except redis.RedisError as exc:
                    _close(pubsub)
                    pubsub = None
                    stop.wait(outage.failed(exc))
                except Exception:
                    # a bug, not an outage: logged in full, retried less and less often
                    logger.exception("scheduler.error")
                    errors += 1
                    stop.wait(min(_ERROR_BACKOFF_CAP_SECONDS, 2 ** min(errors, 8) / 4))
        finally:
            _close(pubsub)
            self.release()
            logger.info("scheduler.stopped")

    def _subscribe(self) -> Any:
        """Subscribe to wake-ups and wait for the confirmation, so none published after this
        returns can be missed."""
        pubsub = self.r.pubsub()  # type: ignore[no-untyped-call]
        pubsub.subscribe(self.keys.wake)
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            msg = pubsub.get_message(timeout=1.0)
            if msg is not None and msg["type"] == "subscribe":
                return pubsub
        raise redis.ConnectionError("no confirmation of the wake-up subscription")

    def _step(self, pubsub: Any, stop: threading.Event) -> None:
        # drop wake-ups already received: the times read next include what they announced
        while pubsub.get_message(timeout=0.0) is not None:
            pass
        times = self.next_times()
        now = clock.now_ms()
        due = _at_or_before(now, times["due"], times["claims"])
        delayed = _at_or_before(now, times["delayed"], times["delayed_claims"])
        outbox = _at_or_before(now, times["outbox"])
        if due or delayed or outbox:
            self._pass(due=due, delayed=delayed, outbox=outbox)
            return
        known = [t for t in times.values() if t is not None]
        if not known:
            self._sleep(pubsub, stop, self.max_sleep)
            return
        wake_at = min(known)
        sleep = (wake_at - now) / 1000
        if sleep > self.max_sleep:
            self._sleep(pubsub, stop, self.max_sleep)
            return
        # the wait on the socket may overshoot by a millisecond or two: it ends a little early
        # and short sleeps reach the due millisecond itself
        if self._sleep(pubsub, stop, sleep - _WAKE_LEAD_SECONDS) or stop.is_set():
            return
        while (now := clock.now_ms()) < wake_at:
            time.sleep(_WAKE_STEP_SECONDS)
        # act on the earliest time at once, without reading the times again
        self._pass(
            due=_at_or_before(now, times["due"], times["claims"]),
            delayed=_at_or_before(now, times["delayed"], times["delayed_claims"]),
            outbox=_at_or_before(now, times["outbox"]),
        )

    def _sleep(self, pubsub: Any, stop: threading.Event, seconds: float) -> bool:
        """Wait ``seconds``; True when a wake-up message cut the wait short."""
        deadline = time.monotonic() + seconds
        while not stop.is_set():
            left = deadline - time.monotonic()
            if left <= 0:
                return False
            msg = pubsub.get_message(timeout=min(left, _STOP_CHECK_SECONDS))
            if msg is not None and msg["type"] == "message":
                return True
        return False

    def warm_up(self) -> None:
        """Open both connections, load every script and the time zone database now, so the
        first due task does not pay for them."""
        self.rq.ping()
        for name in _SCRIPTS:
            self.r.script_load(scripts.source(name))
        now = clock.now()
        for kind, expr in (("cron", "* * * * *"), ("rrule", "RRULE:FREQ=DAILY"), ("once", "")):
            parse_schedule(kind, expr or clock.iso(clock.now_ms()), "UTC", now).next_after(now)

    def release(self) -> None:
        """Give every claim in hand back to its schedule (a stop between claim and commit)."""
        try:
            for kind, held in self._held.items():
                if held:
                    release_claims(self.r, self.keys, kind, list(held.values()))
        except redis.RedisError as exc:
            logger.warning("scheduler.release_failed", extra={"error": str(exc)})
            return
        for held in self._held.values():
            held.clear()

    def close(self) -> None:
        self.r.close()
        self.rq.close()


def _settle_commit(task: Task, skipped: int, reply: Any) -> Settled:
    """A due task's commit: the runs it made, their jobs described from the task as read for
    the commit (no second read of the run and the task)."""
    commit = parse_commit(reply)
    if commit.outcome != "committed":
        return Settled()
    made = [
        Made(
            run_id,
            status,
            priority,
            Trigger.SCHEDULE,
            describe(task.title, task.id, task.created_by, Trigger.SCHEDULE, run_id),
        )
        for run_id, status, priority in commit.runs
        if status != "exists"
    ]
    return Settled(made=made, skipped=skipped, outcome=commit.outcome)


def _settle_release(run_id: str, reply: Any) -> Settled:
    """A delayed run's release: queued or deduped now is a new status."""
    release = parse_release(reply)
    made = []
    if release.outcome in (RunStatus.QUEUED, RunStatus.DEDUPED):
        made.append(Made(run_id, release.outcome, release.priority, release.trigger))
    return Settled(made=made, outcome=release.outcome)


def _at_or_before(now: int, *times: int | None) -> bool:
    return any(t is not None and t <= now for t in times)


def _close(pubsub: Any) -> None:
    if pubsub is not None:
        with contextlib.suppress(redis.RedisError):
            pubsub.close()


def halt_hook(point: str | None) -> Callable[[str], None] | None:
    """The test hook of ``CHIME_SCHEDULER_TEST_HALT``: stop this process (SIGSTOP) at ``point``
    so a test can ``kill -9`` it there."""
    if point is None:
        return None
    if point not in HALT_POINTS:
        raise ConfigError(f"{HALT_ENV} must be one of {', '.join(sorted(HALT_POINTS))}")

    def halt(at: str) -> None:
        if at == point:
            logger.warning("scheduler.halting", extra={"point": at})
            os.kill(os.getpid(), signal.SIGSTOP)

    return halt


def main(settings: Settings) -> None:
    """``chime scheduler``: run until SIGTERM or SIGINT, then finish the batch in hand, give
    back claims and return (exit status 0)."""
    stop = threading.Event()

    def on_signal(signum: int, frame: FrameType | None) -> None:
        logger.info("scheduler.stopping", extra={"signal": signal.Signals(signum).name})
        stop.set()

    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGINT, on_signal)
    scheduler = Scheduler(settings, hook=halt_hook(os.environ.get(HALT_ENV) or None))
    try:
        scheduler.run(stop)
    finally:
        scheduler.close()


if __name__ == "__main__":
    from app.logs import configure_logging

    try:
        _settings = Settings.from_env()
        configure_logging(_settings.log_level)
        main(_settings)
    except ConfigError as exc:
        print(f"chime: {exc}", file=sys.stderr)
        sys.exit(2)
