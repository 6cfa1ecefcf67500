-- Record the outcome of a running attempt: `succeeded`; or, for a failure, `pending` for a
-- retry (in the delayed set at its backoff time, attempt + 1) while attempts are left and the
-- task is not canceled, else `failed` (`canceled` when the task was canceled meanwhile). The
-- run's concurrency slot and its agent's slot (includes/chime_agent_gate.lua) are released and
-- handed to waiting runs. A `once` task whose scheduled run ended becomes `completed` here, in
-- the same step. A failed attempt of a run whose cancel was requested (POST /runs/{id}/cancel)
-- ends `canceled`, never retried. A run that ends (not a retry) is announced on the channel
-- named like its key, its status the message.
-- Also used to recover an attempt whose worker died: ARGV[12] = '1' requires that its
-- heartbeat lease lapsed.
--
-- KEYS[1]  run hash
-- KEYS[2]  task hash
-- KEYS[3]  running zset
-- KEYS[4]  delayed zset
-- KEYS[5]  outbox zset
-- KEYS[6]  semaphore zset of the run's concurrency key (the run hash again when none)
-- KEYS[7]  FIFO list of that key (the run hash again when none)
-- KEYS[8..15]   the 8 listing indexes of the task's status as the caller read it
-- KEYS[16..23]  the 8 listing indexes of status completed
-- ARGV[1]  now (ms)
-- ARGV[2]  attempt the caller ran (fence: a recovered or finished attempt is not finished twice)
-- ARGV[3]  outcome: 'succeeded' or 'failed'
-- ARGV[4]  steps (JSON list)
-- ARGV[5]  error ('' for none)
-- ARGV[6]  release time of a retry (ms)
-- ARGV[7]  the concurrency key the run holds a slot of, as the caller read it ('' for none)
-- ARGV[8]  the task's status as the caller read it
-- ARGV[9]  lease (ms) for runs handed a slot
-- ARGV[10] run key prefix: the base of KEYS[3] and 'run:' ('{chime}:run:'), else a script
--          error
-- ARGV[11] outbox grace (ms)
-- ARGV[12] '1': only if the run's heartbeat lease lapsed (recovery), else '0'
-- ARGV[13] wake channel: a retry that becomes the earliest delayed run wakes the schedulers
-- Returns {status, completed (0/1), handed...} with the run's new status and {run_id,
-- priority, ...} of waiting runs handed the freed slot, and of a run buffered behind this one
-- (overlap_policy buffer_one) that goes now (to enqueue);
-- {ERR_NOT_FOUND, 'run'} no such run; {ERR_STALE, '<status>:<attempt>'} the attempt is not
-- running any more;
-- {ERR_STALE, 'alive'} recovery of a run whose lease has not lapsed;
-- {ERR_STALE, 'concurrency_key'} or
-- {ERR_STALE, 'task:<status>'} the caller's snapshot is stale (read again and retry).

-- @include "includes/errors.lua"
-- @include "includes/chime_key_base.lua"
-- @include "includes/chime_run_prefix.lua"
-- @include "includes/chime_sem_fill.lua"
-- @include "includes/chime_agent_gate.lua"
-- @include "includes/chime_agent_release.lua"
-- @include "includes/chime_agent_fill.lua"
-- @include "includes/chime_overlap_release.lua"
-- @include "includes/chime_move_indexes.lua"

local run_key, task_key, running_key, delayed_key, outbox_key, sem_key, fifo_key =
  KEYS[1], KEYS[2], KEYS[3], KEYS[4], KEYS[5], KEYS[6], KEYS[7]
local now, attempt, outcome, steps, err, retry_at, ckey, task_status_read, lease_ms,
  grace_ms, lapsed_only =
  tonumber(ARGV[1]), ARGV[2], ARGV[3], ARGV[4], ARGV[5], tonumber(ARGV[6]), ARGV[7], ARGV[8],
  tonumber(ARGV[9]), tonumber(ARGV[11]), ARGV[12]
