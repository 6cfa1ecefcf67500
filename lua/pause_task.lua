-- Pause an active task: out of due (no scheduled runs), into the paused indexes.
--
-- KEYS[1]  task hash
-- KEYS[2]  due zset
-- KEYS[3..10]  the 8 listing indexes for status active
-- KEYS[11..18] the 8 listing indexes for status paused
-- ARGV[1]  now (ms)
-- ARGV[2]  expected status (snapshot; must be 'active')
-- ARGV[3]  expected sched_version (snapshot)
-- Returns {'ok'}; {ERR_NOT_FOUND, 'task'} no such task; {ERR_CONFLICT, status} not active;
-- {ERR_STALE, ...} stale snapshot.

-- @include "includes/chime_task_transition.lua"

local task_key, due_key = KEYS[1], KEYS[2]
local now, expected_status, expected_version = ARGV[1], ARGV[2], ARGV[3]

local task_id, err = chime_task_transition({
  task_key = task_key, status = expected_status, version = expected_version,
  allowed = {active = true}, from = {unpack(KEYS, 3, 10)}, to = {unpack(KEYS, 11, 18)}
})
if err then
  return err
end
redis.call('ZREM', due_key, task_id)
redis.call('HDEL', task_key, 'next_run_at')
redis.call('HSET', task_key, 'status', 'paused', 'updated_at', now)
redis.call('HINCRBY', task_key, 'sched_version', 1)
return {'ok'}
