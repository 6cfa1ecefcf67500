"""The outbox: the ledger of every ``queued`` run until a worker starts it, and the pass that
gives each one back an owner.

A run enters the outbox in the script that makes it ``queued`` (scored by a deadline: now +
grace) and leaves it only in ``start_run.lua`` (or when it stops being ``queued``: a cancel, a
dedupe, a park for a concurrency slot). Enqueueing it on RQ leaves the entry where it is. So
a queued run that no one will ever start is always in the outbox, whatever stranded it: a
process that died between the commit and the enqueue, a worker killed after taking the job off
its queue and before the start, an RQ job deleted by hand, or a job left in RQ's intermediate
queue or failed registry.

:func:`reconcile_outbox` is the periodic pass, run by every scheduler and every worker's
sweep: it takes the runs whose deadline passed (``sweep_outbox.lua``, so each is taken by one
process), judges them in one atomic script (``reconcile_outbox.lua``: still queued? its job
waiting on its RQ queue?), drops the entries of runs that moved on, looks again later at runs
whose job waits in a backlog, and names the rest, which the use case
(:func:`app.service.runs.reconcile`) enqueues again. A run enqueued twice still runs
once: a worker starts only a run that is still ``queued``.
"""

from collections.abc import Sequence
from dataclasses import dataclass, field

import redis
from rq import Queue
from rq.job import Job

from app.store import scripts
from app.store.codec import text
from app.store.keys import QUEUE_NAMES, Keys
from app.store.scheduling import sweep_outbox

#: a run whose job waits in a backlog is looked at again after as long as it has waited, at
#: most this many graces
LONGEST_LOOK_GRACES = 16
#: the most queue entries searched for one job (from the head, where the oldest jobs are): a
#: look costs at most this many steps; a job deeper in a longer queue counts as waiting
LOOK_DEPTH = 10_000


@dataclass
class Reconciled:
    """What one pass found, by run id."""

    #: (run id, priority) of queued runs no one owns: to enqueue again
    lost: list[tuple[str, int]] = field(default_factory=list)
    #: the lost runs enqueued again (set by the use case that enqueued them)
    requeued: list[str] = field(default_factory=list)
    #: queued runs whose job waits on its RQ queue
    waiting: list[str] = field(default_factory=list)
    #: entries of runs that are not queued any more, dropped
    gone: list[str] = field(default_factory=list)
    #: the batch came back full: more may be overdue
    more: bool = False


def judge_call(
    keys: Keys, run_ids: Sequence[str], now_ms: int, grace_ms: int, depth: int = LOOK_DEPTH
) -> tuple[list[str], list[int | str]]:
    """KEYS and ARGV of ``reconcile_outbox.lua`` for these runs."""
    queues = [Queue.redis_queue_namespace_prefix + name for name in QUEUE_NAMES]
    call_keys = [keys.outbox, *queues]
    for run_id in run_ids:
        call_keys += [keys.run(run_id), Job.key_for(run_id)]
    args: list[int | str] = [now_ms, grace_ms, grace_ms * LONGEST_LOOK_GRACES, depth, *run_ids]
    return call_keys, args


def judge(
    client: redis.Redis,
    keys: Keys,
    run_ids: Sequence[str],
    now_ms: int,
    grace_ms: int,
    depth: int = LOOK_DEPTH,
) -> list[tuple[str, int]]:
    """``(outcome, priority)`` of each run: 'gone', 'waiting' or 'lost' (see the script)."""
    if grace_ms <= 0 or depth <= 0:
        raise ValueError("grace and depth must be positive")
    if not run_ids:
        return []
    call_keys, args = judge_call(keys, run_ids, now_ms, grace_ms, depth)
    reply = scripts.script(client, "reconcile_outbox")(keys=call_keys, args=args)
    return [(text(reply[i]), int(reply[i + 1])) for i in range(0, len(reply), 2)]


def reconcile_outbox(
    client: redis.Redis, keys: Keys, now_ms: int, grace_ms: int, limit: int
) -> Reconciled:
    """Judge up to ``limit`` overdue outbox entries (see the module docstring); the runs found
    ``lost`` are in :attr:`Reconciled.lost`, for the use case to enqueue again
    (``app/service/runs.py``)."""
    result = Reconciled()
    run_ids = sweep_outbox(client, keys, now_ms, grace_ms, limit)
    if not run_ids:
        return result
    result.more = len(run_ids) >= limit
    for run_id, (outcome, priority) in zip(
        run_ids, judge(client, keys, run_ids, now_ms, grace_ms), strict=True
    ):
        if outcome == "lost":
            result.lost.append((run_id, priority))
        elif outcome == "waiting":
            result.waiting.append(run_id)
        else:
            result.gone.append(run_id)
    return result
