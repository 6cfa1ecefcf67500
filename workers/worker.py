"""``chime worker``: one RQ worker on ``chime-p1`` .. ``chime-p9`` that runs many runs at once.

Pipelines wait on the network, so one process runs up to ``concurrency`` of them on an event
loop. It is an RQ worker all the same: registered under its name (``Worker.all``), each run it
holds in RQ's started registry with a live heartbeat until it is finished or failed, so
rq-dashboard shows the N jobs it is running.

The loop of a worker:

1. With ``free`` slots, one script (``lua/pop_jobs.lua``) takes up to ``free`` job ids off the
   queues, priority 1 first; a job it has no slot for stays on its queue for other workers.
   With none queued it waits on ``BLPOP`` across the queues (a short timeout, so a stop is
   seen quickly).
2. The batch is started in a few round trips: the RQ job hashes and the runs are read, each
   run is started (``start_run.lua``: lease, concurrency slot), then RQ's records of the jobs
   that start are written in one pipeline (``workers/rqstate.py``). A job whose run is not
   ``queued`` any more, or that waits for a concurrency slot, is started and finished in RQ at
   once, as a plain RQ worker would record it.
3. Each started run executes its pipeline as an asyncio task (``workers/attempts.py``).
4. Outcomes are recorded in batches: every outcome ready is in the next round trip
   (``finish_run.lua`` for each), then RQ's finished/failed records in one pipeline. A slot
   frees once its outcome is recorded.

Alongside: every ``lease / 3`` one pipeline renews the leases of every attempt in flight
(``lua/renew_runs.lua``) and RQ's worker, execution and started-registry heartbeats; a sweep
(``recover_lapsed_runs``) counts the attempts of dead workers as failed and retries them; RQ's
own registry maintenance runs every 10 minutes.

Where a job can be stranded: between step 1 and the start script of step 2 a job id is off its
queue and its run still ``queued``. A Redis error there puts the ids back at the head of their
queues; a process killed in that window (a few milliseconds) leaves the job in no queue, but
its run is still in the outbox (the ledger of queued runs until their start), and the outbox
pass of any scheduler or worker enqueues it again once its deadline passed
(``app/store/outbox.py``). Once the start script ran, the run holds a lease: a process killed
after that is recovered like any lost attempt, its RQ execution left in the started registry
until RQ's maintenance (or the run's next attempt) clears it.

SIGTERM (or SIGINT) stops taking jobs and lets the runs in flight finish within
``CHIME_WORKER_SHUTDOWN_GRACE_SECONDS``; what is left then is left to its lease. A second
signal stops at once. Redis errors never end the worker: each loop logs, backs off and goes on.
"""

import asyncio
import collections
import contextlib
import logging
import os
import resource
import signal
import traceback
import uuid
from collections.abc import Sequence
from dataclasses import dataclass

import redis
import redis.asyncio
from redis.exceptions import NoScriptError
from rq import Queue, worker_registration
from rq.job import Job
from rq.worker import BaseWorker

from app import clock
from app.logs import one_line
from app.service.runs import fill_agent_lines
from app.settings import Settings
from app.store import connection
from app.store.codec import text
from app.store.keys import QUEUE_NAMES, Keys
from app.store.runs import (
    eval_many,
    load_scripts,
    renew_call,
    script_sha,
)
from workers import job as job_module
from workers import rqstate
from workers.attempts import (
    Attempt,
    JobDeps,
    NotStarted,
    execute_attempt,
    open_runtime,
    record_attempts,
    run_on_failure,
    start_attempts,
)
from workers.pipeline import PipelineResult
from workers.sweeper import Sweeper

logger = logging.getLogger("chime.worker")

#: how long an idle worker blocks on the queues before it looks up again (seconds)
BLOCK_SECONDS = 1
#: what ``renew_runs`` answers for an attempt renewed whose run's cancel was requested
RENEWED_CANCEL_REQUESTED = 2
#: attempts renewed per script call (one pipeline holds as many calls as needed)
RENEW_CHUNK = 500
#: how often RQ's own registry maintenance runs (RQ's default)
MAINTENANCE_SECONDS = 600.0
#: ``after_pop``: the process stops itself (SIGSTOP) right after it took jobs off the queues and
#: before it starts their runs, for tests that kill a worker at that moment
HALT_ENV = "CHIME_WORKER_TEST_HALT"


