-- chime_agent_delay(base, run_key, run_id, at): the run waits `pending` in base..'delayed' until
--   `at` (the agent's window reopens), published on base..'wake' when it is the earliest.

local function chime_agent_delay(base, run_key, run_id, at)
  local delayed = base .. 'delayed'
  redis.call('HSET', run_key, 'status', 'pending', 'next_attempt_at', at)
  redis.call('ZADD', delayed, at, run_id)
  if redis.call('ZRANGE', delayed, 0, 0)[1] == run_id then
    redis.call('PUBLISH', base .. 'wake', at)
  end
end
