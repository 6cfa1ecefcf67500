-- chime_agent_admit(g, run_key, run_id, now) -> true when the run holds one of the agent's slots
--   (g: chime_agent_gate), already or now; false: it waits `pending` at the tail of the agent's
--   FIFO (and the agent joins the set base..'awaiting' that lua/fill_agents.lua sweeps).

local function chime_agent_admit(g, run_key, run_id, now)
  redis.call('ZREMRANGEBYSCORE', g.slots, '-inf', now)
  if redis.call('ZSCORE', g.slots, run_id) then
    return true
  end
  if redis.call('ZCARD', g.slots) < g.max_running and redis.call('LLEN', g.waiting) == 0 then
    redis.call('ZADD', g.slots, now + g.lease_ms, run_id)
    return true
  end
  redis.call('RPUSH', g.waiting, run_id)
  redis.call('SADD', g.base .. 'awaiting', g.agent)
  redis.call('HSET', run_key, 'status', 'pending')
  return false
end
