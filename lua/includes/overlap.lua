-- Overlap policy (included, not called on their own): what a new run of a task does while an
-- earlier run of it is in progress (pending, queued or running). Runs of a task are all in its
-- runs zset (history trimming never drops a run in progress), so the check reads at most
-- CHIME_RUN_HISTORY run statuses, and only for tasks whose policy is not `allow`.
--
-- chime_overlap_in_progress(runs_key, run_prefix)
--   {id, status, buffered} of every run of the task in progress (buffered: '1' for a run that
--   waits for an earlier one under `buffer_one`).
-- chime_overlap_stop(run_prefix, cancel_channel, runs, now, reason)
--   `cancel_running`: every run in progress ends `canceled` (one not started: at once, out of
--   the delayed set, the outbox and its agent's slot; a concurrency slot it was handed lapses
--   with its lease) or
--   is stopped (running: `cancel_requested`, announced on the cancel channel).
-- chime_overlap_release(task_key, run_prefix, outbox_key, now, grace_ms)
--   An earlier run ended: the run buffered behind it (`overlap_buffered` of the task) goes on
--   as any run about to be queued (its dedupe window was taken when it was buffered): queued,
--   or `pending` at its agent's gate. Returns {run_id, priority} to enqueue, or {}.

-- @include "includes/queue_run.lua"

local function chime_overlap_in_progress(runs_key, run_prefix)
  local found = {}
  for _, id in ipairs(redis.call('ZRANGE', runs_key, 0, -1)) do
    local st = redis.call('HMGET', run_prefix .. id, 'status', 'overlap_buffered')
    if st[1] == 'pending' or st[1] == 'queued' or st[1] == 'running' then
      found[#found + 1] = {id, st[1], st[2] or ''}
    end
  end
  return found
end

local function chime_overlap_stop(run_prefix, cancel_channel, delayed_key, outbox_key, runs, now,
                                  reason)
  for _, r in ipairs(runs) do
    local rkey = run_prefix .. r[1]
    if r[2] == 'running' then
      redis.call('HSET', rkey, 'cancel_requested', now)
      redis.call('PUBLISH', cancel_channel, r[1])
    else
      redis.call('HSET', rkey, 'status', 'canceled', 'finished_at', now, 'error', reason)
      redis.call('HDEL', rkey, 'next_attempt_at', 'overlap_buffered')
      redis.call('ZREM', delayed_key, r[1])
      redis.call('ZREM', outbox_key, r[1])
      local agent = redis.call('HGET', rkey, 'agent_id')
      if agent then
        chime_agent_release(chime_agent_gate(chime_key_base(outbox_key, 'outbox'), agent), r[1])
      end
      redis.call('PUBLISH', rkey, 'canceled')
    end
  end
end

local function chime_overlap_release(task_key, run_prefix, outbox_key, now, grace_ms)
  local id = redis.call('HGET', task_key, 'overlap_buffered')
  if not id then
    return {}
  end
  redis.call('HDEL', task_key, 'overlap_buffered')
  local rkey = run_prefix .. id
  local st = redis.call('HMGET', rkey, 'status', 'priority')
  if st[1] ~= 'pending' or redis.call('HEXISTS', rkey, 'overlap_buffered') == 0 then
    return {}
  end
  redis.call('HDEL', rkey, 'overlap_buffered')
  if chime_queue_run(rkey, outbox_key, '', 0, id, now, grace_ms) ~= 'queued' then
    return {}
  end
  return {id, st[2] or '5'}
end
