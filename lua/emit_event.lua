-- Create the runs of one event: one run per candidate event task of the agent, through the
-- shared run creation (trigger 'event'). The event's data is stored once, in the event record
-- (KEYS[3]: fields `data` and `refs`, the number of runs referring to it); each run keeps the
-- event's id, name and depth, and the record's key. The caller matched the
-- event name against each task's pattern from a snapshot; each task is checked again here and
-- only one still active, still an event task of this agent, gets a run. A snoozed task's run
-- is created `pending` in delayed until snoozed_until; the others are queued (dedupe applies).
--
-- KEYS[1]  outbox zset
-- KEYS[2]  delayed zset
-- KEYS[3]  the event record (hash)
-- KEYS[4..] three keys per candidate, in ARGV order: task hash, the task's runs zset, the new
--          run's hash
-- ARGV[1]  now (ms)
-- ARGV[2]  agent id (the event's emitter)
-- ARGV[3]  event JSON stored on every run ({"id", "name"}, and "depth" past 0)
-- ARGV[4]  run key prefix: the base of KEYS[1] and 'run:' ('{chime}:run:'), else a script
--          error
-- ARGV[5]  run history cap per task
-- ARGV[6]  outbox grace (ms)
-- ARGV[7]  wake channel: published when a held run becomes the earliest in delayed
-- ARGV[8]  the event's data (JSON), stored once in the event record
-- ARGV[9..] three values per candidate: task id, new run id, the task's schedule_expr as the
--          caller read it ('' for none)
-- The dedupe window is the one of the task's dedupe_key as it is now (chime_create_run).
-- Returns {run_id, status, ...} for the runs created (status 'queued', 'deduped', 'pending' or
-- 'skipped'); {ERR_STALE, '<task id>'} a candidate's pattern changed since the caller read it:
-- nothing changed, read again.

-- @include "includes/errors.lua"
-- @include "includes/chime_key_base.lua"
-- @include "includes/chime_run_prefix.lua"
-- @include "includes/chime_create_run.lua"

local outbox_key, delayed_key, event_key = KEYS[1], KEYS[2], KEYS[3]
local now, agent, event_json, cap, grace, wake =
  ARGV[1], ARGV[2], ARGV[3], tonumber(ARGV[5]), tonumber(ARGV[6]), ARGV[7]
local run_prefix = chime_run_prefix(chime_key_base(outbox_key, 'outbox'), ARGV[4])
local event_data = ARGV[8]

local eligible = {}
for i = 9, #ARGV, 3 do
  local n = (i - 9) / 3
  local c = {
    task_id = ARGV[i], run_id = ARGV[i + 1], expr = ARGV[i + 2],
    task_key = KEYS[4 + 3 * n], runs_key = KEYS[5 + 3 * n], run_key = KEYS[6 + 3 * n]
  }
  local status, kind, created_by, expr = unpack(redis.call('HMGET', c.task_key,
    'status', 'schedule_kind', 'created_by', 'schedule_expr'))
  if status == 'active' and kind == 'event' and created_by == agent
    and redis.call('EXISTS', c.run_key) == 0 then
    if (expr or '') ~= c.expr then
      return {ERR_STALE, c.task_id}
    end
    eligible[#eligible + 1] = c
  end
end

-- every check passed: write
local out = {}
local held = {}
if #eligible > 0 then
  redis.call('HSET', event_key, 'data', event_data)
  redis.call('HINCRBY', event_key, 'refs', #eligible)
end
for _, c in ipairs(eligible) do
  local status = chime_create_run({
    task_id = c.task_id, task_key = c.task_key, runs_key = c.runs_key, run_key = c.run_key,
    outbox_key = outbox_key, delayed_key = delayed_key,
    run_key_prefix = run_prefix, run_id = c.run_id, trigger = 'event', scheduled_for = now,
    now = now, event_json = event_json, event_key = event_key, history_cap = cap,
    grace_ms = grace
  })
  out[#out + 1] = c.run_id
  out[#out + 1] = status
  if status == 'pending' then
    held[c.run_id] = true
  end
end
local first = redis.call('ZRANGE', delayed_key, 0, 0, 'WITHSCORES')
if first[1] and held[first[1]] then
  redis.call('PUBLISH', wake, first[2])
end
return out
