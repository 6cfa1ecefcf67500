-- Start a queued run: `queued` -> `running`, taking a concurrency slot first when the task has a
-- concurrency key. A run that is not `queued` (canceled, already running or finished: a
-- duplicate RQ job) is left alone. With no free slot the run goes back to `pending` in the
-- key's FIFO and the job ends; the release of a slot hands it over later. The agent's gate
-- (includes/chime_agent_gate.lua) is checked first: with the last minute's starts at
-- `max_runs_per_minute` the run waits `pending` in delayed until the window allows; without
-- one of the agent's `max_running` slots (its slot lapsed while queued and others took them)
-- it waits at the head of the agent's FIFO. A run parked for its concurrency key gives its
-- agent slot back. A started attempt is counted in the agent's window. A duplicate job of a
-- run that is neither queued nor running (canceled while queued) drops the run's agent slot.
--
-- KEYS[1]  run hash
-- KEYS[2]  task hash
-- KEYS[3]  running zset (heartbeat leases)
-- KEYS[4]  outbox zset
-- KEYS[5]  semaphore zset of the task's concurrency key (the run hash again when none)
-- KEYS[6]  FIFO list of that key (the run hash again when none)
-- ARGV[1]  now (ms)
-- ARGV[2]  lease (ms): heartbeat lease of the run and of its slot
-- ARGV[3]  the task's concurrency_key as the caller read it ('' for none)
-- ARGV[4]  run key prefix: the base of KEYS[3] and 'run:' ('{chime}:run:'), else a script
--          error
-- ARGV[5]  outbox grace (ms) for runs handed a slot
-- ARGV[6]  start token: unique to this call ('' for none), kept in the run's `start_token`. The
--          same call sent again (a client retrying after its connection dropped before the
--          reply) finds the run `running` under its own token and gets {'running', attempt}
--          again, so the start stays with the worker that made it instead of waiting for its
--          lease to lapse. (Runs it handed a slot the first time wait in the outbox.)
-- Returns {'running', attempt, handed...} or {'parked', 0, handed...}, where handed is
-- {run_id, priority, ...} of waiting runs given a slot freed by a lapsed holder (to enqueue);
-- {ERR_NOT_FOUND, 'run'} no such run; {ERR_NOT_FOUND, 'task'} no such task;
-- {ERR_CONFLICT, status} the run is not queued;
-- {ERR_STALE, 'concurrency_key'} the task's concurrency key changed since the caller read it.

-- @include "includes/errors.lua"
-- @include "includes/chime_key_base.lua"
-- @include "includes/chime_run_prefix.lua"
-- @include "includes/chime_sem_fill.lua"
-- @include "includes/chime_sem_park.lua"
-- @include "includes/chime_agent_gate.lua"
-- @include "includes/chime_agent_window.lua"
-- @include "includes/chime_agent_delay.lua"
-- @include "includes/chime_agent_release.lua"
-- @include "includes/chime_agent_fill.lua"

local run_key, task_key, running_key, outbox_key, sem_key, fifo_key =
  KEYS[1], KEYS[2], KEYS[3], KEYS[4], KEYS[5], KEYS[6]
local now, lease_ms, ckey, grace_ms =
  tonumber(ARGV[1]), tonumber(ARGV[2]), ARGV[3], tonumber(ARGV[5])
local token = ARGV[6] or ''
local base = chime_key_base(running_key, 'running')
local run_prefix = chime_run_prefix(base, ARGV[4])

local run_status, run_id, run_attempt, run_agent, run_token =
  unpack(redis.call('HMGET', run_key, 'status', 'id', 'attempt', 'agent_id', 'start_token'))
if not run_status then
  return {ERR_NOT_FOUND, 'run'}
end
if run_status ~= 'queued' then
  if run_status == 'running' and token ~= '' and run_token == token then
    return {'running', tonumber(run_attempt or '1')}
  end
  if run_status ~= 'running' and run_agent then
    -- a duplicate job of a run that ended (canceled while queued): its slot is free now
    local gate = chime_agent_gate(base, run_agent)
    redis.call('ZREM', gate.slots, run_id)
  end
  return {ERR_CONFLICT, run_status}
end
local task_id, task_ckey, task_limit =
  unpack(redis.call('HMGET', task_key, 'id', 'concurrency_key', 'concurrency_limit'))
if not task_id then
  return {ERR_NOT_FOUND, 'task'}
end
if (task_ckey or '') ~= ckey then
  return {ERR_STALE, 'concurrency_key'}
end

local function parked(handed)
  redis.call('ZREM', outbox_key, run_id)
  local out = {'parked', 0}
  for _, v in ipairs(handed) do
    out[#out + 1] = v
  end
  return out
end

local handed = {}
local g = nil
if run_agent then
  g = chime_agent_gate(base, run_agent)
  local reopen = chime_agent_window(g, now)
  if reopen then
    chime_agent_release(g, run_id)
    handed = chime_agent_fill(g, now, outbox_key, grace_ms, run_prefix)
    chime_agent_delay(g.base, run_key, run_id, reopen)
    return parked(handed)
  end
  redis.call('ZREMRANGEBYSCORE', g.slots, '-inf', now)
  if not redis.call('ZSCORE', g.slots, run_id)
    and redis.call('ZCARD', g.slots) >= g.max_running then
    -- admitted once, its slot lapsed while it waited on RQ: it keeps its turn
    redis.call('LPUSH', g.waiting, run_id)
    redis.call('SADD', g.base .. 'awaiting', run_agent)
    redis.call('HSET', run_key, 'status', 'pending')
    return parked(handed)
  end
end

if ckey ~= '' then
  local limit = tonumber(task_limit or '1')
  handed = chime_sem_fill(sem_key, fifo_key, limit, now, lease_ms, outbox_key, grace_ms,
    run_prefix)
  if redis.call('ZSCORE', sem_key, run_id) or redis.call('ZCARD', sem_key) < limit then
    redis.call('ZADD', sem_key, now + lease_ms, run_id)
    redis.call('HSET', run_key, 'concurrency_key', ckey)
  else
    chime_sem_park(run_key, fifo_key, run_id, now)
    if g then
      chime_agent_release(g, run_id)
      for _, v in ipairs(chime_agent_fill(g, now, outbox_key, grace_ms, run_prefix)) do
        handed[#handed + 1] = v
      end
    end
    return parked(handed)
  end
end

if g then
  redis.call('ZADD', g.slots, now + lease_ms, run_id)
  redis.call('ZADD', g.starts, now, run_id .. ':' .. (run_attempt or '1'))
end

redis.call('HSET', run_key, 'status', 'running', 'started_at', now, 'start_token', token)
redis.call('HDEL', run_key, 'next_attempt_at', 'sem_handover')
redis.call('ZREM', outbox_key, run_id)
redis.call('ZADD', running_key, now + lease_ms, run_id)
local out = {'running', tonumber(run_attempt or '1')}
for _, v in ipairs(handed) do
  out[#out + 1] = v
end
return out