class ChimeWorker(BaseWorker):
    """RQ's view of a ``chime worker``: its name, registration and RQ's maintenance. Jobs are
    executed by :class:`Worker`, never through RQ's ``execute_job``."""

    def execute_job(self, job: Job, queue: Queue) -> None:  # pragma: no cover - never called
        raise NotImplementedError("chime worker executes jobs itself")


#: the longest wait between two tries after a Redis error: work resumes within about this long
#: of Redis coming back
BACKOFF_CAP_SECONDS = 1.0


class Backoff:
    """Jittered, doubling waits after Redis errors, up to :data:`BACKOFF_CAP_SECONDS`, reset by
    a success; quiet as :class:`connection.Outage` is: one warning when an outage starts
    (``worker.<loop>.redis_unavailable``), one line when it ends."""

    def __init__(self, loop: str) -> None:
        self.outage = connection.Outage(logger, f"worker.{loop}", cap=BACKOFF_CAP_SECONDS)

    async def failed(self, exc: BaseException) -> None:
        await asyncio.sleep(self.outage.failed(exc))

    def reset(self) -> None:
        self.outage.ok()


@dataclass
class Flight:
    """A run in flight: Chime's attempt and RQ's execution of its job."""

    attempt: Attempt
    execution: rqstate.Execution
    #: the run's status once the attempt was recorded
    status: str | None = None


