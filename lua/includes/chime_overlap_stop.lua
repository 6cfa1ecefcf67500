-- chime_overlap_stop(run_prefix, cancel_channel, delayed_key, outbox_key, task_key, runs, now,
--                    reason)
--   `cancel_running`: every run in progress (runs: chime_overlap_in_progress) ends `canceled`
--   or is stopped (running: `cancel_requested`, announced on the cancel channel). One not
--   started ends at once, out of the delayed set and the outbox, and the slots it held go to
--   the next waiting runs at once: its agent's slot (chime_agent_free) and a concurrency slot
--   it was handed (chime_sem_fill, keys of the task's concurrency_key under the base of
--   outbox_key). Runs handed a slot are due in the outbox now, and the scheduler is woken
--   (base..'wake') to enqueue them.

-- @include "includes/chime_key_base.lua"
-- @include "includes/chime_agent_gate.lua"
-- @include "includes/chime_agent_free.lua"
-- @include "includes/chime_sem_fill.lua"

local function chime_overlap_stop(run_prefix, cancel_channel, delayed_key, outbox_key, task_key,
                                  runs, now, reason)
  local unstarted = {}
  for _, r in ipairs(runs) do
    local rkey = run_prefix .. r.id
    if r.status == 'running' then
      redis.call('HSET', rkey, 'cancel_requested', now)
      redis.call('PUBLISH', cancel_channel, r.id)
    else
      redis.call('HSET', rkey, 'status', 'canceled', 'finished_at', now, 'error', reason)
      redis.call('HDEL', rkey, 'next_attempt_at', 'overlap_buffered')
      redis.call('ZREM', delayed_key, r.id)
      redis.call('ZREM', outbox_key, r.id)
      redis.call('PUBLISH', rkey, 'canceled')
      unstarted[#unstarted + 1] = r.id
    end
  end
  local agent, ckey, climit = unpack(redis.call('HMGET', task_key, 'created_by',
    'concurrency_key', 'concurrency_limit'))
  if #unstarted == 0 or not agent then
    return
  end
  local base = chime_key_base(outbox_key, 'outbox')
  local g = chime_agent_gate(base, agent)
  local handed = #chime_agent_free(g, unstarted, now, outbox_key, 0, run_prefix)
  if ckey and ckey ~= '' then
    local sem_key = base .. 'sem:' .. agent .. ':' .. ckey
    local fifo_key = base .. 'semq:' .. agent .. ':' .. ckey
    local freed = 0
    for _, id in ipairs(unstarted) do
      freed = freed + redis.call('ZREM', sem_key, id)
      redis.call('LREM', fifo_key, 0, id)
    end
    if freed > 0 then
      handed = handed + #chime_sem_fill(sem_key, fifo_key, tonumber(climit or '1'), now,
        g.lease_ms, outbox_key, 0, run_prefix)
    end
  end
  if handed > 0 then
    redis.call('PUBLISH', base .. 'wake', now)
  end
end
