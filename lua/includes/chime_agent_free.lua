-- chime_agent_free(g, run_ids, now, outbox_key, grace_ms, run_prefix) -> {run_id, priority, ...}
--   runs canceled before they started give their slots of the agent (g: chime_agent_gate) back
--   at once, and the slots go to the agent's waiting runs (as chime_agent_fill); {} when none of
--   them held one.

-- @include "includes/chime_agent_fill.lua"

local function chime_agent_free(g, run_ids, now, outbox_key, grace_ms, run_prefix)
  local freed = 0
  for _, id in ipairs(run_ids) do
    freed = freed + redis.call('ZREM', g.slots, id)
  end
  if freed == 0 then
    return {}
  end
  return chime_agent_fill(g, now, outbox_key, grace_ms, run_prefix)
end
