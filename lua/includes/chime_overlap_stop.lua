-- chime_overlap_stop(run_prefix, cancel_channel, delayed_key, outbox_key, runs, now, reason)
--   `cancel_running`: every run in progress (runs: chime_overlap_in_progress) ends `canceled`
--   (one not started: at once, out of the delayed set, the outbox and its agent's slot; a
--   concurrency slot it was handed lapses with its lease) or is stopped (running:
--   `cancel_requested`, announced on the cancel channel).

-- @include "includes/chime_key_base.lua"
-- @include "includes/chime_agent_gate.lua"
-- @include "includes/chime_agent_release.lua"

local function chime_overlap_stop(run_prefix, cancel_channel, delayed_key, outbox_key, runs, now,
                                  reason)
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
      local agent = redis.call('HGET', rkey, 'agent_id')
      if agent then
        chime_agent_release(chime_agent_gate(chime_key_base(outbox_key, 'outbox'), agent), r.id)
      end
      redis.call('PUBLISH', rkey, 'canceled')
    end
  end
end