local wake = ARGV[13]
local base = chime_key_base(running_key, 'running')
local run_prefix = chime_run_prefix(base, ARGV[10])

local run_status, run_attempt, run_id, max_attempts, trigger, run_ckey, run_agent,
  cancel_requested = unpack(redis.call('HMGET', run_key, 'status', 'attempt', 'id',
    'max_attempts', 'trigger', 'concurrency_key', 'agent_id', 'cancel_requested'))
if not run_status then
  return {ERR_NOT_FOUND, 'run'}
end
if run_status ~= 'running' or run_attempt ~= attempt then
  return {ERR_STALE, run_status .. ':' .. (run_attempt or '')}
end
if lapsed_only == '1' then
  local expiry = tonumber(redis.call('ZSCORE', running_key, run_id) or '0')
  if expiry > now then
    return {ERR_STALE, 'alive'}
  end
end
if (run_ckey or '') ~= ckey then
  return {ERR_STALE, 'concurrency_key'}
end
local task_id, task_status, kind, task_limit, created_at = unpack(redis.call(
  'HMGET', task_key, 'id', 'status', 'schedule_kind', 'concurrency_limit', 'created_at'))

local status
if outcome == 'succeeded' then
  status = 'succeeded'
elseif cancel_requested then
  status = 'canceled'
elseif tonumber(attempt) < tonumber(max_attempts or '1') and task_status
  and task_status ~= 'canceled'
then
  status = 'pending'
elseif task_status == 'canceled' then
  status = 'canceled'
else
  status = 'failed'
end

local complete = status ~= 'pending' and kind == 'once' and trigger == 'schedule'
  and (task_status == 'active' or task_status == 'paused')
if complete and task_status ~= task_status_read then
  return {ERR_STALE, 'task:' .. task_status}
end

-- every check passed: write
redis.call('ZREM', running_key, run_id)
redis.call('HSET', run_key, 'steps', steps)
if status == 'pending' then
  local next_attempt = tonumber(attempt) + 1
  redis.call('HSET', run_key, 'status', 'pending', 'attempt', next_attempt, 'next_attempt_at',
    retry_at, 'error', err)
  redis.call('ZADD', delayed_key, retry_at, run_id)
  if redis.call('ZRANGE', delayed_key, 0, 0)[1] == run_id then
    redis.call('PUBLISH', wake, retry_at)
  end
else
  redis.call('HSET', run_key, 'status', status, 'finished_at', now)
  redis.call('HDEL', run_key, 'next_attempt_at')
  redis.call('PUBLISH', run_key, status)
  if err ~= '' then
    redis.call('HSET', run_key, 'error', err)
  else
    redis.call('HDEL', run_key, 'error')
  end
end

local handed = {}
if ckey ~= '' then
  redis.call('ZREM', sem_key, run_id)
  redis.call('HDEL', run_key, 'concurrency_key')
  if task_id then
    handed = chime_sem_fill(sem_key, fifo_key, tonumber(task_limit or '1'), now, lease_ms,
      outbox_key, grace_ms, run_prefix)
  end
end

if run_agent then
  local g = chime_agent_gate(base, run_agent)
  chime_agent_release(g, run_id)
  for _, v in ipairs(chime_agent_fill(g, now, outbox_key, grace_ms, run_prefix)) do
    handed[#handed + 1] = v
  end
end

if status ~= 'pending' and task_id then
  -- a run buffered behind this one (overlap_policy buffer_one) goes now
  for _, v in ipairs(chime_overlap_release(task_key, run_prefix, outbox_key, now, grace_ms)) do
    handed[#handed + 1] = v
  end
end

if complete then
  redis.call('HSET', task_key, 'status', 'completed', 'updated_at', now)
  redis.call('HDEL', task_key, 'next_run_at')
  chime_move_indexes({unpack(KEYS, 8, 15)}, {unpack(KEYS, 16, 23)}, task_id, created_at)
end

local out = {status, complete and 1 or 0}
for _, v in ipairs(handed) do
  out[#out + 1] = v
end
return out
