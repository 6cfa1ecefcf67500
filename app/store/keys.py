"""Every Redis key Chime uses, built here and nowhere else.

All keys share the hash tag ``{<prefix>}`` (default ``{chime}``), so on a Redis Cluster the keys
of one script call land in one slot.

The rule for the Lua scripts: every key a script touches comes from its KEYS, or is built from a
*key base* taken from a KEYS entry (``chime_key_base`` in ``lua/includes/``: ``{chime}:outbox``
gives ``{chime}:``) followed by a name of the table below (``base .. 'aslots:' .. agent``). No
script hard-codes the tag or the prefix, or builds a key from ARGV alone: a run key prefix given
in ARGV must be the base's (``chime_run_prefix``), and a key name read from a record (a run's
``event_key``) is used only under the base (``chime_key_under``). PUBLISH channels are not keys.
So a script serves whatever prefix its KEYS carry, and several hash tags (one per partition, for
a Redis Cluster) need no script change: each call passes the keys of one partition.
``tests/store/test_lua_keys.py`` checks the rule. The names the scripts build from a base
(``run:``, ``delayed``, ``wake``, ``cancels``, ``limits``, ``limits:``, ``secrets:``, ``idx:``,
``aslots:``, ``await:``, ``astarts:``, ``awaiting``, ``task:``, ``dedupe:``, ``sem:``, ``semq:``)
must stay in step with the builders below.

Key layout (``P`` = ``{chime}``):

====================================  ======  ==================================================
key                                   type    what
====================================  ======  ==================================================
P:task:<task_id>                      hash    one task (fields: see ``app/store/codec.py``)
P:idx:<agent|*>:<status|*>:<kind|*>   zset    task ids by created_at (ms); 8 per task, so any
                                              combination of the three list filters is one
                                              ZREVRANGE + ZCARD
P:due                                 zset    active scheduled task ids by next_run_at (ms)
P:claims                              zset    task ids claimed by a scheduler, by lease expiry
P:claimcall:<call_id>                 list    one claim call's reply (member, token, ...), kept
                                              for the lease so a retried call gets it back
P:wake                                pubsub  a scheduler wake-up: payload = the new due ms
P:cancels                             pubsub  a running run to stop: payload = the run id
P:run:<run_id>                        hash    one run
P:run:<run_id>                        pubsub  the run ended: payload = its final status
P:task:<task_id>:runs                 zset    run ids of a task by created_at (ms), capped
P:delayed                             zset    pending run ids by release time (retry, snooze)
P:delayed:claims                      zset    delayed run ids being released, by lease expiry
P:running                             zset    running run ids by heartbeat lease expiry; a lapsed
                                              one is a lost worker (the run is retried)
P:outbox                              zset    every queued run id until a worker starts it (the
                                              ledger of queued runs), scored by the time of its
                                              next look: then a run whose job is on no RQ queue
                                              is enqueued again (``app/store/outbox.py``)
P:dedupe:<agent>:<dedupe_key>         string  the run id holding the dedupe window (SET NX PX);
                                              built in Lua from the task's dedupe_key as it
                                              is when the run is queued (chime_dedupe_key)
P:sem:<agent>:<concurrency_key>       zset    run ids holding a slot, by lease expiry
P:semq:<agent>:<concurrency_key>      list    run ids waiting for a slot, FIFO (RPUSH/LPOP)
P:agent:<agent_id>                    hash    a minted agent: name, token_sha256, created_at
P:agents                              zset    minted agent ids by created_at
P:token:<sha256 of token>             string  agent id of a minted token
P:idem:<agent>:<idempotency_key>      string  task id created under that key (24 h)
P:secrets:<agent_id>                  hash    the agent's secrets: name -> JSON {sealed,
                                              updated_at}; values sealed (``app/crypto.py``)
P:signing:<agent_id>                  string  the agent's webhook signing key, sealed when
                                              CHIME_SECRET_KEY is set (``app/store/secrets.py``)
P:stats                               hash    counters for /metrics
P:event:<event_id>                    hash    an event's data, stored once: ``data`` (JSON),
                                              ``refs`` (runs referring to it; the last one
                                              trimmed from a history deletes it)
P:static_agents                       set     the CHIME_AGENT_TOKENS agents the web process
                                              last started with (one taken out is revoked)
P:limits                              hash    the default per-agent limits, as the processes'
                                              settings give them (written at start-up)
P:limits:<agent>                      hash    the admin's limit overrides for one agent
P:aslots:<agent>                      zset    run ids holding one of the agent's
                                              ``max_running`` slots (queued or running), by
                                              lease expiry
P:await:<agent>                       list    the agent's run ids waiting for a slot, FIFO
P:awaiting                            set     agent ids with runs waiting for a slot
P:astarts:<agent>                     zset    the agent's attempt starts (``run_id:attempt``)
                                              by start time (ms), the last minute's
====================================  ======  ==================================================

RQ keeps its own keys (``rq:...``); its queues are ``chime-p1`` .. ``chime-p9``.
"""

