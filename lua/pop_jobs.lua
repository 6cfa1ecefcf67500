-- Take up to N job ids off RQ's queues, highest priority first: the ids of the first queue,
-- then of the next one, until N are taken or every queue is empty. A worker asks only for as
-- many as it has free slots, so the jobs it cannot start stay queued for other workers.
-- These keys are RQ's own lists (`rq:queue:chime-p1` ...), named by RQ, so they carry no Chime
-- hash tag; RQ keeps all its keys on one Redis (its BLPOP across queues needs that as well).
--
-- KEYS[1..n]  the RQ queue lists, highest priority first
-- ARGV[1]     N: the most ids to take (>= 1)
-- Returns {queue_index, job_id, queue_index, job_id, ...} in the order taken, queue_index
-- being the 1-based position of the id's queue in KEYS; {} when every queue is empty.

local wanted = tonumber(ARGV[1])

local out = {}
for q = 1, #KEYS do
  if wanted <= 0 then
    break
  end
  local ids = redis.call('LPOP', KEYS[q], wanted)
  if ids then
    for _, id in ipairs(ids) do
      out[#out + 1] = q
      out[#out + 1] = id
    end
    wanted = wanted - #ids
  end
end
return out
