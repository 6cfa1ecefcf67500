-- Take a bounded batch of queued runs whose RQ enqueue was never confirmed: outbox members
-- whose deadline passed are given a new deadline (now + grace) in the same call, so exactly one
-- scheduler enqueues each of them again, and another one retries if that one dies too.
--
-- KEYS[1]  outbox zset (queued run ids by the time after which they are enqueued again)
-- ARGV[1]  now (ms)
-- ARGV[2]  grace (ms): the new deadline is now + grace
-- ARGV[3]  batch size, > 0
-- Returns the run ids taken ({} when none is overdue). Nothing can be refused.

local outbox_key = KEYS[1]
local now, grace, limit = tonumber(ARGV[1]), tonumber(ARGV[2]), tonumber(ARGV[3])

local overdue = redis.call('ZRANGEBYSCORE', outbox_key, '-inf', now, 'LIMIT', 0, limit)
local CHUNK = 1000
local args = {}
for _, run_id in ipairs(overdue) do
  args[#args + 1] = now + grace
  args[#args + 1] = run_id
  if #args >= 2 * CHUNK then
    redis.call('ZADD', outbox_key, unpack(args))
    args = {}
  end
end
if #args > 0 then
  redis.call('ZADD', outbox_key, unpack(args))
end
return overdue
