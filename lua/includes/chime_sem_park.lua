-- chime_sem_park(run_key, fifo_key, run_id, now): the run waits for a concurrency slot
--   (chime_sem_fill hands them on): `pending` at the FIFO tail, or at its head when the run had
--   been handed a slot that lapsed before it started (it keeps its turn).

local function chime_sem_park(run_key, fifo_key, run_id, now)
  if redis.call('HEXISTS', run_key, 'sem_handover') == 1 then
    redis.call('LPUSH', fifo_key, run_id)
  else
    redis.call('RPUSH', fifo_key, run_id)
  end
  redis.call('HSET', run_key, 'status', 'pending')
  redis.call('HDEL', run_key, 'sem_handover')
end
