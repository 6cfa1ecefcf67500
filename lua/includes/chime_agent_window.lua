-- chime_agent_window(g, now) -> nil when one more start of the agent (g: chime_agent_gate) fits
--   in the last minute's window, else the time (ms) the window lets the next one start.

local function chime_agent_window(g, now)
  redis.call('ZREMRANGEBYSCORE', g.starts, '-inf', now - 60000)
  if redis.call('ZCARD', g.starts) < g.per_minute then
    return nil
  end
  local first = redis.call('ZRANGE', g.starts, 0, 0, 'WITHSCORES')
  return tonumber(first[2]) + 60000
end
