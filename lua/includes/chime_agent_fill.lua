-- chime_agent_fill(g, now, outbox_key, grace_ms, run_prefix) -> {run_id, priority, ...} of the
--   agent's waiting runs (g: chime_agent_gate) handed a free slot, in FIFO order: each becomes
--   `queued` (its `next_attempt_at` cleared) and enters the outbox (the caller enqueues them).
--   Holders whose lease lapsed are dropped first; waiting ids whose run is no longer `pending`
--   are dropped (chime_fifo_fill).

-- @include "includes/chime_fifo_fill.lua"

local function chime_agent_fill(g, now, outbox_key, grace_ms, run_prefix)
  return chime_fifo_fill(g.slots, g.waiting, g.max_running, now, g.lease_ms, outbox_key,
    grace_ms, run_prefix, {}, {'next_attempt_at'})
end
