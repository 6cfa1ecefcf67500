-- Start one run of a task now, outside its schedule (next_run_at is unchanged).
--
-- KEYS[1]  task hash
-- KEYS[2]  the task's runs zset
-- KEYS[3]  the new run's hash
-- KEYS[4]  outbox zset
-- KEYS[5]  delayed zset
-- ARGV[1]  now (ms)
-- ARGV[2]  run id
-- ARGV[3]  run key prefix: the base of KEYS[4] and 'run:' ('{chime}:run:'), else a script
--          error
-- ARGV[4]  history cap (runs kept per task)
-- ARGV[5]  outbox grace (ms)
-- The dedupe window is the one of the task's dedupe_key as it is now (chime_create_run).
-- Returns {'ok', status} with the run's status ('queued', 'deduped', 'pending' or 'skipped');
-- {ERR_NOT_FOUND, 'task'} no such task; {ERR_CONFLICT, status} canceled or completed;
-- {ERR_EXISTS, run_id} the run exists.

-- @include "includes/errors.lua"
-- @include "includes/chime_key_base.lua"
-- @include "includes/chime_run_prefix.lua"
-- @include "includes/chime_create_run.lua"

local task_key, runs_key, run_key, outbox_key, delayed_key =
  KEYS[1], KEYS[2], KEYS[3], KEYS[4], KEYS[5]
local now, run_id, cap, grace = ARGV[1], ARGV[2], tonumber(ARGV[4]), tonumber(ARGV[5])
local run_prefix = chime_run_prefix(chime_key_base(outbox_key, 'outbox'), ARGV[3])

local task_status, task_id = unpack(redis.call('HMGET', task_key, 'status', 'id'))
if not task_status then
  return {ERR_NOT_FOUND, 'task'}
end
if task_status == 'canceled' or task_status == 'completed' then
  return {ERR_CONFLICT, task_status}
end
if redis.call('EXISTS', run_key) == 1 then
  return {ERR_EXISTS, run_id}
end
local status = chime_create_run({
  task_id = task_id, task_key = task_key, runs_key = runs_key, run_key = run_key,
  outbox_key = outbox_key, delayed_key = delayed_key,
  run_key_prefix = run_prefix, run_id = run_id, trigger = 'run_now', scheduled_for = now,
  now = now, event_json = '', history_cap = cap, grace_ms = grace
})
return {'ok', status}
