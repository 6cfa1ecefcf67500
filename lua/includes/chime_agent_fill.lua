-- chime_agent_fill(g, now, outbox_key, grace_ms, run_prefix) -> {run_id, priority, ...} of the
--   agent's waiting runs (g: chime_agent_gate) handed a free slot, in FIFO order: each becomes
--   `queued` and enters the outbox (the caller enqueues them). Holders whose lease lapsed are
--   dropped first; waiting ids whose run is no longer `pending` are dropped.

local function chime_agent_fill(g, now, outbox_key, grace_ms, run_prefix)
  redis.call('ZREMRANGEBYSCORE', g.slots, '-inf', now)
  local handed = {}
  while redis.call('ZCARD', g.slots) < g.max_running do
    local id = redis.call('LPOP', g.waiting)
    if not id then
      break
    end
    local rkey = run_prefix .. id
    local status, priority = unpack(redis.call('HMGET', rkey, 'status', 'priority'))
    if status == 'pending' then
      redis.call('ZADD', g.slots, now + g.lease_ms, id)
      redis.call('HSET', rkey, 'status', 'queued', 'enqueued_at', now)
      redis.call('HDEL', rkey, 'next_attempt_at')
      redis.call('ZADD', outbox_key, now + grace_ms, id)
      handed[#handed + 1] = id
      handed[#handed + 1] = priority or '5'
    end
  end
  return handed
end
