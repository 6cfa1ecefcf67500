-- Backfill: one run (trigger `backfill`) per past occurrence the caller computed, at once. Run
-- ids are derived from (task, occurrence), so a repeated backfill of the same range creates
-- nothing new: it answers the existing runs. Every run goes through chime_create_run, so the
-- overlap policy, dedupe and history apply as to any run.
--
-- KEYS[1]  task hash
-- KEYS[2]  the task's runs zset
-- KEYS[3]  outbox zset
-- KEYS[4]  delayed zset
-- KEYS[5..] one run hash per run in ARGV[5..], in the same order
-- ARGV[1]  now (ms)
-- ARGV[2]  run key prefix: the base of KEYS[3] and 'run:' ('{chime}:run:'), else a script
--          error
-- ARGV[3]  history cap (runs kept per task)
-- ARGV[4]  outbox grace (ms)
-- ARGV[5..] run_id, scheduled_for (ms) pairs, oldest first
-- Returns {'ok', run_id, status, ...}: each run's status ('queued', 'deduped', 'pending',
-- 'skipped', or 'exists' for a run made before); {ERR_NOT_FOUND, 'task'} no such task;
-- {ERR_CONFLICT, 'canceled'}.

-- @include "includes/errors.lua"
-- @include "includes/chime_key_base.lua"
-- @include "includes/chime_run_prefix.lua"
-- @include "includes/chime_create_run.lua"

local task_key, runs_key, outbox_key, delayed_key = KEYS[1], KEYS[2], KEYS[3], KEYS[4]
local now, cap, grace = ARGV[1], tonumber(ARGV[3]), tonumber(ARGV[4])
local run_prefix = chime_run_prefix(chime_key_base(outbox_key, 'outbox'), ARGV[2])

local task_status, task_id = unpack(redis.call('HMGET', task_key, 'status', 'id'))
if not task_status then
  return {ERR_NOT_FOUND, 'task'}
end
if task_status == 'canceled' then
  return {ERR_CONFLICT, task_status}
end
local out = {'ok'}
for i = 5, #ARGV, 2 do
  local run_id, scheduled_for = ARGV[i], ARGV[i + 1]
  local run_key = KEYS[5 + (i - 5) / 2]
  local status = chime_create_run({
    task_id = task_id, task_key = task_key, runs_key = runs_key, run_key = run_key,
    outbox_key = outbox_key, delayed_key = delayed_key,
    run_key_prefix = run_prefix, run_id = run_id, trigger = 'backfill',
    scheduled_for = scheduled_for, now = now, event_json = '', history_cap = cap,
    grace_ms = grace
  })
  out[#out + 1] = run_id
  out[#out + 1] = status or 'exists'
end
return out
