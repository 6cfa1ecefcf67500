-- Per-agent gate (included, not called on its own): the agent's `max_running` slots and its
-- `max_runs_per_minute` window, held across every worker and scheduler. A slot is taken when a
-- run is queued (so an agent's excess waits `pending` here instead of filling the RQ queues
-- ahead of other agents) and checked again when it starts; it is held, under a lease renewed
-- with the run's heartbeat, until the attempt ends. A holder whose lease lapsed (its worker
-- died, its job was lost) is dropped by the next fill. Keys are built from the key base
-- ('{chime}:') and the agent id as app/store/keys.py builds them (same hash tag as every key
-- the including script gets).
--
-- chime_agent_gate(base, agent) -> g {slots, waiting, starts, max_running, per_minute, lease_ms}:
--   limits from the agent's overrides (base..'limits:'..agent), else the defaults the processes
--   published (base..'limits'), else the built-in defaults.
-- chime_agent_window(g, now) -> nil when one more start fits in the last minute's window, else
--   the time (ms) the window lets the next one start.
-- chime_agent_admit(g, run_key, run_id, now) -> true when the run holds a slot (already, or
--   now); false: it waits `pending` at the tail of the agent's FIFO (and the agent joins the
--   set base..'awaiting' that lua/fill_agents.lua sweeps).
-- chime_agent_delay(base, run_key, run_id, at) -> the run waits `pending` in delayed until
--   `at` (published on the wake channel when it is the earliest).
-- chime_agent_release(g, run_id) -> the run's slot is free.
-- chime_agent_free(g, run_ids, now, outbox_key, grace_ms, run_prefix) -> {run_id, priority, ...}
--   runs canceled before they started give their slots back at once, and the slots go to the
--   agent's waiting runs (as chime_agent_fill); {} when none of them held one.
-- chime_agent_fill(g, now, outbox_key, grace_ms, run_prefix) -> {run_id, priority, ...} of
--   waiting runs handed a free slot, in FIFO order: each becomes `queued` and enters the
--   outbox (the caller enqueues them). Waiting ids whose run is no longer `pending` are dropped.

-- @include "includes/key_base.lua"

local chime_builtin_limits = {max_running = 100, max_runs_per_minute = 6000, lease_ms = 60000}

local function chime_agent_gate(base, agent)
  local own = redis.call('HMGET', base .. 'limits:' .. agent, 'max_running', 'max_runs_per_minute')
  local dflt = redis.call('HMGET', base .. 'limits', 'max_running', 'max_runs_per_minute',
    'lease_ms')
  return {
    base = base,
    agent = agent,
    slots = base .. 'aslots:' .. agent,
    waiting = base .. 'await:' .. agent,
    starts = base .. 'astarts:' .. agent,
    max_running = tonumber(own[1] or dflt[1] or chime_builtin_limits.max_running),
    per_minute = tonumber(own[2] or dflt[2] or chime_builtin_limits.max_runs_per_minute),
    lease_ms = tonumber(dflt[3] or chime_builtin_limits.lease_ms),
  }
end

local function chime_agent_window(g, now)
  redis.call('ZREMRANGEBYSCORE', g.starts, '-inf', now - 60000)
  if redis.call('ZCARD', g.starts) < g.per_minute then
    return nil
  end
  local first = redis.call('ZRANGE', g.starts, 0, 0, 'WITHSCORES')
  return tonumber(first[2]) + 60000
end

local function chime_agent_admit(g, run_key, run_id, now)
  redis.call('ZREMRANGEBYSCORE', g.slots, '-inf', now)
  if redis.call('ZSCORE', g.slots, run_id) then
    return true
  end
  if redis.call('ZCARD', g.slots) < g.max_running and redis.call('LLEN', g.waiting) == 0 then
    redis.call('ZADD', g.slots, now + g.lease_ms, run_id)
    return true
  end
  redis.call('RPUSH', g.waiting, run_id)
  redis.call('SADD', g.base .. 'awaiting', g.agent)
  redis.call('HSET', run_key, 'status', 'pending')
  return false
end

local function chime_agent_delay(base, run_key, run_id, at)
  local delayed = base .. 'delayed'
  redis.call('HSET', run_key, 'status', 'pending', 'next_attempt_at', at)
  redis.call('ZADD', delayed, at, run_id)
  if redis.call('ZRANGE', delayed, 0, 0)[1] == run_id then
    redis.call('PUBLISH', base .. 'wake', at)
  end
end

local function chime_agent_release(g, run_id)
  redis.call('ZREM', g.slots, run_id)
end

local function chime_agent_fill(g, now, outbox_key, grace_ms, run_prefix)
  redis.call('ZREMRANGEBYSCORE', g.slots, '-inf', now)
  local handed = {}
  while redis.call('ZCARD', g.slots) < g.max_running do
    local id = redis.call('LPOP', g.waiting)
    if not id then
      break
    end
    local rkey = run_prefix .. id
    local st = redis.call('HMGET', rkey, 'status', 'priority')
    if st[1] == 'pending' then
      redis.call('ZADD', g.slots, now + g.lease_ms, id)
      redis.call('HSET', rkey, 'status', 'queued', 'enqueued_at', now)
      redis.call('HDEL', rkey, 'next_attempt_at')
      redis.call('ZADD', outbox_key, now + grace_ms, id)
      handed[#handed + 1] = id
      handed[#handed + 1] = st[2] or '5'
    end
  end
  return handed
end

local function chime_agent_free(g, run_ids, now, outbox_key, grace_ms, run_prefix)
  local freed = 0
  for _, id in ipairs(run_ids) do
    freed = freed + redis.call('ZREM', g.slots, id)
  end
  if freed == 0 then
    return {}
  end
  return chime_agent_fill(g, now, outbox_key, grace_ms, run_prefix)
end
