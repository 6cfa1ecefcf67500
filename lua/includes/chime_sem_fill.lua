-- Concurrency slots: a semaphore is a zset of holder run ids scored by lease expiry, with a FIFO
-- list of runs waiting for a slot (chime_sem_park).
--
-- chime_sem_fill(sem_key, fifo_key, limit, now, lease_ms, outbox_key, grace_ms, run_prefix)
--   Drops holders whose lease lapsed (a dead worker), then hands free slots to waiting runs in
--   FIFO order: each becomes a holder, `queued` (flag `sem_handover`), and enters the outbox
--   so it reaches RQ even if the caller dies before enqueueing it. Waiting ids whose run is no
--   longer `pending` (canceled meanwhile) are dropped. Returns {run_id, priority, ...} of the
--   runs handed a slot.

local function chime_sem_fill(sem_key, fifo_key, limit, now, lease_ms, outbox_key, grace_ms,
                              run_prefix)
  redis.call('ZREMRANGEBYSCORE', sem_key, '-inf', now)
  local handed = {}
  while redis.call('ZCARD', sem_key) < limit do
    local id = redis.call('LPOP', fifo_key)
    if not id then
      break
    end
    local rkey = run_prefix .. id
    local status, priority = unpack(redis.call('HMGET', rkey, 'status', 'priority'))
    if status == 'pending' then
      redis.call('ZADD', sem_key, now + lease_ms, id)
      redis.call('HSET', rkey, 'status', 'queued', 'enqueued_at', now, 'sem_handover', '1')
      redis.call('ZADD', outbox_key, now + grace_ms, id)
      handed[#handed + 1] = id
      handed[#handed + 1] = priority or '5'
    end
  end
  return handed
end
