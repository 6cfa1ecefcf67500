"""Real ``chime worker`` and ``chime scheduler`` processes against faults of the network, of Redis
and of the clock: every run reaches a terminal state and every process stays up.

- a worker killed between taking a job and starting its run; an RQ job deleted by hand; a job
  enqueued twice: the outbox pass (``app/store/outbox.py``) gives each run back to a worker;
- ``CLIENT KILL`` of every client, again and again, under load;
- Redis shut down and restarted with its append-only file, and Redis hung (SIGSTOP, or
  ``CLIENT PAUSE``): due work resumes within seconds of Redis coming back;
- a worker whose clock is 50 s off takes over no live lease and retries nothing early.

The clients of this test are made like Chime's own (``app/store/connection.py``), so its own
reads survive the connection drops it causes.
"""

import asyncio
import re
import signal
import subprocess
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import redis
from rq import Queue, Worker
from rq.job import Job

from app import clock
from app.core.task import Run, Task
from app.embedded_redis import EmbeddedRedis
from app.settings import Settings
from app.store import connection, stats
from app.store.enqueue import enqueue_runs
from app.store.keys import Keys, queue_name
from app.store.runs import load_run
from app.store.tasks import TaskStore
from tests.support.agents import AGENT
from tests.support.scheduler import process_state, spawn_scheduler, wake_subscribers
from tests.support.scheduler import settings_with as replace_settings
from tests.support.waiting import wait_for as wait_until
from tests.support.workers import LocalServer, Workers
from tests.support.workers import worker_task as make_task
from tests.workers.sink import AsyncSink

#: a queued run no worker holds is enqueued again this long after it was queued
GRACE = "1"
#: attempt and claim leases (s): a lost attempt or claim is recovered quickly, and every worker
#: sweeps often
LEASE = "3"
FAST = {
    "CHIME_ENQUEUE_GRACE_SECONDS": GRACE,
    "CHIME_SEMAPHORE_LEASE_SECONDS": LEASE,
    "CHIME_CLAIM_LEASE_SECONDS": LEASE,
}


def hold(sink: AsyncSink, ms: int) -> list[dict[str, Any]]:
    return [
        {
            "name": "hold",
            "action": "http.request",
            "params": {"url": f"{sink.url}/hold/{{{{ run.id }}}}?ms={ms}"},
        }
    ]


class Chime:
    """Clients, a task store and processes on one Redis."""

    def __init__(self, url: str, tmp: Path, settings: Settings) -> None:
        self.url = url
        self.tmp = tmp
        self.keys = Keys(settings.key_prefix)
        self.r = connection.client(url)
        self.rq = connection.rq_client(url)
        self.settings = replace_settings(
            settings, redis_url=url, enqueue_grace_seconds=float(GRACE)
        )
        self.store = TaskStore(self.r, self.keys, self.settings)
        self.workers = Workers(url, tmp)
        self.schedulers: list[subprocess.Popen[bytes]] = []

    def worker(self, *args: str, **env: str) -> subprocess.Popen[bytes]:
        return self.workers.start(*args, **{**FAST, **env})

    def scheduler(self, **env: str) -> subprocess.Popen[bytes]:
        log = self.tmp / f"scheduler-{len(self.schedulers)}.log"
        proc = spawn_scheduler(
            self.url, log, "-m", "app.cli", "scheduler", CHIME_LOG_LEVEL="WARNING", **FAST, **env
        )
        self.schedulers.append(proc)
        return proc

    def processes(self) -> list[subprocess.Popen[bytes]]:
        return [*self.workers.procs, *self.schedulers]

    def wait_ready(self, workers: int, schedulers: int) -> None:
        wait_until(
            lambda: len(Worker.all(connection=self.rq)) >= workers, 30, "the workers' births"
        )
        if schedulers:
            wait_until(
                lambda: wake_subscribers(self.r, self.keys) >= schedulers, 30, "the schedulers"
            )

    def queue(self, task: Task) -> Run:
        run = self.store.run_now(task.id, AGENT)
        enqueue_runs(self.rq, self.keys, [(run.id, run.priority)])
        return run

    def once_tasks(self, sink: AsyncSink, due: list[int], **kw: Any) -> list[Task]:
        return [
            self.store.create(
                make_task(hold(sink, 20), schedule_kind="once", schedule_expr=clock.iso(at), **kw)
            )[0]
            for at in due
        ]

    def runs_of(self, tasks: list[Task]) -> list[list[str]]:
        pipe = self.r.pipeline(transaction=False)
        for task in tasks:
            pipe.zrange(self.keys.task_runs(task.id), 0, -1)
        return [list(ids) for ids in pipe.execute()]

    def statuses(self, run_ids: list[str]) -> list[str | None]:
        pipe = self.r.pipeline(transaction=False)
        for run_id in run_ids:
            pipe.hget(self.keys.run(run_id), "status")
        return list(pipe.execute())

    def all_succeeded(self, tasks: list[Task]) -> bool:
        runs = self.runs_of(tasks)
        if any(len(ids) != 1 for ids in runs):
            return False
        return all(s == "succeeded" for s in self.statuses([ids[0] for ids in runs]))

    def assert_all_up(self) -> None:
        down = [(p.args, p.returncode) for p in self.processes() if p.poll() is not None]
        assert not down, f"{down}\n{self.output()}"

    def stop(self) -> list[int]:
        """SIGTERM every process still up; their exit statuses."""
        codes = []
        for proc in self.processes():
            if proc.poll() is None:
                proc.send_signal(signal.SIGTERM)
        for proc in self.processes():
            try:
                codes.append(proc.wait(40))
            except subprocess.TimeoutExpired:
                proc.kill()
                codes.append(proc.wait(10))
        return codes

    def close(self) -> None:
        for proc in self.processes():
            if proc.poll() is None:
                proc.kill()
                proc.wait(10)
        self.workers.stop_all()
        self.r.close()
        self.rq.close()

    def output(self) -> str:
        return "\n".join(p.read_text() for p in sorted(self.tmp.glob("*.log")))


