-- Release one claimed delayed run (a retry whose backoff passed, an event run held by a
-- snooze): it is queued now through the same path as every run (dedupe applies), enters the
-- outbox, and its claim is dropped, at once. An event run whose task was snoozed further, or a
-- run whose release time moved later, goes back to delayed at that time instead.
--
-- KEYS[1]  run hash
-- KEYS[2]  delayed zset
-- KEYS[3]  delayed:claims zset
-- KEYS[4]  outbox zset
-- ARGV[1]  now (ms)
-- ARGV[2]  run id
-- ARGV[3]  claim token (the lease expiry claim_due gave)
-- ARGV[4]  outbox grace (ms)
-- ARGV[5]  wake channel: published when the run goes back to delayed as its earliest member
-- The task's hash is the run's `task_id` under the base of KEYS[4], and the dedupe window the
-- one of the task's dedupe_key as it is now (chime_dedupe_key): the caller reads neither.
-- Returns {'queued', priority, trigger} or {'deduped', priority, trigger}: released, or
-- {'pending', priority, trigger}: released into its agent's line or window;
-- {'delayed', ms}: back in delayed until ms; {'dropped', status}: the run is not pending any
-- more (canceled meanwhile; '' when gone): the claim is dropped;
-- {ERR_LOST, 'claim'} the claim is not ours (taken over after its lease): nothing changed.

-- @include "includes/errors.lua"
-- @include "includes/chime_key_base.lua"
-- @include "includes/chime_dedupe_key.lua"
-- @include "includes/chime_set_due.lua"
-- @include "includes/chime_queue_run.lua"

local run_key, delayed_key, claims_key, outbox_key = KEYS[1], KEYS[2], KEYS[3], KEYS[4]
local now, run_id, token, grace, wake =
  tonumber(ARGV[1]), ARGV[2], tonumber(ARGV[3]), tonumber(ARGV[4]), ARGV[5]
local base = chime_key_base(outbox_key, 'outbox')

local held = redis.call('ZSCORE', claims_key, run_id)
if not held or tonumber(held) ~= token then
  return {ERR_LOST, 'claim'}
end
local run_status, trigger, next_attempt_at, priority, task_id, agent = unpack(redis.call(
  'HMGET', run_key, 'status', 'trigger', 'next_attempt_at', 'priority', 'task_id', 'agent_id'))
if run_status ~= 'pending' then
  redis.call('ZREM', claims_key, run_id)
  return {'dropped', run_status or ''}
end
local task_key = base .. 'task:' .. (task_id or '')
local dedupe, dedupe_window, snoozed_until = unpack(redis.call('HMGET', task_key,
  'dedupe_key', 'dedupe_window_seconds', 'snoozed_until'))
local hold_until = tonumber(next_attempt_at or '0')
if trigger == 'event' then
  hold_until = math.max(hold_until, tonumber(snoozed_until or '0'))
end

-- every check passed: write
redis.call('ZREM', claims_key, run_id)
if hold_until > now then
  redis.call('HSET', run_key, 'next_attempt_at', hold_until)
  chime_set_due(delayed_key, wake, run_id, hold_until)
  return {'delayed', hold_until}
end
local dedupe_key = chime_dedupe_key(base, agent, dedupe)
local window_ms = math.floor(tonumber(dedupe_window or '3600') * 1000)
local status = chime_queue_run(run_key, outbox_key, dedupe_key, window_ms, run_id, now, grace)
return {status, priority or '5', trigger or ''}
