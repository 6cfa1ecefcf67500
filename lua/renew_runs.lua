-- Renew the heartbeat leases of many running attempts, of their concurrency slots and of their
-- agent slots (includes/chime_agent_gate.lua: keys built from the running key's base), in one
-- call: a worker renews every attempt it has in flight with one round trip per interval.
--
-- KEYS[1]      running zset (heartbeat leases)
-- KEYS[2i]     for attempt i (1..n): its run hash
-- KEYS[2i+1]   the semaphore zset it holds a slot in (its run hash again when none)
-- ARGV[1]      now (ms)
-- ARGV[2]      lease (ms)
-- ARGV[2i+1]   attempt i's run id
-- ARGV[2i+2]   the attempt number the caller runs (fence)
-- Returns {r1, ..., rn}: 1 when attempt i was renewed; 2 when it was renewed and its run's
-- cancel was requested (the caller aborts it, as the cancel channel says); 0 when it no longer
-- runs (it finished, or its lease lapsed so it counts as lost and is retried elsewhere): the
-- caller should stop its steps. Nothing is written for an attempt that answers 0.

-- @include "includes/chime_key_base.lua"

local running_key = KEYS[1]
local base = chime_key_base(running_key, 'running')
local now, lease_ms = tonumber(ARGV[1]), tonumber(ARGV[2])

local out = {}
for i = 1, (#KEYS - 1) / 2 do
  local run_key, sem_key = KEYS[2 * i], KEYS[2 * i + 1]
  local run_id, attempt = ARGV[2 * i + 1], ARGV[2 * i + 2]
  local status, run_attempt, agent, cancel_requested = unpack(redis.call('HMGET', run_key,
    'status', 'attempt', 'agent_id', 'cancel_requested'))
  local expiry = tonumber(redis.call('ZSCORE', running_key, run_id) or '0')
  if status ~= 'running' or run_attempt ~= attempt or expiry <= now then
    out[i] = 0
  else
    redis.call('ZADD', running_key, 'XX', now + lease_ms, run_id)
    if sem_key ~= run_key then
      redis.call('ZADD', sem_key, 'XX', now + lease_ms, run_id)
    end
    if agent then
      redis.call('ZADD', base .. 'aslots:' .. agent, 'XX', now + lease_ms, run_id)
    end
    out[i] = cancel_requested and 2 or 1
  end
end
return out
