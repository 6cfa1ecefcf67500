-- Commit one claimed occurrence of a task: create its run(s), move the task to its next
-- occurrence in due (or complete it), and drop the claim, at once. The caller planned the
-- commit from a snapshot of the task (status, sched_version, next_run_at) read after the claim; a pause, cancel, snooze or schedule change that raced with the claim bumped
-- sched_version and placed the task itself, so it wins: the claim is dropped and no run made.
-- Run ids are derived from (task id, occurrence), so a commit repeated after a crash or by a
-- scheduler that took the claim over creates nothing twice.
--
-- KEYS[1]  task hash
-- KEYS[2]  due zset
-- KEYS[3]  claims zset
-- KEYS[4]  the task's runs zset
-- KEYS[5]  outbox zset
-- KEYS[6]  delayed zset
-- KEYS[7..14]   the 8 listing indexes of (agent, active, kind)
-- KEYS[15..22]  the 8 listing indexes of (agent, completed, kind)
-- KEYS[23..]    one run hash per run in ARGV[14..], in the same order
-- ARGV[1]  now (ms)
-- ARGV[2]  task id
-- ARGV[3]  claim token (the lease expiry claim_due gave)
-- ARGV[4]  sched_version of the snapshot
-- ARGV[5]  occurrence (ms): the snapshot's next_run_at
-- ARGV[6]  next_run_at after this occurrence (ms), '' when the schedule has none
-- ARGV[7]  'repeat' (cron, rrule: no next occurrence completes the task) or 'once' (the task
--          leaves due and completes when its run ends; here only when no run will go on)
-- ARGV[8]  '1' to clear snoozed_until and snooze_reason (the snoozed occurrence fired)
-- ARGV[9]  wake channel
-- ARGV[10] run key prefix: the base of KEYS[5] and 'run:' ('{chime}:run:'), else a script
--          error
-- ARGV[11] run history cap per task
-- ARGV[12] outbox grace (ms)
-- ARGV[13] the nominal occurrence the next next_run_at fires for when jitter moved it, ''
--          otherwise
-- ARGV[14..] run_id, scheduled_for (ms) pairs: the runs of this occurrence (none when a
--          misfire policy skips it)
-- The dedupe window is the one of the task's dedupe_key as it is now (chime_create_run).
-- Returns {'committed', next_run_at or '', completed (0/1), run_id, status, priority, ...}
-- with each run's status ('queued', 'deduped', or 'exists' for a run made before);
-- {'released', reason}: the claim was ours but the occurrence no longer stands (reason:
-- 'task' gone, 'status:<status>', 'version', 'moved'); the claim is dropped, no run is made,
-- and an active task found in neither due nor a claim goes back in due at its next_run_at;
-- {ERR_LOST, 'claim'} the claim is not ours (taken over after its lease): nothing changed.

-- @include "includes/errors.lua"
-- @include "includes/chime_key_base.lua"
-- @include "includes/chime_run_prefix.lua"
-- @include "includes/chime_set_due.lua"
-- @include "includes/chime_move_indexes.lua"
-- @include "includes/chime_create_run.lua"

local task_key, due_key, claims_key, runs_key, outbox_key, delayed_key =
  KEYS[1], KEYS[2], KEYS[3], KEYS[4], KEYS[5], KEYS[6]
local now, task_id, token, version, occurrence, next_run_at, mode, clear_snooze, wake, cap,
  grace =
  ARGV[1], ARGV[2], tonumber(ARGV[3]), ARGV[4], ARGV[5], ARGV[6], ARGV[7], ARGV[8], ARGV[9],
  tonumber(ARGV[11]), tonumber(ARGV[12])
local next_occurrence = ARGV[13]
local run_prefix = chime_run_prefix(chime_key_base(outbox_key, 'outbox'), ARGV[10])

local held = redis.call('ZSCORE', claims_key, task_id)
if not held or tonumber(held) ~= token then
  return {ERR_LOST, 'claim'}
end

local task_status, task_version, task_next_run_at = unpack(redis.call('HMGET',
  task_key, 'status', 'sched_version', 'next_run_at'))
local reason
if not task_status then
  reason = 'task'
elseif task_status ~= 'active' then
  reason = 'status:' .. task_status
elseif (task_version or '0') ~= version then
  reason = 'version'
elseif task_next_run_at ~= occurrence then
  reason = 'moved'
end
if reason then
  redis.call('ZREM', claims_key, task_id)
  if task_status == 'active' and task_next_run_at
    and not redis.call('ZSCORE', due_key, task_id) then
    chime_set_due(due_key, wake, task_id, task_next_run_at)
  end
  return {'released', reason}
end
-- every check passed: write
local out = {'committed', next_run_at, 0}
local live = false
for i = 14, #ARGV, 2 do
  local run_id, scheduled_for = ARGV[i], ARGV[i + 1]
  local run_key = KEYS[23 + (i - 14) / 2]
  local status, priority = chime_create_run({
    task_id = task_id, task_key = task_key, runs_key = runs_key, run_key = run_key,
    outbox_key = outbox_key, delayed_key = delayed_key,
    run_key_prefix = run_prefix, run_id = run_id, trigger = 'schedule',
    scheduled_for = scheduled_for, now = now, event_json = '', history_cap = cap,
    grace_ms = grace
  })
  if not status then
    local was
    was, priority = unpack(redis.call('HMGET', run_key, 'status', 'priority'))
    status = 'exists'
    if was ~= 'deduped' then
      live = true
    end
  elseif status ~= 'deduped' then
    live = true
  end
  out[#out + 1] = run_id
  out[#out + 1] = status
  out[#out + 1] = priority or '5'
end

-- the task's fields, in one HDEL and one HSET
local drop, set = {}, {}
if clear_snooze == '1' then
  table.insert(drop, 'snoozed_until')
  table.insert(drop, 'snooze_reason')
end
if next_occurrence ~= '' then
  table.insert(set, 'next_occurrence')
  table.insert(set, next_occurrence)
else
  table.insert(drop, 'next_occurrence')
end
local complete = false
if next_run_at ~= '' then
  table.insert(set, 'next_run_at')
  table.insert(set, next_run_at)
else
  table.insert(drop, 'next_run_at')
  if mode == 'repeat' or not live then
    complete = true
    table.insert(set, 'status')
    table.insert(set, 'completed')
    table.insert(set, 'updated_at')
    table.insert(set, now)
  end
end
if #drop > 0 then
  redis.call('HDEL', task_key, unpack(drop))
end
if #set > 0 then
  redis.call('HSET', task_key, unpack(set))
end
if next_run_at ~= '' then
  chime_set_due(due_key, wake, task_id, next_run_at)
elseif complete then
  chime_move_indexes({unpack(KEYS, 7, 14)}, {unpack(KEYS, 15, 22)}, task_id,
    redis.call('HGET', task_key, 'created_at'))
  out[3] = 1
end
redis.call('ZREM', claims_key, task_id)
return out
