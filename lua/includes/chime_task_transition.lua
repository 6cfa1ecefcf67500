-- The step every task transition (pause, resume, cancel, update, snooze, pause_for) starts
-- with. The caller decided the change from a snapshot of the task; it goes on only if the task
-- has not moved since and its status is one the change applies to.
--
-- chime_task_transition(t) -> task_id, nil when the change goes on; nil, {code, detail} when it
--   is refused (nothing written). t is a table:
--   task_key          the task hash
--   status, version   the caller's snapshot: status and sched_version
--   allowed           the statuses the change applies to (status -> true); nil: any
--   from, to          the 8 listing indexes of the snapshot and of the new status: the task
--                     moves from one to the other (chime_move_indexes, scored by created_at);
--                     nil: it stays where it is
--   Refusals, in this order: {ERR_NOT_FOUND, 'task'} no such task; {ERR_STALE,
--   '<status>:<sched_version>'} the snapshot is stale; {ERR_CONFLICT, status} the change does
--   not apply to the task's status.

-- @include "includes/errors.lua"
-- @include "includes/chime_move_indexes.lua"

local function chime_task_transition(t)
  local status, version, task_id, created_at = unpack(redis.call('HMGET', t.task_key, 'status',
    'sched_version', 'id', 'created_at'))
  if not status then
    return nil, {ERR_NOT_FOUND, 'task'}
  end
  if status ~= t.status or (version or '0') ~= t.version then
    return nil, {ERR_STALE, status .. ':' .. (version or '0')}
  end
  if t.allowed and not t.allowed[status] then
    return nil, {ERR_CONFLICT, status}
  end
  if t.from then
    chime_move_indexes(t.from, t.to, task_id, created_at)
  end
  return task_id, nil
end
