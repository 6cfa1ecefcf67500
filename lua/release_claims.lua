-- Give claims back without acting on them: a scheduler that stops (SIGTERM) or finds a claimed
-- member not due after all returns it to its schedule at the time its record holds now, so a
-- change that raced with the claim (a snooze, a retry time) is kept. Only claims still held
-- under the caller's token are released; a record that no longer qualifies (a task not
-- active, a run not pending, a record gone) just loses the claim.
--
-- KEYS[1]  schedule zset: due (tasks) or delayed (runs)
-- KEYS[2]  its claims zset: claims or delayed:claims
-- KEYS[3..] the record hash of each member in ARGV[4..], in the same order (task or run hash)
-- ARGV[1]  wake channel: published when a member becomes the earliest of the schedule
-- ARGV[2]  the record field holding the member's time: 'next_run_at' or 'next_attempt_at'
-- ARGV[3]  the status a record needs to go back: 'active' (tasks) or 'pending' (runs)
-- ARGV[4..] member, token pairs
-- Returns {released, dropped}: claims given back to the schedule, and claims just dropped;
-- members whose claim is not the caller's any more are left alone and counted in neither.

-- @include "includes/chime_set_due.lua"

local schedule_key, claims_key = KEYS[1], KEYS[2]
local wake, time_field, wanted_status = ARGV[1], ARGV[2], ARGV[3]

local released, dropped = 0, 0
for i = 4, #ARGV, 2 do
  local member, token = ARGV[i], tonumber(ARGV[i + 1])
  local record_key = KEYS[3 + (i - 4) / 2]
  local held = redis.call('ZSCORE', claims_key, member)
  if held and tonumber(held) == token then
    redis.call('ZREM', claims_key, member)
    local status, at = unpack(redis.call('HMGET', record_key, 'status', time_field))
    if status == wanted_status and at then
      chime_set_due(schedule_key, wake, member, at)
      released = released + 1
    else
      dropped = dropped + 1
    end
  end
end
return {released, dropped}
