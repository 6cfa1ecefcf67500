-- Write RQ's records of jobs that ended on a worker, for many jobs in one call: what RQ 3.0's
-- handle_job_success (the job returned) or handle_job_failure (it raised) write for one. These
-- keys are RQ's own (`rq:...`), named by RQ, so they carry no Chime hash tag.
--
-- KEYS[1]        the worker's execution index (set `rq:worker:<name>:executions`)
-- KEYS[2]        the worker's hash (`rq:worker:<name>`)
-- KEYS[6i-3]     for job i (1..n): its hash (`rq:job:<id>`)
-- KEYS[6i-2]     its result stream (`rq:results:<id>`)
-- KEYS[6i-1]     its queue's finished registry, or failed registry when it failed
-- KEYS[6i]       its execution hash
-- KEYS[6i+1]     its execution registry (`rq:executions:<id>`)
-- KEYS[6i+2]     the started registry of its queue (`rq:wip:<queue>`)
-- ARGV[1]        now (seconds since the epoch, float)
-- ARGV[2]        now as RQ formats dates
-- ARGV[3]        the worker's name
-- ARGV[4]        'idle' to set the worker's state idle (nothing left in flight), else ''
-- ARGV[6i-1]     job i's id
-- ARGV[6i]       its execution id
-- ARGV[6i+1]     when its execution started (seconds since the epoch)
-- ARGV[6i+2]     'finished' or 'failed'
-- ARGV[6i+3]     how long RQ keeps the job and its result (s): result_ttl or failure_ttl
-- ARGV[6i+4]     the failure as RQ stores it (base64 of zlib), '' when it finished
-- Returns the number of jobs recorded; a job whose hash is gone is left alone.

local worker_executions, worker_key = KEYS[1], KEYS[2]
local now, now_fmt, worker, idle = tonumber(ARGV[1]), ARGV[2], ARGV[3], ARGV[4]
local stamp = math.floor(now)

local done, worked = 0, 0
local finished_count, failed_count = 0, 0
for i = 1, (#KEYS - 2) / 6 do
  local job_key, results_key, registry_key, exec_key, executions_key, wip_key =
    KEYS[6 * i - 3], KEYS[6 * i - 2], KEYS[6 * i - 1], KEYS[6 * i], KEYS[6 * i + 1],
    KEYS[6 * i + 2]
  local job_id, exec_id, started, status, ttl, exc =
    ARGV[6 * i - 1], ARGV[6 * i], tonumber(ARGV[6 * i + 1]), ARGV[6 * i + 2],
    tonumber(ARGV[6 * i + 3]), ARGV[6 * i + 4]
  local composite = job_id .. ':' .. exec_id
  redis.call('DEL', exec_key)
  redis.call('ZREM', wip_key, composite)
  redis.call('ZREM', executions_key, exec_id)
  redis.call('SREM', worker_executions, composite)
  if redis.call('EXISTS', job_key) == 1 then
    redis.call('HSET', job_key, 'status', status, 'ended_at', now_fmt, 'last_heartbeat', now_fmt)
    if status == 'failed' then
      redis.call('XADD', results_key, 'MAXLEN', '~', 10, '*', 'type', 2, 'worker_name', worker,
        'exc_string', exc, 'execution_id', exec_id, 'execution_started_at', started,
        'execution_ended_at', now)
      failed_count = failed_count + 1
    else
      redis.call('XADD', results_key, 'MAXLEN', '~', 10, '*', 'type', 1, 'worker_name', worker,
        'execution_id', exec_id, 'execution_started_at', started, 'execution_ended_at', now)
      finished_count = finished_count + 1
    end
    redis.call('EXPIRE', results_key, ttl)
    redis.call('ZADD', registry_key, stamp + ttl, job_id)
    redis.call('EXPIRE', job_key, ttl)
    worked = worked + math.max(0, now - started)
    done = done + 1
  end
end
if finished_count > 0 then
  redis.call('HINCRBY', worker_key, 'successful_job_count', finished_count)
end
if failed_count > 0 then
  redis.call('HINCRBY', worker_key, 'failed_job_count', failed_count)
end
if done > 0 then
  redis.call('HINCRBYFLOAT', worker_key, 'total_working_time', tostring(worked))
end
if idle == 'idle' then
  redis.call('HSET', worker_key, 'state', 'idle')
end
return done