@pytest.fixture
def chime(redis_url: str, tmp_path: Path, settings: Settings) -> Iterator[Chime]:
    c = Chime(redis_url, tmp_path, settings)
    try:
        yield c
    finally:
        c.close()


@pytest.fixture
def own_redis(tmp_path: Path, redis_server: EmbeddedRedis) -> Iterator[EmbeddedRedis]:
    """A Redis of this test alone, append-only, to shut down, restart and hang."""
    server = EmbeddedRedis(data_dir=tmp_path / "redis", persist=True)
    server.start()
    try:
        yield server
    finally:
        if server.proc is not None and server.proc.poll() is None:
            server.proc.send_signal(signal.SIGCONT)
        server.stop(signal.SIGKILL)


@pytest.fixture
def own_chime(own_redis: EmbeddedRedis, tmp_path: Path, settings: Settings) -> Iterator[Chime]:
    c = Chime(own_redis.url, tmp_path, settings)
    try:
        yield c
    finally:
        c.close()


def server_ms(r: redis.Redis) -> int:
    """The Redis server's time (ms)."""
    seconds, micros = r.time()
    return int(seconds) * 1000 + int(micros) // 1000


def executions(sink: AsyncSink, run_ids: list[str]) -> list[int]:
    with sink.record.lock:
        return [sink.record.calls[run_id] for run_id in run_ids]


# -- runs no one owns -------------------------------------------------------------------------


def test_a_worker_killed_between_dequeue_and_start_gets_its_run_finished_by_another(
    chime: Chime, sink: AsyncSink
) -> None:
    first = chime.worker("--concurrency", "1", CHIME_WORKER_TEST_HALT="after_pop")
    task, _ = chime.store.create(make_task(hold(sink, 10)))
    run = chime.queue(task)
    wait_until(lambda: process_state(first.pid) == "T", 30, "the worker to stop after its pop")
    # the job is off its queue and the run still queued: only the dead worker knew of it
    assert chime.rq.llen(Queue(queue_name(5), connection=chime.rq).key) == 0
    assert chime.statuses([run.id]) == ["queued"]
    first.send_signal(signal.SIGKILL)
    first.wait(10)

    chime.worker()
    wait_until(lambda: chime.statuses([run.id]) == ["succeeded"], 60, "the run to finish")
    done = load_run(chime.r, chime.keys, run.id)
    assert done is not None and done.attempt == 1
    assert executions(sink, [run.id]) == [1]
    assert chime.r.zscore(chime.keys.outbox, run.id) is None
    assert stats.read(chime.r, chime.keys)[stats.RUNS_REQUEUED] >= 1


def test_an_rq_job_deleted_by_hand_still_has_its_run_finished(
    chime: Chime, sink: AsyncSink
) -> None:
    task, _ = chime.store.create(make_task(hold(sink, 10)))
    run = chime.queue(task)
    Job.fetch(run.id, connection=chime.rq).delete()
    assert not chime.rq.exists(Job.key_for(run.id))

    chime.worker()
    wait_until(lambda: chime.statuses([run.id]) == ["succeeded"], 60, "the run to finish")
    assert executions(sink, [run.id]) == [1]
    assert chime.stop() == [0]


