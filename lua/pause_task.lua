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

-- @include "includes/errors.lua"
-- @include "includes/task_common.lua"

local task_key, due_key = KEYS[1], KEYS[2]
local now, expected_status, expected_version = ARGV[1], ARGV[2], ARGV[3]

local err = chime_check_snapshot(task_key, expected_status, expected_version)
if err then
  return err
end
if expected_status ~= 'active' then
  return {ERR_CONFLICT, expected_status}
end
local task_id = redis.call('HGET', task_key, 'id')
redis.call('ZREM', due_key, task_id)
redis.call('HDEL', task_key, 'next_run_at')
redis.call('HSET', task_key, 'status', 'paused', 'updated_at', now)
redis.call('HINCRBY', task_key, 'sched_version', 1)
chime_move_indexes(task_key, task_id)
return {'ok'}
