-- Renew the heartbeat lease of a running attempt and of its concurrency slot.
--
-- KEYS[1]  run hash
-- KEYS[2]  running zset
-- KEYS[3]  semaphore zset the run holds a slot in (the run hash again when none)
-- ARGV[1]  now (ms)
-- ARGV[2]  lease (ms)
-- ARGV[3]  run id
-- ARGV[4]  attempt the caller is running (fence)
-- Returns 1 when renewed; 0 when this attempt no longer runs (it finished, or its lease lapsed
-- so it counts as lost and is retried elsewhere): the caller should stop its steps.

local run_key, running_key, sem_key = KEYS[1], KEYS[2], KEYS[3]
local now, lease_ms, run_id, attempt = tonumber(ARGV[1]), tonumber(ARGV[2]), ARGV[3], ARGV[4]

local run = redis.call('HMGET', run_key, 'status', 'attempt')
local expiry = tonumber(redis.call('ZSCORE', running_key, run_id) or '0')
if run[1] ~= 'running' or run[2] ~= attempt or expiry <= now then
  return 0
end
redis.call('ZADD', running_key, 'XX', now + lease_ms, run_id)
if sem_key ~= run_key then
  redis.call('ZADD', sem_key, 'XX', now + lease_ms, run_id)
end
return 1
