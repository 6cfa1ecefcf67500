-- chime_agent_release(g, run_id): the run's slot of the agent (g: chime_agent_gate) is free.

local function chime_agent_release(g, run_id)
  redis.call('ZREM', g.slots, run_id)
end
