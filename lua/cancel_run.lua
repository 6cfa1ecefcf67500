-- Cancel one run (POST /runs/{id}/cancel). A `pending` or `queued` run ends `canceled` at once:
-- out of the delayed set, the outbox and the concurrency FIFO; a slot it was handed (queued,
-- not started) goes to the next waiting run, and so does its agent's slot (max_running). A
-- `running` run is marked `cancel_requested` and
-- the workers are told on the cancel channel: the one running it aborts its step, and
-- finish_run ends it `canceled` without a retry (so does the recovery of a worker that died).
-- A run that ends here is announced on the channel named like its key (message: 'canceled').
--
-- KEYS[1]  run hash
-- KEYS[2]  delayed zset
-- KEYS[3]  outbox zset
-- KEYS[4]  the concurrency FIFO of the task's concurrency key (the run hash again if none)
-- KEYS[5]  the semaphore zset of that key (the run hash again if none)
-- KEYS[6]  task hash (its concurrency_limit; the run hash again when the task is gone)
-- ARGV[1]  now (ms)
-- ARGV[2]  run key prefix: the base of KEYS[3] and 'run:' ('{chime}:run:'), else a script
--          error
-- ARGV[3]  lease (ms) of a slot handed to a waiting run
-- ARGV[4]  outbox grace (ms) of a run handed a slot
-- ARGV[5]  cancel channel (workers listen): message = the run id
-- ARGV[6]  wake channel: a run handed a slot is due in the outbox now
-- Returns {'canceled', previous status ('pending' or 'queued'), handed run_id, priority, ...}
-- with the runs handed the freed slot or buffered behind this one (to enqueue); {'stopping'} for a running run (again
-- when repeated); {ERR_NOT_FOUND, 'run'} no such run; {ERR_CONFLICT, status} the run is
-- terminal already.

-- @include "includes/errors.lua"
-- @include "includes/chime_key_base.lua"
-- @include "includes/chime_run_prefix.lua"
-- @include "includes/chime_sem_fill.lua"
-- @include "includes/chime_overlap_release.lua"
-- @include "includes/chime_agent_gate.lua"
-- @include "includes/chime_agent_free.lua"

local run_key, delayed_key, outbox_key, fifo_key, sem_key, task_key =
  KEYS[1], KEYS[2], KEYS[3], KEYS[4], KEYS[5], KEYS[6]
local now, lease_ms, grace_ms, cancel_channel, wake =
  tonumber(ARGV[1]), tonumber(ARGV[3]), tonumber(ARGV[4]), ARGV[5], ARGV[6]
local base = chime_key_base(outbox_key, 'outbox')
local run_prefix = chime_run_prefix(base, ARGV[2])

local status, run_id, buffered, agent =
  unpack(redis.call('HMGET', run_key, 'status', 'id', 'overlap_buffered', 'agent_id'))
if not status then
  return {ERR_NOT_FOUND, 'run'}
end
if status == 'running' then
  redis.call('HSET', run_key, 'cancel_requested', now)
  redis.call('PUBLISH', cancel_channel, run_id)
  return {'stopping'}
end
if status ~= 'pending' and status ~= 'queued' then
  return {ERR_CONFLICT, status}
end

redis.call('HSET', run_key, 'status', 'canceled', 'finished_at', now, 'error', 'canceled')
redis.call('HDEL', run_key, 'next_attempt_at', 'sem_handover', 'overlap_buffered')
redis.call('ZREM', delayed_key, run_id)
redis.call('ZREM', outbox_key, run_id)
redis.call('PUBLISH', run_key, 'canceled')
local out = {'canceled', status}
if task_key ~= run_key then
  if buffered then
    if redis.call('HGET', task_key, 'overlap_buffered') == run_id then
      redis.call('HDEL', task_key, 'overlap_buffered')
    end
  else
    -- a run buffered behind this one (overlap_policy buffer_one) goes now
    for _, v in ipairs(chime_overlap_release(task_key, run_prefix, outbox_key, now, grace_ms)) do
      out[#out + 1] = v
    end
  end
end
if fifo_key ~= run_key then
  redis.call('LREM', fifo_key, 0, run_id)
end

-- runs handed a freed slot are returned to be enqueued, and are due in the outbox now
local function hand_on(handed)
  for _, v in ipairs(handed) do
    out[#out + 1] = v
  end
  if #handed > 0 then
    redis.call('PUBLISH', wake, now)
  end
end

if agent then
  local g = chime_agent_gate(base, agent)
  hand_on(chime_agent_free(g, {run_id}, now, outbox_key, grace_ms, run_prefix))
end
if sem_key ~= run_key and redis.call('ZREM', sem_key, run_id) == 1 and task_key ~= run_key then
  local limit = tonumber(redis.call('HGET', task_key, 'concurrency_limit') or '1')
  hand_on(chime_sem_fill(sem_key, fifo_key, limit, now, lease_ms, outbox_key, grace_ms,
    run_prefix))
end
return out
