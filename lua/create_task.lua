-- Create a task: its hash, its 8 listing indexes and (when it has a next run) its place in due,
-- at once. With an idempotency key, a repeat returns the first task instead.
--
-- KEYS[1]  task hash
-- KEYS[2]  due zset
-- KEYS[3]  idempotency key (a string key; pass the task key again when there is none)
-- KEYS[4..11] the 8 listing indexes of (agent, status, kind)
-- ARGV[1]  task id
-- ARGV[2]  created_at (ms): the index score
-- ARGV[3]  next_run_at (ms) or '' (no place in due)
-- ARGV[4]  idempotency TTL (ms), '' when there is no idempotency key
-- ARGV[5]  wake channel
-- ARGV[6..] field, value pairs of the hash
-- Returns {'created', id} or {'existing', first_id}; {ERR_EXISTS, id} if the task id exists
-- already; {ERR_QUOTA, max_tasks} when the agent (field created_by) has reached its max_tasks
-- (includes/chime_agent_tasks_full.lua).

-- @include "includes/errors.lua"
-- @include "includes/chime_key_base.lua"
-- @include "includes/chime_set_due.lua"
-- @include "includes/chime_agent_tasks_full.lua"

local task_key, due_key, idem_key = KEYS[1], KEYS[2], KEYS[3]
local task_id, created_at, next_run_at, idem_ttl, wake = ARGV[1], ARGV[2], ARGV[3], ARGV[4], ARGV[5]

if idem_ttl ~= '' then
  local first = redis.call('GET', idem_key)
  if first then
    return {'existing', first}
  end
end
if redis.call('EXISTS', task_key) == 1 then
  return {ERR_EXISTS, task_id}
end

local agent_field = 'created_by'
local agent = nil
for i = 6, #ARGV - 1, 2 do
  if ARGV[i] == agent_field then
    agent = ARGV[i + 1]
  end
end
if agent then
  local full = chime_agent_tasks_full(chime_key_base(due_key, 'due'), agent)
  if full then
    return {ERR_QUOTA, tostring(full)}
  end
end
redis.call('HSET', task_key, unpack(ARGV, 6))
for i = 4, 11 do
  redis.call('ZADD', KEYS[i], created_at, task_id)
end
if next_run_at ~= '' then
  chime_set_due(due_key, wake, task_id, next_run_at)
end
if idem_ttl ~= '' then
  redis.call('SET', idem_key, task_id, 'PX', idem_ttl)
end
return {'created', task_id}
