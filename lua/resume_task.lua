-- Resume a paused task at a next run computed from now (missed occurrences are not caught up);
-- its `pause_reason` (set when Chime paused it) is cleared.
--
-- KEYS[1]  task hash
-- KEYS[2]  due zset
-- KEYS[3..10]  the 8 listing indexes for status paused
-- KEYS[11..18] the 8 listing indexes for the new status (active, or completed when the
--              schedule has no further occurrence)
-- ARGV[1]  now (ms)
-- ARGV[2]  expected status (snapshot; must be 'paused')
-- ARGV[3]  expected sched_version (snapshot)
-- ARGV[4]  next_run_at (ms), or '' for none (an event task, or a used-up schedule)
-- ARGV[5]  new status: 'active' or 'completed'
-- ARGV[6]  wake channel
-- ARGV[7]  the nominal occurrence next_run_at fires for when jitter moved it, '' otherwise
-- Returns {'ok'}; {ERR_NOT_FOUND, 'task'} no such task; {ERR_CONFLICT, status} not paused;
-- {ERR_STALE, ...} stale snapshot.

-- @include "includes/chime_task_transition.lua"
-- @include "includes/chime_set_due.lua"

local task_key, due_key = KEYS[1], KEYS[2]
local now, expected_status, expected_version = ARGV[1], ARGV[2], ARGV[3]
local next_run_at, new_status, wake, next_occurrence = ARGV[4], ARGV[5], ARGV[6], ARGV[7] or ''

local task_id, err = chime_task_transition({
  task_key = task_key, status = expected_status, version = expected_version,
  allowed = {paused = true}, from = {unpack(KEYS, 3, 10)}, to = {unpack(KEYS, 11, 18)}
})
if err then
  return err
end
redis.call('HSET', task_key, 'status', new_status, 'updated_at', now)
redis.call('HDEL', task_key, 'pause_reason')
redis.call('HINCRBY', task_key, 'sched_version', 1)
redis.call('HDEL', task_key, 'next_occurrence')
if next_run_at ~= '' and new_status == 'active' then
  redis.call('HSET', task_key, 'next_run_at', next_run_at)
  if next_occurrence ~= '' then
    redis.call('HSET', task_key, 'next_occurrence', next_occurrence)
  end
  chime_set_due(due_key, wake, task_id, next_run_at)
end
return {'ok'}
