-- chime_agent_tasks_full(base, agent) -> nil while the agent has fewer active + paused tasks
--   than its `max_tasks` (its override at base..'limits:'..agent, else the published default at
--   base..'limits', else 10000), else that limit. The counts are the listing indexes
--   base..'idx:<agent>:active:*' and base..'idx:<agent>:paused:*' (app/store/keys.py).

local function chime_agent_tasks_full(base, agent)
  local limit = tonumber(redis.call('HGET', base .. 'limits:' .. agent, 'max_tasks')
    or redis.call('HGET', base .. 'limits', 'max_tasks') or 10000)
  local n = redis.call('ZCARD', base .. 'idx:' .. agent .. ':active:*')
    + redis.call('ZCARD', base .. 'idx:' .. agent .. ':paused:*')
  if n >= limit then
    return limit
  end
  return nil
end
