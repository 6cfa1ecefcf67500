-- Pause a task for a reason the system gives (its agent was revoked; its schedule cannot be
-- computed): out of due, into the paused indexes, `pause_reason` set; with ARGV[5] = '1' every
-- run of it that has not started ends `canceled` (out of the delayed set, the outbox, its
-- concurrency FIFO and slot, and its agent's slot). A running run is left to finish. A task
-- already completed or canceled keeps its status (its runs are still canceled).
--
-- KEYS[1]  task hash
-- KEYS[2]  due zset
-- KEYS[3..10]  the 8 listing indexes for the current status
-- KEYS[11..18] the 8 listing indexes for status paused (the current ones again when the task
--              is completed or canceled)
-- KEYS[19] the task's runs zset
-- KEYS[20] delayed zset
-- KEYS[21] outbox zset
-- KEYS[22] the concurrency FIFO of the task's concurrency key (the runs zset again if none)
-- KEYS[23] the semaphore zset of that key (the runs zset again if none)
-- KEYS[24] the agent's max_running slots zset (app/store/keys.py agent_slots)
-- ARGV[1]  now (ms)
-- ARGV[2]  expected status (snapshot)
-- ARGV[3]  expected sched_version (snapshot)
-- ARGV[4]  pause_reason
-- ARGV[5]  '1': cancel the runs that have not started, '0': leave them
-- ARGV[6]  run key prefix: the base of KEYS[21] and 'run:' ('{chime}:run:'), else a script
--          error
-- ARGV[7]  error of the canceled runs
-- Returns {'ok', run_id...} with the ids of canceled runs that were queued on RQ (to take off
-- their queues); {ERR_NOT_FOUND, 'task'} no such task; {ERR_STALE, ...} stale snapshot.

-- @include "includes/chime_task_transition.lua"
-- @include "includes/chime_key_base.lua"
-- @include "includes/chime_run_prefix.lua"

local task_key, due_key = KEYS[1], KEYS[2]
local runs_key, delayed_key, outbox_key, fifo_key, sem_key, slots_key =
  KEYS[19], KEYS[20], KEYS[21], KEYS[22], KEYS[23], KEYS[24]
local now, expected_status, expected_version, reason, cancel_runs, run_error =
  ARGV[1], ARGV[2], ARGV[3], ARGV[4], ARGV[5], ARGV[7]
local run_prefix = chime_run_prefix(chime_key_base(outbox_key, 'outbox'), ARGV[6])

-- any status; only an active or paused task becomes paused (and moves to the paused indexes)
local pausing = expected_status == 'active' or expected_status == 'paused'
local from = nil
if pausing then
  from = {unpack(KEYS, 3, 10)}
end
local task_id, err = chime_task_transition({
  task_key = task_key, status = expected_status, version = expected_version,
  from = from, to = {unpack(KEYS, 11, 18)}
})
if err then
  return err
end
if pausing then
  redis.call('ZREM', due_key, task_id)
  redis.call('HDEL', task_key, 'next_run_at')
  redis.call('HSET', task_key, 'status', 'paused', 'updated_at', now, 'pause_reason', reason)
  redis.call('HINCRBY', task_key, 'sched_version', 1)
end

local result = {'ok'}
if cancel_runs ~= '1' then
  return result
end
for _, run_id in ipairs(redis.call('ZRANGE', runs_key, 0, -1)) do
  local run_key = run_prefix .. run_id
  local status = redis.call('HGET', run_key, 'status')
  if status == 'pending' or status == 'queued' then
    redis.call('HSET', run_key, 'status', 'canceled', 'finished_at', now, 'error', run_error)
    redis.call('HDEL', run_key, 'next_attempt_at')
    redis.call('ZREM', delayed_key, run_id)
    redis.call('ZREM', outbox_key, run_id)
    redis.call('ZREM', slots_key, run_id)
    if fifo_key ~= runs_key then
      redis.call('LREM', fifo_key, 0, run_id)
      redis.call('ZREM', sem_key, run_id)
    end
    if status == 'queued' then
      result[#result + 1] = run_id
    end
  end
end
return result
