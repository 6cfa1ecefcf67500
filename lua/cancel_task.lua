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
-- ARGV[4]  run key prefix ('{chime}:run:'; run keys share the hash tag)
-- ARGV[5]  lease (ms) of a slot handed to a waiting run
-- ARGV[6]  wake channel: a run handed a slot is due in the outbox now
-- Returns {'ok', run_id...} with the ids of runs that were queued on RQ (to take off their
-- queues); {ERR_NOT_FOUND, 'task'} no such task; {ERR_CONFLICT, 'canceled'} already canceled;
-- {ERR_STALE, ...} stale.

-- @include "includes/errors.lua"
-- @include "includes/task_common.lua"
-- @include "includes/semaphore.lua"
-- @include "includes/agent_gate.lua"

local task_key, due_key = KEYS[1], KEYS[2]
local runs_key, delayed_key, outbox_key, fifo_key, sem_key =
  KEYS[19], KEYS[20], KEYS[21], KEYS[22], KEYS[23]
local now, expected_status, expected_version, run_prefix = ARGV[1], ARGV[2], ARGV[3], ARGV[4]
local lease_ms, wake = tonumber(ARGV[5]), ARGV[6]

local err = chime_check_snapshot(task_key, expected_status, expected_version)
if err then
  return err
end
if expected_status == 'canceled' then
  return {ERR_CONFLICT, 'canceled'}
end
local task_id = redis.call('HGET', task_key, 'id')
redis.call('ZREM', due_key, task_id)
redis.call('HDEL', task_key, 'next_run_at')
redis.call('HSET', task_key, 'status', 'canceled', 'updated_at', now)
redis.call('HINCRBY', task_key, 'sched_version', 1)
chime_move_indexes(task_key, task_id)

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
  local g = chime_agent_gate(chime_key_base(outbox_key, 'outbox'), agent)
  if #chime_agent_free(g, unstarted, now, outbox_key, 0, run_prefix) > 0 then
    redis.call('PUBLISH', wake, now)
  end
end
return result
