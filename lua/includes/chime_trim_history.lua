-- chime_trim_history(runs_key, run_key_prefix, cap): the task's runs zset keeps at most `cap`
--   runs: the oldest beyond it that are terminal (or gone) are deleted, and a run's reference to
--   its event record (`event_key`, a key under the base of run_key_prefix) is given up: the last
--   one deletes the record.

-- @include "includes/chime_key_base.lua"
-- @include "includes/chime_key_under.lua"

local CHIME_TERMINAL = {
  succeeded = true, failed = true, deduped = true, canceled = true, skipped = true
}

local function chime_trim_history(runs_key, run_key_prefix, cap)
  local excess = redis.call('ZCARD', runs_key) - cap
  if excess <= 0 then
    return
  end
  local base = chime_key_base(run_key_prefix, 'run:')
  local oldest = redis.call('ZRANGE', runs_key, 0, excess - 1)
  for _, id in ipairs(oldest) do
    local rkey = run_key_prefix .. id
    local status, stored_event_key = unpack(redis.call('HMGET', rkey, 'status', 'event_key'))
    if not status or CHIME_TERMINAL[status] then
      local event_key = chime_key_under(base, stored_event_key)
      if event_key and redis.call('HINCRBY', event_key, 'refs', -1) <= 0 then
        redis.call('DEL', event_key)
      end
      redis.call('DEL', rkey)
      redis.call('ZREM', runs_key, id)
    end
  end
end
