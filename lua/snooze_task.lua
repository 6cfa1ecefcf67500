-- Snooze a task: its next occurrence moves to next_run_at + delay; occurrences before that are
-- skipped (the scheduler computes the one after from the snoozed time). Without a next run
-- (an event task, a paused task) the snooze runs from now: event runs wait until it.
--
-- KEYS[1]  task hash
-- KEYS[2]  due zset
-- ARGV[1]  now (ms)
-- ARGV[2]  expected status (snapshot; 'active' or 'paused')
-- ARGV[3]  expected sched_version (snapshot)
-- ARGV[4]  delay (ms)
-- ARGV[5]  reason ('' for none)
-- ARGV[6]  wake channel
-- Returns {'ok', snoozed_until}; {ERR_NOT_FOUND, 'task'} no such task;
-- {ERR_CONFLICT, status} canceled or completed;
-- {ERR_STALE, ...} stale snapshot.

-- @include "includes/chime_task_transition.lua"
-- @include "includes/chime_set_due.lua"

local task_key, due_key = KEYS[1], KEYS[2]
local now, expected_status, expected_version = ARGV[1], ARGV[2], ARGV[3]
local delay, reason, wake = tonumber(ARGV[4]), ARGV[5], ARGV[6]

local task_id, err = chime_task_transition({
  task_key = task_key, status = expected_status, version = expected_version,
  allowed = {active = true, paused = true}
})
if err then
  return err
end
local next_run_at = redis.call('HGET', task_key, 'next_run_at')
local base = tonumber(next_run_at or now)
local until_ms = base + delay
redis.call('HSET', task_key, 'snoozed_until', until_ms, 'updated_at', now)
if reason ~= '' then
  redis.call('HSET', task_key, 'snooze_reason', reason)
else
  redis.call('HDEL', task_key, 'snooze_reason')
end
redis.call('HINCRBY', task_key, 'sched_version', 1)
if next_run_at then
  -- the snoozed occurrence fires exactly then: no jitter's nominal occurrence applies
  redis.call('HDEL', task_key, 'next_occurrence')
  redis.call('HSET', task_key, 'next_run_at', until_ms)
  chime_set_due(due_key, wake, task_id, until_ms)
end
return {'ok', until_ms}
