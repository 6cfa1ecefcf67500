-- Shared pieces of the task scripts (included, not called on their own).
--
-- chime_check_snapshot(task_key, expected_status, expected_version)
--   The caller decided the change from a snapshot of the task; refuse if the task moved since.
--   Returns nil when the snapshot holds, else an error reply {code, detail}:
--   {ERR_NOT_FOUND, "task"} no such task; {ERR_STALE, "<status>:<version>"} the snapshot is stale.
-- chime_reindex(old_keys, new_keys, task_id, score)
--   Move the task from the 8 listing indexes of its old (agent, status, kind) to the new ones.
-- chime_move_indexes(task_key, task_id)
--   chime_reindex from KEYS[3..10] (the indexes of the snapshot) to KEYS[11..18] (the new
--   ones): the KEYS layout every task transition script shares.
-- chime_set_due(due_key, wake_channel, task_id, ms)
--   Put the task in `due` at ms; publish on the wake channel when it became the earliest.

-- @include "includes/errors.lua"

local function chime_check_snapshot(task_key, expected_status, expected_version)
  local cur = redis.call('HMGET', task_key, 'status', 'sched_version')
  if not cur[1] then
    return {ERR_NOT_FOUND, 'task'}
  end
  if cur[1] ~= expected_status or (cur[2] or '0') ~= expected_version then
    return {ERR_STALE, cur[1] .. ':' .. (cur[2] or '0')}
  end
  return nil
end

local function chime_reindex(old_keys, new_keys, task_id, score)
  for i = 1, #old_keys do
    if old_keys[i] ~= new_keys[i] then
      redis.call('ZREM', old_keys[i], task_id)
    end
  end
  for i = 1, #new_keys do
    redis.call('ZADD', new_keys[i], score, task_id)
  end
end

local function chime_move_indexes(task_key, task_id)
  local old_idx, new_idx = {}, {}
  for i = 3, 10 do
    old_idx[#old_idx + 1] = KEYS[i]
    new_idx[#new_idx + 1] = KEYS[i + 8]
  end
  chime_reindex(old_idx, new_idx, task_id, redis.call('HGET', task_key, 'created_at'))
end

local function chime_set_due(due_key, wake_channel, task_id, ms)
  redis.call('ZADD', due_key, ms, task_id)
  local first = redis.call('ZRANGE', due_key, 0, 0)
  if first[1] == task_id then
    redis.call('PUBLISH', wake_channel, ms)
  end
end
