-- Judge queued runs taken from the outbox by sweep_outbox.lua (their deadline passed): is each
-- still owned by someone, or lost? The outbox holds every `queued` run until start_run.lua takes
-- it out, so a run here was never started. For each run, in one atomic look:
--   * not `queued` any more (started, parked, pending a retry, ended, or gone): its entry is
--     dropped ('gone'); whatever it became has its own owner (a lease, the delayed set, a FIFO);
--   * its RQ job hash exists and its id waits on its priority's RQ queue: a worker will take it
--     ('waiting'); the next look is after as long again as it has waited since it was queued,
--     within [grace, longest], so a long backlog is not searched over and over. A queue is
--     searched from its head (where the jobs that waited longest are) at most `depth` ids
--     deep: a job not found there in a queue longer than that counts as waiting too, and is
--     judged for good once the backlog is shorter, so a look costs at most `depth` steps;
--   * otherwise nobody will run it ('lost': taken off a queue by a worker that died before the
--     start, an RQ job deleted by hand or left in RQ's intermediate queue or failed registry, an
--     enqueue that never happened): the caller enqueues it again. Its entry keeps the deadline
--     the sweep gave it (now + grace), so a caller that dies before the enqueue is retried.
-- These RQ keys (`rq:...`) are RQ's own and carry no Chime hash tag; RQ and Chime share one Redis
-- (the enqueue already writes both in one transaction).
--
-- KEYS[1]        outbox zset
-- KEYS[2..10]    the RQ queue lists of priorities 1..9 (`rq:queue:chime-p1` ...)
-- KEYS[9+2i]     for run i (1..n): its hash
-- KEYS[10+2i]    its RQ job hash (`rq:job:<run id>`)
-- ARGV[1]        now (ms)
-- ARGV[2]        grace (ms), > 0: the shortest wait before a waiting run is looked at again
-- ARGV[3]        longest (ms), >= grace: the longest such wait
-- ARGV[4]        depth, > 0: the most queue entries searched for one run
-- ARGV[4+i]      run i's id
-- Returns {outcome, priority, ...}: for each run in order, 'gone', 'waiting' or 'lost', and the
-- run's priority (1..9; 0 for a run with no hash).

local outbox_key = KEYS[1]
local now, grace, longest = tonumber(ARGV[1]), tonumber(ARGV[2]), tonumber(ARGV[3])
local depth = tonumber(ARGV[4])

local function waits(queue_key, run_id)
  return redis.call('LPOS', queue_key, run_id, 'MAXLEN', depth)
    or redis.call('LLEN', queue_key) > depth
end

local out = {}
for i = 1, #ARGV - 4 do
  local run_key, job_key = KEYS[9 + 2 * i], KEYS[10 + 2 * i]
  local run_id = ARGV[4 + i]
  local status, run_priority, enqueued_at =
    unpack(redis.call('HMGET', run_key, 'status', 'priority', 'enqueued_at'))
  local priority = math.floor(tonumber(run_priority or '5') or 5)
  if priority < 1 or priority > 9 then
    priority = 5
  end
  if status ~= 'queued' then
    redis.call('ZREM', outbox_key, run_id)
    out[#out + 1] = 'gone'
    out[#out + 1] = status and priority or 0
  elseif redis.call('EXISTS', job_key) == 1 and waits(KEYS[1 + priority], run_id) then
    local waited = now - (tonumber(enqueued_at or '') or now)
    local wait = math.min(longest, math.max(grace, waited))
    redis.call('ZADD', outbox_key, 'XX', now + wait, run_id)
    out[#out + 1] = 'waiting'
    out[#out + 1] = priority
  else
    out[#out + 1] = 'lost'
    out[#out + 1] = priority
  end
end
return out
