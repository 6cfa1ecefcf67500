-- Refresh `last_heartbeat` on the RQ jobs a worker has in flight, as RQ's maintain_heartbeats
-- does for its one job. These keys are RQ's own (`rq:job:<id>`), so they carry no Chime hash tag.
-- A job whose hash is gone (deleted by a cancel while its worker was learning that its run will
-- not start) is left alone: a plain HSET would recreate it as a hash without a TTL.
--
-- KEYS[1..n]  the jobs' hashes (`rq:job:<id>`)
-- ARGV[1]     now as RQ formats dates ('2026-12-01T08:00:00.000000Z')
-- Returns the number of job hashes refreshed.

local refreshed = 0
for _, job_key in ipairs(KEYS) do
  if redis.call('EXISTS', job_key) == 1 then
    redis.call('HSET', job_key, 'last_heartbeat', ARGV[1])
    refreshed = refreshed + 1
  end
end
return refreshed
