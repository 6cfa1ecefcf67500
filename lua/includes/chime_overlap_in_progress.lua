-- Overlap policy: what a new run of a task does while an earlier run of it is in progress
-- (pending, queued or running); see chime_create_run, chime_overlap_stop and
-- chime_overlap_release. Runs of a task are all in its runs zset (history trimming never drops
-- a run in progress), so the check reads at most CHIME_RUN_HISTORY run statuses, and only for
-- tasks whose policy is not `allow`.
--
-- chime_overlap_in_progress(runs_key, run_prefix) -> {{id, status, buffered}, ...} of every run
--   of the task in progress (buffered: '1' for a run that waits for an earlier one under
--   `buffer_one`, else '').

local function chime_overlap_in_progress(runs_key, run_prefix)
  local found = {}
  for _, id in ipairs(redis.call('ZRANGE', runs_key, 0, -1)) do
    local status, buffered = unpack(redis.call('HMGET', run_prefix .. id, 'status',
      'overlap_buffered'))
    if status == 'pending' or status == 'queued' or status == 'running' then
      found[#found + 1] = {id = id, status = status, buffered = buffered or ''}
    end
  end
  return found
end