class Worker:
    """The concurrent worker of one process (see the module docstring)."""

    def __init__(
        self,
        settings: Settings,
        concurrency: int | None = None,
        burst: bool = False,
        name: str | None = None,
        deps: JobDeps | None = None,
    ) -> None:
        self.settings = settings
        self.concurrency = max(1, concurrency or settings.worker_concurrency)
        self.burst = burst
        self.name = name or uuid.uuid4().hex
        self.deps = deps or job_module.default_deps()
        self.keys = Keys(settings.key_prefix)
        self.queue_keys = [Queue.redis_queue_namespace_prefix + q for q in QUEUE_NAMES]
        self.interval = self.deps.heartbeat_interval
        #: RQ's heartbeat TTL of a job: a missed beat or two is not taken for a dead worker
        self.rq_ttl = int(self.interval) + 60
        self.flights: dict[str, Flight] = {}
        self.stopping = False
        self.forced = False
        self.suspended = False
        self.failure: BaseException | None = None
        self._tasks: set[asyncio.Task[None]] = set()
        self._ready: list[tuple[Flight, PipelineResult, asyncio.Future[None]]] = []
        self._recording: asyncio.Task[None] | None = None
        #: set when there may be a free slot, a stop, or a change of suspension
        self._wake = asyncio.Event()
        #: set on a second stop signal or a fatal error
        self._force = asyncio.Event()
        #: runs named on the cancel channel that were not in flight here (the last few): a
        #: cancel that arrives while a run is being started is applied once it is in flight
        self._cancels_seen: collections.deque[str] = collections.deque(maxlen=1000)

    # -- the process ---------------------------------------------------------------------

    def main(self) -> int:
        """Run until stopped (or, with ``burst``, until the queues are empty); exit status."""
        import uvloop

        return uvloop.run(self.run())

    async def run(self) -> int:
        rq_sync = connection.rq_client(self.settings.redis_url)
        self.rq_worker = ChimeWorker(
            [Queue(q, connection=rq_sync) for q in QUEUE_NAMES], name=self.name, connection=rq_sync
        )
        # RQ stretches its client's reply timeout for its own BLPOP, which this client never
        # sends: keep Chime's bound, so a hung Redis cannot hold maintenance or the exit
        rq_sync.connection_pool.connection_kwargs["socket_timeout"] = connection.SOCKET_TIMEOUT
        await asyncio.to_thread(self.rq_worker.register_birth)
        logger.info(
            "worker.started",
            extra={"worker": self.name, "concurrency": self.concurrency, "burst": self.burst},
        )
        self.rq = connection.async_client(self.settings.redis_url, decode=False)
        self.blocking = connection.async_client(
            self.settings.redis_url, decode=False, socket_timeout=BLOCK_SECONDS + 5
        )
        self.sweeper = Sweeper(self.settings)
        self._install_signals()
        try:
            async with open_runtime(self.deps, self.concurrency + 10) as rt:
                self.rt = rt
                background = [
                    asyncio.create_task(self._heartbeats()),
                    asyncio.create_task(self._sweeps()),
                    asyncio.create_task(self._maintenance()),
                    asyncio.create_task(self._cancels()),
                    asyncio.create_task(self._agent_lines()),
                ]
                try:
                    await self._dequeue()
                    await self._drain()
                finally:
                    for task in background:
                        task.cancel()
                    await asyncio.gather(*background, return_exceptions=True)
        finally:
            self._remove_signals()
            await self._close(rq_sync)
        if self.failure is not None:
            logger.error(
                "worker.failed",
                extra={"worker": self.name, "error": repr(self.failure)},
            )
            return 1
        return 0

    async def _close(self, rq_sync: redis.Redis) -> None:
        try:
            await asyncio.to_thread(self.rq_worker.register_death)
        except redis.RedisError as exc:
            logger.warning("worker.deregister_failed", extra={"error": str(exc)})
        await self.rq.aclose()
        await self.blocking.aclose()
        self.sweeper.close()
        rq_sync.close()
        logger.info("worker.stopped", extra={"worker": self.name, "left": len(self.flights)})

    def _install_signals(self) -> None:
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(sig, self.request_stop)

    def _remove_signals(self) -> None:
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.remove_signal_handler(sig)

    def request_stop(self) -> None:
        """First call: take no more jobs, finish those in flight. Second call: stop now."""
        if self.stopping:
            self.forced = True
            logger.warning("worker.stop_now", extra={"worker": self.name})
        else:
            self.stopping = True
            logger.info(
                "worker.stopping", extra={"worker": self.name, "in_flight": len(self.flights)}
            )
        if self.forced:
            self._force.set()
        self._wake.set()

    def _fatal(self, exc: BaseException) -> None:
        """An error the worker cannot go on with (a bug): stop now, exit non-zero."""
        if self.failure is None:
            self.failure = exc
            logger.error("worker.error", extra={"error": "".join(traceback.format_exception(exc))})
        self.stopping = self.forced = True
        self._force.set()
        self._wake.set()

    async def _drain(self) -> None:
        """Wait for the runs in flight, at most the shutdown grace; the rest keep their leases
        until those lapse (another worker retries them then)."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + self.settings.worker_shutdown_grace_seconds
        forced = asyncio.create_task(self._force.wait())
        try:
            while self._tasks and not self.forced:
                remaining = deadline - loop.time()
                if remaining <= 0:
                    break
                await asyncio.wait(
                    [*self._tasks, forced], timeout=remaining, return_when=asyncio.FIRST_COMPLETED
                )
        finally:
            forced.cancel()
        left = [*self._tasks, *([self._recording] if self._recording else [])]
        if self._tasks:
            logger.warning(
                "worker.left_to_leases", extra={"worker": self.name, "runs": len(self._tasks)}
            )
        for task in left:
            task.cancel()
        await asyncio.gather(*left, return_exceptions=True)

    # -- taking jobs ---------------------------------------------------------------------

    async def _dequeue(self) -> None:
        backoff = Backoff("dequeue")
        while not self.stopping:
            free = self.concurrency - len(self.flights)
            if free <= 0 or self.suspended:
                await self._idle(self.interval if self.suspended else None)
                continue
            try:
                popped = await self._pop(free)
                if not popped:
                    if self.burst:
                        if not self.flights:
                            return
                        await self._idle(None)
                        continue
                    popped = await self._block()
                    if popped and self.stopping:
                        await self._push_back(popped)
                        return
                if popped:
                    self._halt("after_pop")
                    await self._start(popped)
                backoff.reset()
            except (redis.RedisError, OSError) as exc:
                await backoff.failed(exc)
            except Exception as exc:
                self._fatal(exc)
                return

    def _halt(self, point: str) -> None:
        if os.environ.get(HALT_ENV) == point:
            logger.warning("worker.halting", extra={"point": point})
            os.kill(os.getpid(), signal.SIGSTOP)

    async def _idle(self, timeout: float | None) -> None:
        self._wake.clear()
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._wake.wait(), timeout)

    async def _pop(self, free: int) -> list[tuple[str, str]]:
        (reply,) = await eval_many(self.rq, [("pop_jobs", self.queue_keys, [free])])
        if isinstance(reply, Exception):
            raise reply
        return [
            (QUEUE_NAMES[int(reply[i]) - 1], text(reply[i + 1])) for i in range(0, len(reply), 2)
        ]

    async def _block(self) -> list[tuple[str, str]]:
        found = await self.blocking.blpop(self.queue_keys, timeout=BLOCK_SECONDS)
        if not found:
            return []
        key, job_id = (text(x) for x in found)
        return [(key[len(Queue.redis_queue_namespace_prefix) :], job_id)]

    async def _push_back(self, popped: Sequence[tuple[str, str]]) -> None:
        """Jobs taken but not started go back to the head of their queues, in order."""
        pipe = self.rq.pipeline(transaction=False)
        for name, job_id in reversed(popped):
            pipe.lpush(Queue.redis_queue_namespace_prefix + name, job_id)
        await pipe.execute()

    async def _start(self, popped: list[tuple[str, str]]) -> None:
        backoff = Backoff("start")
        for tries in range(4):
            try:
                await self._start_once(popped)
                backoff.reset()
                return
            except (redis.RedisError, OSError) as exc:
                if tries == 3:
                    logger.warning("worker.start_failed", extra={"error": one_line(exc)})
                    break
                await backoff.failed(exc)
        # the runs that did start hold a lease and are recovered after it; the rest wait on
        # their queues again
        await self._push_back(popped)

    async def _start_once(self, popped: list[tuple[str, str]]) -> None:
        pipe = self.rq.pipeline(transaction=False)
        for _, job_id in popped:
            rqstate.read(pipe, job_id)
        replies = await pipe.execute()
        jobs = [
            rqstate.parse(job_id, name, reply)
            for (name, job_id), reply in zip(popped, replies, strict=True)
        ]
        chime = [j for j in jobs if j is not None and j.run_id is not None]
        starts = await start_attempts(self.rt, [j.run_id or "" for j in chime])
        flights: list[Flight] = []
        ended: list[tuple[rqstate.Execution, str | None]] = []
        for found in jobs:
            if found is not None and found.run_id is None:
                ended.append((rqstate.Execution(found), f"not a Chime job ({found.id})"))
        for found, started in zip(chime, starts, strict=True):
            if isinstance(started, NotStarted):
                error = None
                if started.error is not None:
                    error = "".join(traceback.format_exception(started.error))
                ended.append((rqstate.Execution(found), error))
            else:
                flights.append(Flight(started, rqstate.Execution(found)))
        try:
            await self._rq_started(flights, ended)
        except redis.RedisError as exc:
            # Chime's start happened: run them; RQ's records of these jobs are written at the end
            logger.warning("worker.rq_records_failed", extra={"error": str(exc)})
        for flight in flights:
            self.flights[flight.execution.job.id] = flight
            if flight.attempt.run.id in self._cancels_seen:
                flight.attempt.canceled.set()
            task = asyncio.create_task(self._fly(flight))
            self._tasks.add(task)
            task.add_done_callback(self._landed)

    async def _rq_started(
        self, flights: list[Flight], ended: list[tuple[rqstate.Execution, str | None]]
    ) -> None:
        """RQ's records of a started batch, in one round trip: the jobs that run are
        ``started``; those that ended at once are started and finished (or failed)."""
        executions = [f.execution for f in flights] + [e for e, _ in ended]
        calls = [rqstate.start_call(self.name, executions, self.rq_ttl)]
        if ended:
            idle = not self.flights and not flights
            calls.append(rqstate.finish_call(self.name, ended, idle))
        for reply in await eval_many(self.rq, calls):
            if isinstance(reply, Exception):
                raise reply

    # -- running and recording -----------------------------------------------------------

    async def _fly(self, flight: Flight) -> None:
        result = await execute_attempt(self.rt, flight.attempt)
        done: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._ready.append((flight, result, done))
        if self._recording is None or self._recording.done():
            self._recording = asyncio.create_task(self._record())
        await done
        if flight.status == "failed":
            # the last attempt failed: the pipeline's on_failure steps, once, on this slot
            await run_on_failure(self.rt, flight.attempt, result)

    def _landed(self, task: "asyncio.Task[None]") -> None:
        self._tasks.discard(task)
        self._wake.set()
        if not task.cancelled() and task.exception() is not None:
            self._fatal(task.exception())  # type: ignore[arg-type]

    async def _record(self) -> None:
        """Record every outcome that is ready, batch after batch, until none is left."""
        backoff = Backoff("record")
        while self._ready:
            batch, self._ready = self._ready, []
            while True:
                try:
                    await self._record_batch(batch)
                    backoff.reset()
                    break
                except (redis.RedisError, OSError) as exc:
                    if self.forced:
                        logger.warning("worker.record_failed", extra={"error": one_line(exc)})
                        return
                    await backoff.failed(exc)
            for flight, _, done in batch:
                self.flights.pop(flight.execution.job.id, None)
                if not done.done():
                    done.set_result(None)

    async def _record_batch(
        self, batch: list[tuple[Flight, PipelineResult, "asyncio.Future[None]"]]
    ) -> None:
        statuses = await record_attempts(self.rt, [(f.attempt, r) for f, r, _ in batch])
        ended: list[tuple[rqstate.Execution, str | None]] = []
        for (flight, _, _), status in zip(batch, statuses, strict=True):
            flight.status = status if isinstance(status, str) else None
            error = None
            if isinstance(status, BaseException):
                error = "".join(traceback.format_exception(status))
            ended.append((flight.execution, error))
        idle = len(self.flights) == len(batch)
        (reply,) = await eval_many(self.rq, [rqstate.finish_call(self.name, ended, idle)])
        if isinstance(reply, Exception):
            raise reply

    # -- alongside -----------------------------------------------------------------------

    async def _heartbeats(self) -> None:
        backoff = Backoff("heartbeat")
        while True:
            try:
                await asyncio.sleep(self.interval)
                await self.beat()
                backoff.reset()
            except (redis.RedisError, OSError) as exc:
                await backoff.failed(exc)

    async def beat(self) -> None:
        """One round trip: renew every attempt in flight, and RQ's heartbeats."""
        flights = list(self.flights.values())
        chunks = (len(flights) + RENEW_CHUNK - 1) // RENEW_CHUNK
        for _ in range(2):
            pipe = self.rq.pipeline(transaction=False)
            sha = script_sha(self.rq, "renew_runs")
            for i in range(0, len(flights), RENEW_CHUNK):
                chunk = flights[i : i + RENEW_CHUNK]
                call_keys, args = renew_call(
                    self.keys, self.settings, [f.attempt.held for f in chunk]
                )
                pipe.evalsha(sha, len(call_keys), *call_keys, *args)
            state = "busy" if flights else ("suspended" if self.suspended else "idle")
            rqstate.heartbeat(
                pipe,
                self.name,
                [f.execution for f in flights],
                self.rq_ttl,
                state,
                script_sha(self.rq, "rq_heartbeat_jobs"),
            )
            replies = await pipe.execute(raise_on_error=False)
            if any(isinstance(r, NoScriptError) for r in replies):
                await load_scripts(self.rq, ["renew_runs", "rq_heartbeat_jobs"])
                continue
            break
        for reply in replies:
            if isinstance(reply, Exception):
                raise reply
        renewed = [int(x) for reply in replies[:chunks] for x in reply]
        for flight, alive in zip(flights, renewed, strict=False):
            if alive == RENEWED_CANCEL_REQUESTED:
                # the cancel message was missed (a reconnect): the renewal says it too
                self.cancel(flight.attempt.run.id)
            recorded = self.flights.get(flight.execution.job.id) is not flight
            if not alive and not recorded and not flight.attempt.lost.is_set():
                flight.attempt.lost.set()
                logger.warning("run.lease_lost", extra={"run_id": flight.attempt.run.id})
        if not replies[-2]:
            # the worker's hash was gone (Redis lost its data): register again
            await asyncio.to_thread(self._register_again)
        suspended = bool(replies[-1])
        if suspended != self.suspended:
            self.suspended = suspended
            logger.info("worker.suspended" if suspended else "worker.resumed")
            self._wake.set()

    async def _cancels(self) -> None:
        """Stop the runs whose cancel is requested: each message on the cancel channel names
        one; a run of this worker has its step in flight aborted (``Attempt.canceled``)."""
        backoff = Backoff("cancels")
        client = connection.async_client(self.settings.redis_url, socket_timeout=None)
        try:
            while True:
                try:
                    async with client.pubsub() as pubsub:
                        await pubsub.subscribe(self.keys.cancels)
                        backoff.reset()
                        async for message in pubsub.listen():
                            if message.get("type") == "message":
                                self.cancel(str(message["data"]))
                except (redis.RedisError, OSError) as exc:
                    await backoff.failed(exc)
        finally:
            await client.aclose()

    def cancel(self, run_id: str) -> None:
        """Abort the run's step in flight, if this worker runs it (the job id is the run id)."""
        flight = self.flights.get(run_id)
        if flight is None:
            self._cancels_seen.append(run_id)
        elif not flight.attempt.canceled.is_set():
            flight.attempt.canceled.set()
            logger.info("run.cancel_requested", extra={"run_id": run_id})

    def _register_again(self) -> None:
        worker = self.rq_worker
        with worker.connection.pipeline() as pipe:
            pipe.hset(worker.key, mapping=worker.serialize())
            worker_registration.register(worker, pipe)
            pipe.expire(worker.key, rqstate.WORKER_TTL)
            pipe.execute()
        logger.warning("worker.registered_again", extra={"worker": self.name})

    async def _sweeps(self) -> None:
        outage = connection.Outage(logger, "worker.sweep")
        while True:
            try:
                await asyncio.to_thread(self.sweeper.sweep)
                outage.ok()
            except (redis.RedisError, OSError) as exc:
                outage.failed(exc)
            await asyncio.sleep(self.sweeper.interval)

    async def _agent_lines(self) -> None:
        """Now and then, give slots freed by a lapsed lease to the runs waiting for them."""
        outage = connection.Outage(logger, "worker.agent_lines")
        while True:
            try:
                await asyncio.to_thread(fill_agent_lines, self.sweeper.backend, clock.now_ms())
                outage.ok()
            except (redis.RedisError, OSError) as exc:
                outage.failed(exc)
            await asyncio.sleep(self.sweeper.interval)

    async def _maintenance(self) -> None:
        outage = connection.Outage(logger, "worker.maintenance")
        while True:
            try:
                await asyncio.to_thread(self.rq_worker.clean_registries)
                outage.ok()
            except (redis.RedisError, OSError) as exc:
                outage.failed(exc)
            await asyncio.sleep(MAINTENANCE_SECONDS)


def main(
    settings: Settings,
    burst: bool = False,
    concurrency: int | None = None,
    name: str | None = None,
) -> int:
    """Work the priority queues until stopped (or, with ``burst``, until they are empty);
    returns the exit status (non-zero when the worker stopped on an error)."""
    job_module.configure(settings)
    _raise_open_files(concurrency or settings.worker_concurrency)
    for logger_name in ("rq.worker", "rq.registry", "rq.queue", "rq.job"):
        logging.getLogger(logger_name).setLevel(settings.log_level)
    return Worker(settings, concurrency=concurrency, burst=burst, name=name).main()


def _raise_open_files(concurrency: int) -> None:
    """Each run in flight may hold a socket: lift the soft limit on open files (often 1,024)
    toward the hard one when the concurrency needs more."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    wanted = 2 * concurrency + 256
    if soft != resource.RLIM_INFINITY and soft < wanted:
        target = wanted if hard == resource.RLIM_INFINITY else min(wanted, hard)
        with contextlib.suppress(ValueError, OSError):
            resource.setrlimit(resource.RLIMIT_NOFILE, (target, hard))
