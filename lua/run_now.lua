-- Start one run of a task now, outside its schedule (next_run_at is unchanged).
--
-- KEYS[1]  task hash
-- KEYS[2]  the task's runs zset
-- KEYS[3]  the new run's hash
-- KEYS[4]  outbox zset
-- KEYS[5]  delayed zset
-- KEYS[6]  the dedupe key of the task's dedupe_key (the run hash again when there is none)
-- ARGV[1]  now (ms)
-- ARGV[2]  run id
-- ARGV[3]  the task's dedupe_key as the caller read it ('' for none)
-- ARGV[4]  run key prefix: the base of KEYS[4] and 'run:' ('{chime}:run:'), else a script
--          error
-- ARGV[5]  history cap (runs kept per task)
-- ARGV[6]  outbox grace (ms)
-- Returns {'ok', status} with the run's status ('queued' or 'deduped');
-- {ERR_NOT_FOUND, 'task'} no such
-- task; {ERR_CONFLICT, status} canceled or completed; {ERR_STALE, 'dedupe_key'} the task's
-- dedupe_key changed
-- since the caller read it; {ERR_EXISTS, run_id} the run exists.

-- @include "includes/errors.lua"
-- @include "includes/chime_key_base.lua"
-- @include "includes/chime_run_prefix.lua"
-- @include "includes/chime_create_run.lua"

local task_key, runs_key, run_key, outbox_key, delayed_key, dedupe_key =
  KEYS[1], KEYS[2], KEYS[3], KEYS[4], KEYS[5], KEYS[6]
local now, run_id, dedupe_raw, cap, grace =
  ARGV[1], ARGV[2], ARGV[3], tonumber(ARGV[5]), tonumber(ARGV[6])
local run_prefix = chime_run_prefix(chime_key_base(outbox_key, 'outbox'), ARGV[4])

local task_status, task_dedupe, task_id =
  unpack(redis.call('HMGET', task_key, 'status', 'dedupe_key', 'id'))
if not task_status then
  return {ERR_NOT_FOUND, 'task'}
end
if task_status == 'canceled' or task_status == 'completed' then
  return {ERR_CONFLICT, task_status}
end
if (task_dedupe or '') ~= dedupe_raw then
  return {ERR_STALE, 'dedupe_key'}
end
if redis.call('EXISTS', run_key) == 1 then
  return {ERR_EXISTS, run_id}
end
if dedupe_raw == '' then
  dedupe_key = ''
end
local status = chime_create_run({
  task_id = task_id, task_key = task_key, runs_key = runs_key, run_key = run_key,
  outbox_key = outbox_key, delayed_key = delayed_key, dedupe_key = dedupe_key,
  run_key_prefix = run_prefix, run_id = run_id, trigger = 'run_now', scheduled_for = now,
  now = now, event_json = '', history_cap = cap, grace_ms = grace
})
return {'ok', status}
