-- Write RQ's records of jobs a worker starts, for many jobs in one call: what RQ 3.0's
-- prepare_execution and prepare_job_execution write for one. These keys are RQ's own (`rq:...`),
-- named by RQ, so they carry no Chime hash tag; RQ keeps all its keys on one Redis.
--
-- KEYS[1]        the worker's execution index (set `rq:worker:<name>:executions`)
-- KEYS[2]        the worker's hash (`rq:worker:<name>`)
-- KEYS[4i-1]     for job i (1..n): its hash (`rq:job:<id>`)
-- KEYS[4i]       its execution hash (`rq:execution:<id>:<execution id>`)
-- KEYS[4i+1]     its execution registry (zset `rq:executions:<id>`)
-- KEYS[4i+2]     the started registry of its queue (zset `rq:wip:<queue>`)
-- ARGV[1]        now (seconds since the epoch, float)
-- ARGV[2]        now as RQ formats dates ('2026-12-01T08:00:00.000000Z')
-- ARGV[3]        heartbeat TTL (s): of the execution hash and of the started-registry entry
-- ARGV[4]        the worker's name
-- ARGV[2i+3]     job i's id
-- ARGV[2i+4]     its execution id
-- An execution an earlier worker left for a job (it died while running the job, whose run now
-- starts again) leaves the started registry and the job's execution registry here; its hash
-- expires by its own TTL.
-- Returns the number of jobs recorded as started; a job whose hash is gone (deleted by a
-- cancel) is left alone, so no job hash is recreated without a TTL.

local worker_executions, worker_key = KEYS[1], KEYS[2]
local now, now_fmt, ttl, worker = tonumber(ARGV[1]), ARGV[2], tonumber(ARGV[3]), ARGV[4]
local stamp = math.floor(now)

local started = 0
for i = 1, (#KEYS - 2) / 4 do
  local job_key, exec_key, registry_key, wip_key =
    KEYS[4 * i - 1], KEYS[4 * i], KEYS[4 * i + 1], KEYS[4 * i + 2]
  local job_id, exec_id = ARGV[2 * i + 3], ARGV[2 * i + 4]
  if redis.call('EXISTS', job_key) == 1 then
    local composite = job_id .. ':' .. exec_id
    for _, old in ipairs(redis.call('ZRANGE', registry_key, 0, -1)) do
      redis.call('ZREM', wip_key, job_id .. ':' .. old)
      redis.call('ZREM', registry_key, old)
    end
    redis.call('HSET', exec_key, 'id', exec_id, 'job_id', job_id, 'created_at', now,
      'last_heartbeat', now, 'worker_name', worker)
    redis.call('EXPIRE', exec_key, ttl)
    redis.call('ZADD', registry_key, stamp + ttl + 60, exec_id)
    redis.call('EXPIRE', registry_key, ttl + 60)
    redis.call('ZADD', wip_key, stamp + ttl, composite)
    redis.call('SADD', worker_executions, composite)
    redis.call('HSET', job_key, 'last_heartbeat', now_fmt, 'status', 'started',
      'started_at', now_fmt, 'worker_name', worker)
    redis.call('PERSIST', job_key)
    started = started + 1
  end
end
redis.call('EXPIRE', worker_executions, ttl + 60)
if started > 0 then
  redis.call('HSET', worker_key, 'state', 'busy')
end
return started
