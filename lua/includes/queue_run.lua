-- Queue a run (included, not called on their own): the moment a run is about to go to RQ.
--
-- chime_queue_run(run_key, outbox_key, dedupe_key, dedupe_window_ms, run_id, now, grace_ms)
--   dedupe_key: '' when the task has none. With one, SET NX PX claims the window for this run;
--   a window held by another run ends this run `deduped`, naming the holder in `error`, and
--   announces it on the channel named like the run's key (message: 'deduped').
--   Otherwise the run becomes `queued` and enters the outbox, scored by the time after which
--   the scheduler enqueues it again if nobody confirmed it on RQ.
--   Then the agent's gate (includes/agent_gate.lua): with the last minute's starts at
--   `max_runs_per_minute` the run waits `pending` in delayed until the window allows; with its
--   `max_running` slots taken (or runs waiting before it) it waits `pending` in the agent's
--   FIFO, handed a slot as one ends. Either way it keeps the dedupe window it took.
--   Returns 'queued', 'deduped' or 'pending'.
-- chime_claim_dedupe(run_key, dedupe_key, dedupe_window_ms, run_id, now)
--   The dedupe step alone: false when the run ended `deduped`, true otherwise.

-- @include "includes/agent_gate.lua"

local function chime_claim_dedupe(run_key, dedupe_key, dedupe_window_ms, run_id, now)
  if dedupe_key ~= '' then
    local ok = redis.call('SET', dedupe_key, run_id, 'NX', 'PX', dedupe_window_ms)
    if not ok then
      local holder = redis.call('GET', dedupe_key)
      if holder and holder ~= run_id then
        redis.call('HSET', run_key, 'status', 'deduped', 'finished_at', now,
          'error', 'deduped: run ' .. holder .. ' holds the dedupe window')
        redis.call('HDEL', run_key, 'next_attempt_at')
        redis.call('PUBLISH', run_key, 'deduped')
        return false
      end
      if not holder then
        redis.call('SET', dedupe_key, run_id, 'PX', dedupe_window_ms)
      end
    end
  end
  return true
end

local function chime_queue_run(run_key, outbox_key, dedupe_key, dedupe_window_ms, run_id, now,
                               grace_ms)
  if not chime_claim_dedupe(run_key, dedupe_key, dedupe_window_ms, run_id, now) then
    return 'deduped'
  end
  local agent = redis.call('HGET', run_key, 'agent_id')
  if agent then
    local g = chime_agent_gate(chime_key_base(outbox_key, 'outbox'), agent)
    local reopen = chime_agent_window(g, now)
    if reopen then
      chime_agent_delay(g.base, run_key, run_id, reopen)
      return 'pending'
    end
    if not chime_agent_admit(g, run_key, run_id, now) then
      redis.call('HDEL', run_key, 'next_attempt_at')
      return 'pending'
    end
  end
  redis.call('HSET', run_key, 'status', 'queued', 'enqueued_at', now)
  redis.call('HDEL', run_key, 'next_attempt_at')
  redis.call('ZADD', outbox_key, now + grace_ms, run_id)
  return 'queued'
end
