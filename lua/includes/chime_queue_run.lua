-- Queue a run: the moment a run is about to go to RQ.
--
-- chime_queue_run(run_key, outbox_key, dedupe_key, dedupe_window_ms, run_id, now, grace_ms,
--                 agent)
--   First the dedupe window (chime_claim_dedupe; dedupe_key '' when the task has none): a
--   window held by another run ends this run `deduped`. Otherwise the run becomes `queued` and
--   enters the outbox, scored by the time after which the scheduler enqueues it again if nobody
--   confirmed it on RQ. Then the agent's gate (chime_agent_gate, keys from the base of
--   outbox_key): with the last minute's starts at `max_runs_per_minute` the run waits `pending`
--   in delayed until the window allows; with its `max_running` slots taken (or runs waiting
--   before it) it waits `pending` in the agent's FIFO, handed a slot as one ends. Either way it
--   keeps the dedupe window it took.
--   agent: the run's agent_id when the caller has it (nil: read from the run).
--   Returns 'queued', 'deduped' or 'pending'.

-- @include "includes/chime_key_base.lua"
-- @include "includes/chime_claim_dedupe.lua"
-- @include "includes/chime_agent_gate.lua"
-- @include "includes/chime_agent_window.lua"
-- @include "includes/chime_agent_delay.lua"
-- @include "includes/chime_agent_admit.lua"

local function chime_queue_run(run_key, outbox_key, dedupe_key, dedupe_window_ms, run_id, now,
                               grace_ms, agent)
  if not chime_claim_dedupe(run_key, dedupe_key, dedupe_window_ms, run_id, now) then
    return 'deduped'
  end
  if agent == nil then
    agent = redis.call('HGET', run_key, 'agent_id')
  end
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