def test_a_job_enqueued_twice_runs_once(chime: Chime, sink: AsyncSink) -> None:
    task, _ = chime.store.create(make_task(hold(sink, 300)))
    run = chime.queue(task)
    enqueue_runs(chime.rq, chime.keys, [(run.id, run.priority)])
    assert (
        chime.rq.lrange(Queue(queue_name(5), connection=chime.rq).key, 0, -1)
        == [run.id.encode()] * 2
    )
    chime.worker()
    chime.worker()
    wait_until(lambda: chime.statuses([run.id]) == ["succeeded"], 60, "the run to finish")
    wait_until(lambda: chime.rq.llen(Queue(queue_name(5), connection=chime.rq).key) == 0, 30)
    assert executions(sink, [run.id]) == [1]
    assert chime.stop() == [0, 0]


# -- connection drops -------------------------------------------------------------------------


def test_client_kill_of_every_client_under_load_stops_no_process_and_strands_no_run(
    chime: Chime, sink: AsyncSink, redis_url: str
) -> None:
    for _ in range(2):
        chime.worker()
    chime.scheduler()
    chime.wait_ready(workers=2, schedulers=1)
    start = clock.now_ms() + 1500
    tasks = chime.once_tasks(sink, [start + 40 * i for i in range(150)], max_retries=2)

    stop = threading.Event()
    kills: list[int] = []

    def killer() -> None:
        with redis.Redis.from_url(redis_url) as admin:
            while not stop.is_set():
                n = admin.client_kill_filter(_type="normal", skipme=True)
                n += admin.client_kill_filter(_type="pubsub", skipme=True)
                kills.append(int(n))
                stop.wait(0.2)

    thread = threading.Thread(target=killer)
    thread.start()
    try:
        time.sleep(8)
        chime.assert_all_up()
    finally:
        stop.set()
        thread.join(10)
    assert sum(kills) > 100 and len(kills) > 20
    wait_until(lambda: chime.all_succeeded(tasks), 60, "every run to succeed")
    chime.assert_all_up()
    run_ids = [ids[0] for ids in chime.runs_of(tasks)]
    assert all(n >= 1 for n in executions(sink, run_ids))
    assert chime.r.zcard(chime.keys.outbox) == 0
    assert chime.stop() == [0, 0, 0], chime.output()


# -- Redis away -------------------------------------------------------------------------------


def _outage_then_resume(
    chime: Chime, sink: AsyncSink, away: Any, back: Any, seconds: float
) -> float:
    """Tasks due while Redis is away; how long after its return they had all run."""
    chime.worker()
    chime.scheduler()
    chime.wait_ready(workers=1, schedulers=1)
    now = clock.now_ms()
    tasks = chime.once_tasks(sink, [now + 500 + 100 * i for i in range(20)])
    away()
    time.sleep(seconds)
    back()
    returned = time.monotonic()
    try:
        wait_until(lambda: chime.all_succeeded(tasks), 60, "the due runs to finish")
    except AssertionError as exc:
        # what each run and process did, to tell a slow recovery from a stuck one
        runs = chime.runs_of(tasks)
        states = [chime.r.hgetall(chime.keys.run(ids[0])) if ids else {} for ids in runs]
        raise AssertionError(f"{exc}\nruns: {states}\n{chime.output()}") from None
    resumed = time.monotonic() - returned
    chime.assert_all_up()
    # and new work is served on time
    later = chime.once_tasks(sink, [clock.now_ms() + 300])
    wait_until(lambda: chime.all_succeeded(later), 30, "a new task to run")
    chime.assert_all_up()
    assert chime.stop() == [0, 0], chime.output()
    return resumed


def test_redis_shutdown_and_restart_with_aof_resumes_due_work_within_seconds(
    own_chime: Chime, own_redis: EmbeddedRedis, sink: AsyncSink
) -> None:
    def away() -> None:
        with redis.Redis.from_url(own_redis.url) as admin:
            admin.shutdown()
        assert own_redis.proc is not None
        own_redis.proc.wait(10)
        own_redis.proc = None

    resumed = _outage_then_resume(own_chime, sink, away, own_redis.start, 4)
    assert resumed < 10, f"due work resumed {resumed:.1f} s after Redis came back"
    # quietly: each of the worker's loops warned once that Redis went, not once a try
    out = own_chime.output()
    warned = re.findall(r"worker\.\w+\.redis_unavailable", out)
    assert "worker.dequeue.redis_unavailable" in warned, out
    assert len(warned) == len(set(warned)), warned


@pytest.mark.parametrize("how", ["sigstop", "client_pause"])
def test_a_hung_redis_ends_with_every_process_up_and_due_work_resumed(
    own_chime: Chime, own_redis: EmbeddedRedis, sink: AsyncSink, how: str
) -> None:
    assert own_redis.proc is not None
    pid = own_redis.proc.pid

    def away() -> None:
        if how == "sigstop":
            own_redis.proc.send_signal(signal.SIGSTOP)  # type: ignore[union-attr]
        else:
            with redis.Redis.from_url(own_redis.url) as admin:
                admin.client_pause(4000, all=True)

    def back() -> None:
        if how == "sigstop":
            own_redis.proc.send_signal(signal.SIGCONT)  # type: ignore[union-attr]
        else:
            time.sleep(0.2)  # the pause ends by itself

    resumed = _outage_then_resume(own_chime, sink, away, back, 4)
    assert process_state(pid) not in ("", "T")
    assert resumed < 10, f"due work resumed {resumed:.1f} s after Redis came back"


