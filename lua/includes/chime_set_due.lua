-- chime_set_due(due_key, wake_channel, member, ms): the member (a task in due, a run in
--   delayed) is in the schedule zset at ms; published on the wake channel when it became the
--   earliest.

local function chime_set_due(due_key, wake_channel, member, ms)
  redis.call('ZADD', due_key, ms, member)
  local first = redis.call('ZRANGE', due_key, 0, 0)
  if first[1] == member then
    redis.call('PUBLISH', wake_channel, ms)
  end
end
