-- chime_overlap_release(task_key, run_prefix, outbox_key, now, grace_ms) -> {run_id, priority}
--   to enqueue, or {}. An earlier run ended: the run buffered behind it (`overlap_buffered` of
--   the task, overlap_policy `buffer_one`) goes on as any run about to be queued
--   (chime_queue_run; its dedupe window was taken when it was buffered): queued, or `pending`
--   at its agent's gate.

-- @include "includes/chime_queue_run.lua"

local function chime_overlap_release(task_key, run_prefix, outbox_key, now, grace_ms)
  local id = redis.call('HGET', task_key, 'overlap_buffered')
  if not id then
    return {}
  end
  redis.call('HDEL', task_key, 'overlap_buffered')
  local rkey = run_prefix .. id
  local status, priority = unpack(redis.call('HMGET', rkey, 'status', 'priority'))
  if status ~= 'pending' or redis.call('HEXISTS', rkey, 'overlap_buffered') == 0 then
    return {}
  end
  redis.call('HDEL', rkey, 'overlap_buffered')
  if chime_queue_run(rkey, outbox_key, '', 0, id, now, grace_ms) ~= 'queued' then
    return {}
  end
  return {id, priority or '5'}
end
