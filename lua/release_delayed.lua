-- Release one claimed delayed run (a retry whose backoff passed, an event run held by a
-- snooze): it is queued now through the same path as every run (dedupe applies), enters the
-- outbox, and its claim is dropped, at once. An event run whose task was snoozed further, or a
-- run whose release time moved later, goes back to delayed at that time instead.
--
-- KEYS[1]  run hash
-- KEYS[2]  task hash
-- KEYS[3]  delayed zset
-- KEYS[4]  delayed:claims zset
-- KEYS[5]  outbox zset
-- KEYS[6]  dedupe key of the task's dedupe_key (the run hash again when it has none)
-- ARGV[1]  now (ms)
-- ARGV[2]  run id
-- ARGV[3]  claim token (the lease expiry claim_due gave)
-- ARGV[4]  the task's dedupe_key as the caller read it ('' for none)
-- ARGV[5]  outbox grace (ms)
-- ARGV[6]  wake channel: published when the run goes back to delayed as its earliest member
-- Returns {'queued', priority, trigger} or {'deduped', priority, trigger}: released;
-- {'delayed', ms}: back in delayed until ms; {'dropped', status}: the run is not pending any
-- more (canceled meanwhile; '' when gone): the claim is dropped;
-- {ERR_LOST, 'claim'} the claim is not ours (taken over after its lease): nothing changed;
-- {ERR_STALE, 'dedupe_key'} the task's dedupe_key changed since the caller read it: nothing
-- changed.

-- @include "includes/errors.lua"
-- @include "includes/chime_set_due.lua"
-- @include "includes/chime_queue_run.lua"

local run_key, task_key, delayed_key, claims_key, outbox_key, dedupe_key =
  KEYS[1], KEYS[2], KEYS[3], KEYS[4], KEYS[5], KEYS[6]
local now, run_id, token, dedupe_raw, grace, wake =
  tonumber(ARGV[1]), ARGV[2], tonumber(ARGV[3]), ARGV[4], tonumber(ARGV[5]), ARGV[6]

local held = redis.call('ZSCORE', claims_key, run_id)
if not held or tonumber(held) ~= token then
  return {ERR_LOST, 'claim'}
end
local run_status, trigger, next_attempt_at, priority = unpack(redis.call('HMGET', run_key,
  'status', 'trigger', 'next_attempt_at', 'priority'))
if run_status ~= 'pending' then
  redis.call('ZREM', claims_key, run_id)
  return {'dropped', run_status or ''}
end
local task_dedupe, dedupe_window, snoozed_until = unpack(redis.call('HMGET', task_key,
  'dedupe_key', 'dedupe_window_seconds', 'snoozed_until'))
local hold_until = tonumber(next_attempt_at or '0')
if trigger == 'event' then
  hold_until = math.max(hold_until, tonumber(snoozed_until or '0'))
end
if hold_until <= now and (task_dedupe or '') ~= dedupe_raw then
  return {ERR_STALE, 'dedupe_key'}
end

-- every check passed: write
redis.call('ZREM', claims_key, run_id)
if hold_until > now then
  redis.call('HSET', run_key, 'next_attempt_at', hold_until)
  chime_set_due(delayed_key, wake, run_id, hold_until)
  return {'delayed', hold_until}
end
if dedupe_raw == '' then
  dedupe_key = ''
end
local window_ms = math.floor(tonumber(dedupe_window or '3600') * 1000)
local status = chime_queue_run(run_key, outbox_key, dedupe_key, window_ms, run_id, now, grace)
return {status, priority or '5', trigger or ''}
