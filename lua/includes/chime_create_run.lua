-- Create one run of a task. Every trigger (schedule, run_now, backfill, event) creates runs
-- here, so dedupe, history and counters behave the same.
--
-- chime_create_run(c) with c a table:
--   task_id, task_key, runs_key, run_key, outbox_key, delayed_key,
--   run_key_prefix (runs of this task are trimmed by id: base..'run:', chime_run_prefix),
--   run_id, trigger, scheduled_for (ms), now (ms), event_json ('' for none),
--   event_key (optional: the event record the run refers to for the event's data; a run
--   trimmed from the history gives up its reference, and the last one deletes the record),
--   history_cap, grace_ms
-- The task hash must exist (callers check). A run id that exists already creates nothing: a
-- scheduler that repeats a commit after a crash makes no second run. The dedupe window is the
-- one of the task's `dedupe_key` as it is now (chime_dedupe_key).
-- The task's overlap_policy applies while an earlier run is in progress
-- (chime_overlap_in_progress): `skip` ends the new run `skipped` (error naming the run in
-- progress); `buffer_one` makes it wait `pending` (dedupe already applied) until the earlier run
-- ends (chime_overlap_release), and a run created while one is buffered is `skipped`;
-- `cancel_running` cancels the earlier runs (chime_overlap_stop: stopping a running one,
-- announced on the cancel channel base..'cancels') and goes on. Two triggers racing are two
-- script calls: the second sees the first's run.
-- Returns the new run's status ('queued', 'deduped', 'pending', 'skipped') and its priority
-- (as written in the run), or false when it existed.

-- @include "includes/chime_key_base.lua"
-- @include "includes/chime_dedupe_key.lua"
-- @include "includes/chime_claim_dedupe.lua"
-- @include "includes/chime_queue_run.lua"
-- @include "includes/chime_overlap_in_progress.lua"
-- @include "includes/chime_overlap_stop.lua"
-- @include "includes/chime_trim_history.lua"

local function chime_create_run(c)
  if redis.call('EXISTS', c.run_key) == 1 then
    return false
  end
  local agent, priority, max_retries, snoozed, dedupe, dedupe_window, overlap_policy =
    unpack(redis.call('HMGET', c.task_key, 'created_by', 'priority', 'max_retries',
      'snoozed_until', 'dedupe_key', 'dedupe_window_seconds', 'overlap_policy'))
  local base = chime_key_base(c.run_key_prefix, 'run:')
  local dedupe_key = chime_dedupe_key(base, agent, dedupe)
  local policy = overlap_policy or 'allow'
  local earlier = {}
  if policy ~= 'allow' then
    earlier = chime_overlap_in_progress(c.runs_key, c.run_key_prefix)
  end
  priority = priority or '5'
  local fields = {
    'id', c.run_id, 'task_id', c.task_id,
    'agent_id', agent, 'trigger', c.trigger, 'scheduled_for', c.scheduled_for,
    'attempt', 1, 'max_attempts', tonumber(max_retries or '0') + 1, 'priority', priority,
    'created_at', c.now, 'steps', '[]', 'status', 'pending'
  }
  if c.event_json ~= '' then
    table.insert(fields, 'event')
    table.insert(fields, c.event_json)
  end
  if c.event_key and c.event_key ~= '' then
    table.insert(fields, 'event_key')
    table.insert(fields, c.event_key)
  end
  redis.call('HSET', c.run_key, unpack(fields))
  redis.call('ZADD', c.runs_key, c.scheduled_for, c.run_id)
  redis.call('HINCRBY', c.task_key, 'run_count', 1)
  redis.call('HSET', c.task_key, 'last_run_at', c.scheduled_for)

  local status
  local snoozed_until = tonumber(snoozed or '0')
  local buffered = nil
  for _, r in ipairs(earlier) do
    if r.buffered == '1' then
      buffered = r.id
    end
  end
  if #earlier > 0 and (policy == 'skip' or (policy == 'buffer_one' and buffered)) then
    local holder = earlier[1].id
    for _, r in ipairs(earlier) do
      if r.buffered ~= '1' then
        holder = r.id
      end
    end
    redis.call('HSET', c.run_key, 'status', 'skipped', 'finished_at', c.now,
      'error', 'skipped: run ' .. holder .. ' is in progress')
    redis.call('PUBLISH', c.run_key, 'skipped')
    chime_trim_history(c.runs_key, c.run_key_prefix, c.history_cap)
    return 'skipped', priority
  end
  if #earlier > 0 and policy == 'cancel_running' then
    local cancels = base .. 'cancels'
    chime_overlap_stop(c.run_key_prefix, cancels, c.delayed_key, c.outbox_key, c.task_key,
      earlier, c.now, 'canceled: replaced by run ' .. c.run_id)
    redis.call('HDEL', c.task_key, 'overlap_buffered')
  end
  local window_ms = math.floor(tonumber(dedupe_window or '3600') * 1000)
  if #earlier > 0 and policy == 'buffer_one' then
    -- it waits for the earlier run, holding its dedupe window; the agent's gate applies when
    -- it is released (chime_overlap_release)
    if chime_claim_dedupe(c.run_key, dedupe_key, window_ms, c.run_id, c.now) then
      redis.call('HSET', c.run_key, 'overlap_buffered', '1')
      redis.call('HSET', c.task_key, 'overlap_buffered', c.run_id)
      status = 'pending'
    else
      status = 'deduped'
    end
    chime_trim_history(c.runs_key, c.run_key_prefix, c.history_cap)
    return status, priority
  end
  if c.trigger == 'event' and snoozed_until > tonumber(c.now) then
    redis.call('HSET', c.run_key, 'next_attempt_at', snoozed_until)
    redis.call('ZADD', c.delayed_key, snoozed_until, c.run_id)
    status = 'pending'
  else
    status = chime_queue_run(c.run_key, c.outbox_key, dedupe_key, window_ms, c.run_id,
      c.now, c.grace_ms, agent)
  end
  chime_trim_history(c.runs_key, c.run_key_prefix, c.history_cap)
  return status, priority
end