# -- clocks -----------------------------------------------------------------------------------


@pytest.mark.parametrize("skew_ms", [50_000, -50_000])
def test_a_skewed_worker_takes_over_no_live_lease_and_retries_nothing_early(
    chime: Chime, sink: AsyncSink, http_server: LocalServer, skew_ms: int
) -> None:
    lease = {"CHIME_SEMAPHORE_LEASE_SECONDS": "1.5"}
    chime.scheduler()
    chime.worker("--concurrency", "1", **lease)
    long_task, _ = chime.store.create(make_task(hold(sink, 4000)))
    long_run = chime.queue(long_task)
    wait_until(lambda: chime.statuses([long_run.id]) == ["running"], 30, "the long run")
    # the skewed worker sweeps every few hundred ms while the long run's lease is renewed
    chime.worker("--concurrency", "1", CHIME_TEST_CLOCK_SKEW_MS=str(skew_ms), **lease)
    chime.wait_ready(workers=2, schedulers=1)
    delay = 2.0
    flaky_task, _ = chime.store.create(
        make_task(
            [
                {
                    "name": "flaky",
                    "action": "http.request",
                    "params": {"url": f"{http_server.url}/flaky/{{{{ run.id }}}}?n=1"},
                }
            ],
            max_retries=1,
            backoff_strategy="fixed",
            retry_delay_seconds=delay,
        )
    )
    before = server_ms(chime.r)
    flaky = chime.queue(flaky_task)
    # the skewed worker is the free one: it runs the first attempt and sets the retry time
    wait_until(lambda: chime.statuses([flaky.id]) == ["pending"], 30, "the failed attempt")
    after = server_ms(chime.r)
    retry_at = int(chime.r.hget(chime.keys.run(flaky.id), "next_attempt_at") or 0)
    # the attempt failed between the two reads of the server's time: its retry is due the
    # delay after that, on server time (the worker's own clock is 50 s off)
    assert before + delay * 1000 <= retry_at <= after + delay * 1000, (
        "the retry time is not on server time",
        retry_at - before,
    )

    wait_until(
        lambda: chime.statuses([long_run.id, flaky.id]) == ["succeeded", "succeeded"],
        60,
        "both runs",
    )
    done = load_run(chime.r, chime.keys, long_run.id)
    assert done is not None and done.attempt == 1, "a live lease was taken over"
    assert executions(sink, [long_run.id]) == [1]
    retried = load_run(chime.r, chime.keys, flaky.id)
    assert retried is not None and retried.attempt == 2
    assert retried.started_at is not None and retried.started_at >= retry_at
    assert chime.stop() == [0, 0, 0], chime.output()


# -- exit statuses ----------------------------------------------------------------------------


def test_a_worker_that_stops_on_an_error_exits_non_zero_and_its_jobs_are_not_lost(
    chime: Chime, sink: AsyncSink, monkeypatch: pytest.MonkeyPatch
) -> None:
    """An error the worker cannot go on with (here: a bug injected where a batch starts) ends
    it with status 1, not 0; the job it had taken is run by the next worker."""
    from workers import worker as worker_module
    from workers.attempts import JobDeps

    async def broken(self: worker_module.Worker, popped: list[tuple[str, str]]) -> None:
        raise RuntimeError("a bug")

    task, _ = chime.store.create(make_task(hold(sink, 10)))
    run = chime.queue(task)
    deps = JobDeps(
        settings=chime.settings,
        client=connection.client(chime.url),
        rq=connection.rq_client(chime.url),
        keys=chime.keys,
    )
    monkeypatch.setattr(worker_module.Worker, "_start", broken)
    worker = worker_module.Worker(chime.settings, concurrency=1, deps=deps)
    try:
        status = asyncio.run(worker.run())
    finally:
        monkeypatch.undo()
        # a sweep or maintenance thread still running when the worker closed its clients gave
        # its connection back afterwards: a process exits here, a test closes them again
        worker.sweeper.close()
        worker.rq_worker.connection.close()
        deps.client.close()
        deps.rq.close()
    assert status == 1
    assert chime.statuses([run.id]) == ["queued"]

    chime.worker()
    wait_until(lambda: chime.statuses([run.id]) == ["succeeded"], 60, "the run to finish")
    assert executions(sink, [run.id]) == [1]
    assert chime.stop() == [0]