from itertools import product

ANY = "*"
#: the most index sets one Keys keeps built (one per agent, status and kind)
_INDEX_SETS_KEPT = 4096


def queue_name(priority: int) -> str:
    """The RQ queue of a priority (1 runs first)."""
    return f"chime-p{priority}"


#: RQ queues in the order workers listen to them.
QUEUE_NAMES = tuple(queue_name(p) for p in range(1, 10))


class Keys:
    """Key builder for one prefix."""

    def __init__(self, prefix: str = "chime") -> None:
        self.prefix = prefix
        self.p = "{" + prefix + "}"
        self.due = f"{self.p}:due"
        self.claims = f"{self.p}:claims"
        self.wake = f"{self.p}:wake"
        self.cancels = f"{self.p}:cancels"
        self.delayed = f"{self.p}:delayed"
        self.delayed_claims = f"{self.p}:delayed:claims"
        self.outbox = f"{self.p}:outbox"
        self.running = f"{self.p}:running"
        self.agents = f"{self.p}:agents"
        self.stats = f"{self.p}:stats"
        self.default_limits = f"{self.p}:limits"
        self.static_agents = f"{self.p}:static_agents"
        self.awaiting = f"{self.p}:awaiting"
        #: the scheduler asks for the same few index sets on every commit
        self._indexes: dict[tuple[str, str, str], tuple[str, ...]] = {}

    def task(self, task_id: str) -> str:
        return f"{self.p}:task:{task_id}"

    def claim_call(self, call_id: str) -> str:
        return f"{self.p}:claimcall:{call_id}"

    def task_runs(self, task_id: str) -> str:
        return f"{self.p}:task:{task_id}:runs"

    def index(self, agent: str | None, status: str | None, kind: str | None) -> str:
        """The listing index for a filter combination (None = any)."""
        return f"{self.p}:idx:{agent or ANY}:{status or ANY}:{kind or ANY}"

    def indexes(self, agent: str, status: str, kind: str) -> list[str]:
        """The 8 indexes a task with these attributes belongs to. Built in Lua too
        (``lua/create_task.lua``, with :meth:`limits` and :meth:`secrets`): keep them in step."""
        found = self._indexes.get((agent, status, kind))
        if found is None:
            if len(self._indexes) >= _INDEX_SETS_KEPT:
                self._indexes.clear()
            found = tuple(
                self.index(a, s, k)
                for a, s, k in product((agent, None), (status, None), (kind, None))
            )
            self._indexes[agent, status, kind] = found
        return list(found)

    def run(self, run_id: str) -> str:
        return f"{self.p}:run:{run_id}"

    def dedupe(self, agent: str, dedupe_key: str) -> str:
        return f"{self.p}:dedupe:{agent}:{dedupe_key}"

    def semaphore(self, agent: str, concurrency_key: str) -> str:
        return f"{self.p}:sem:{agent}:{concurrency_key}"

    def semaphore_queue(self, agent: str, concurrency_key: str) -> str:
        return f"{self.p}:semq:{agent}:{concurrency_key}"

    def agent(self, agent_id: str) -> str:
        return f"{self.p}:agent:{agent_id}"

    def token(self, token_sha256: str) -> str:
        return f"{self.p}:token:{token_sha256}"

    def idempotency(self, agent: str, key: str) -> str:
        return f"{self.p}:idem:{agent}:{key}"

    def secrets(self, agent: str) -> str:
        return f"{self.p}:secrets:{agent}"

    def signing_key(self, agent: str) -> str:
        return f"{self.p}:signing:{agent}"

    def limits(self, agent: str) -> str:
        return f"{self.p}:limits:{agent}"

    def agent_slots(self, agent: str) -> str:
        """Built in Lua too (``lua/includes/chime_agent_gate.lua``): keep the two in step."""
        return f"{self.p}:aslots:{agent}"

    def agent_waiting(self, agent: str) -> str:
        return f"{self.p}:await:{agent}"

    def agent_starts(self, agent: str) -> str:
        return f"{self.p}:astarts:{agent}"

    def event(self, event_id: str) -> str:
        return f"{self.p}:event:{event_id}"
