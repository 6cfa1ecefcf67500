-- Cancel a task for good: out of due, into the canceled indexes, and every run of it that has
-- not started ends `canceled` (out of the delayed set, the outbox and the concurrency FIFO).
-- A running run is left to finish. Each run it ends is announced on the channel named like its
-- key (message: 'canceled'), for clients waiting on it. A queued run that held a concurrency slot (handed over,
-- not yet started) gives it back, and the slot goes to the next waiting run at once; so does
-- the agent's slot (max_running) of every run that had not started.
--
-- KEYS[1]  task hash
-- KEYS[2]  due zset
-- KEYS[3..10]  the 8 listing indexes for the current status
-- KEYS[11..18] the 8 listing indexes for status canceled
-- KEYS[19] the task's runs zset
-- KEYS[20] delayed zset
-- KEYS[21] outbox zset
-- KEYS[22] the concurrency FIFO of the task's concurrency key (the runs zset again if none)
-- KEYS[23] the semaphore zset of that key (the runs zset again if none)
-- ARGV[1]  now (ms)
-- ARGV[2]  expected status (snapshot; not 'canceled')
-- ARGV[3]  expected sched_version (snapshot)
-- ARGV[4]  run key prefix: the base of KEYS[21] and 'run:' ('{chime}:run:'), else a script
--          error
-- ARGV[5]  lease (ms) of a slot handed to a waiting run
-- ARGV[6]  wake channel: a run handed a slot is due in the outbox now
-- Returns {'ok', run_id...} with the ids of runs that were queued on RQ (to take off their
-- queues); {ERR_NOT_FOUND, 'task'} no such task; {ERR_CONFLICT, 'canceled'} already canceled;
-- {ERR_STALE, ...} stale.

-- @include "includes/chime_task_transition.lua"
-- @include "includes/chime_key_base.lua"
-- @include "includes/chime_run_prefix.lua"
-- @include "includes/chime_sem_fill.lua"
-- @include "includes/chime_agent_gate.lua"
-- @include "includes/chime_agent_free.lua"

local task_key, due_key = KEYS[1], KEYS[2]
local runs_key, delayed_key, outbox_key, fifo_key, sem_key =
  KEYS[19], KEYS[20], KEYS[21], KEYS[22], KEYS[23]
local now, expected_status, expected_version = ARGV[1], ARGV[2], ARGV[3]
local lease_ms, wake = tonumber(ARGV[5]), ARGV[6]
local base = chime_key_base(outbox_key, 'outbox')
local run_prefix = chime_run_prefix(base, ARGV[4])

-- every status but canceled
local task_id, err = chime_task_transition({
  task_key = task_key, status = expected_status, version = expected_version,
  allowed = {active = true, paused = true, completed = true},
  from = {unpack(KEYS, 3, 10)}, to = {unpack(KEYS, 11, 18)}
})
if err then
  return err
end
redis.call('ZREM', due_key, task_id)
redis.call('HDEL', task_key, 'next_run_at')
redis.call('HSET', task_key, 'status', 'canceled', 'updated_at', now)
redis.call('HINCRBY', task_key, 'sched_version', 1)

local result = {'ok'}
local unstarted = {}
for _, run_id in ipairs(redis.call('ZRANGE', runs_key, 0, -1)) do
  local run_key = run_prefix .. run_id
  local status = redis.call('HGET', run_key, 'status')
  if status == 'pending' or status == 'queued' then
    redis.call('HSET', run_key, 'status', 'canceled', 'finished_at', now,
      'error', 'task canceled')
    redis.call('HDEL', run_key, 'next_attempt_at')
    redis.call('PUBLISH', run_key, 'canceled')
    redis.call('ZREM', delayed_key, run_id)
    redis.call('ZREM', outbox_key, run_id)
    if fifo_key ~= runs_key then
      redis.call('LREM', fifo_key, 0, run_id)
    end
    if status == 'queued' then
      result[#result + 1] = run_id
    end
    unstarted[#unstarted + 1] = run_id
    if sem_key ~= runs_key then
      redis.call('ZREM', sem_key, run_id)
    end
  end
end
if sem_key ~= runs_key then
  local limit = tonumber(redis.call('HGET', task_key, 'concurrency_limit') or '1')
  local handed = chime_sem_fill(sem_key, fifo_key, limit, now, lease_ms, outbox_key, 0,
    run_prefix)
  if #handed > 0 then
    redis.call('PUBLISH', wake, now)
  end
end
local agent = redis.call('HGET', task_key, 'created_by')
if agent and #unstarted > 0 then
  local g = chime_agent_gate(base, agent)
  if #chime_agent_free(g, unstarted, now, outbox_key, 0, run_prefix) > 0 then
    redis.call('PUBLISH', wake, now)
  end
end
return result
