-- Change a task's fields (PUT /tasks/{id}): the hash, its listing indexes and its place in due.
--
-- KEYS[1]  task hash
-- KEYS[2]  due zset
-- KEYS[3..10]  the 8 listing indexes the task is in now (from the caller's snapshot)
-- KEYS[11..18] the 8 listing indexes it belongs in after the change
-- ARGV[1]  now (ms): updated_at
-- ARGV[2]  expected status (snapshot)
-- ARGV[3]  expected sched_version (snapshot)
-- ARGV[4]  due: 'keep' (schedule untouched), 'clear' (leave due) or a next_run_at in ms
-- ARGV[5]  wake channel
-- ARGV[6]  new status
-- ARGV[7]  fields to delete, comma separated ('' for none)
-- ARGV[8..] field, value pairs to set
-- Returns {'ok'}; {ERR_NOT_FOUND, 'task'} no such task; {ERR_CONFLICT, status} canceled;
-- {ERR_STALE, ...} stale snapshot.

-- @include "includes/chime_task_transition.lua"
-- @include "includes/chime_set_due.lua"

local task_key, due_key = KEYS[1], KEYS[2]
local now, expected_status, expected_version = ARGV[1], ARGV[2], ARGV[3]
local due, wake, new_status, deletes = ARGV[4], ARGV[5], ARGV[6], ARGV[7]

-- every status but canceled
local task_id, err = chime_task_transition({
  task_key = task_key, status = expected_status, version = expected_version,
  allowed = {active = true, paused = true, completed = true},
  from = {unpack(KEYS, 3, 10)}, to = {unpack(KEYS, 11, 18)}
})
if err then
  return err
end

local fields = {'updated_at', now, 'status', new_status}
for i = 8, #ARGV do
  fields[#fields + 1] = ARGV[i]
end
redis.call('HSET', task_key, unpack(fields))
if deletes ~= '' then
  for name in string.gmatch(deletes, '[^,]+') do
    redis.call('HDEL', task_key, name)
  end
end
if due ~= 'keep' then
  redis.call('HINCRBY', task_key, 'sched_version', 1)
  if due == 'clear' then
    redis.call('ZREM', due_key, task_id)
    redis.call('HDEL', task_key, 'next_run_at')
  else
    redis.call('HSET', task_key, 'next_run_at', due)
    chime_set_due(due_key, wake, task_id, due)
  end
end
return {'ok'}
