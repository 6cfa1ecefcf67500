-- Keep the records of a run's on_failure steps (payload.on_failure), run once after its last
-- attempt failed. A run no longer in the history (trimmed meanwhile) is left gone: nothing is
-- written, so no partial run hash appears.
--
-- KEYS[1]  run hash
-- ARGV[1]  the steps' records (JSON list)
-- Returns 1 when written, 0 when the run is gone.

local run_key = KEYS[1]
local records = ARGV[1]

if redis.call('EXISTS', run_key) == 0 then
  return 0
end
redis.call('HSET', run_key, 'on_failure_steps', records)
return 1
