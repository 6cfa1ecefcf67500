-- chime_fifo_fill(slots_key, fifo_key, limit, now, lease_ms, outbox_key, grace_ms, run_prefix,
--                 set, drop) -> {run_id, priority, ...} of the runs handed a slot
--   The one FIFO hand-out of slots (an agent's max_running, a concurrency key's semaphore):
--   drops holders of slots_key whose lease lapsed, then hands the free slots (up to `limit`
--   holders) to the runs waiting in fifo_key, in order: each becomes a holder (lease
--   now + lease_ms), `queued`, with the extra fields of `set` ({field, value, ...}) written and
--   those of `drop` ({field, ...}) deleted, and enters the outbox. Waiting ids whose run is no
--   longer `pending` (canceled meanwhile) are dropped.

local function chime_fifo_fill(slots_key, fifo_key, limit, now, lease_ms, outbox_key, grace_ms,
                               run_prefix, set, drop)
  redis.call('ZREMRANGEBYSCORE', slots_key, '-inf', now)
  local handed = {}
  while redis.call('ZCARD', slots_key) < limit do
    local id = redis.call('LPOP', fifo_key)
    if not id then
      break
    end
    local rkey = run_prefix .. id
    local status, priority = unpack(redis.call('HMGET', rkey, 'status', 'priority'))
    if status == 'pending' then
      redis.call('ZADD', slots_key, now + lease_ms, id)
      redis.call('HSET', rkey, 'status', 'queued', 'enqueued_at', now, unpack(set))
      if #drop > 0 then
        redis.call('HDEL', rkey, unpack(drop))
      end
      redis.call('ZADD', outbox_key, now + grace_ms, id)
      handed[#handed + 1] = id
      handed[#handed + 1] = priority or '5'
    end
  end
  return handed
end
