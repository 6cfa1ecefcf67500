-- Hand free `max_running` slots to the runs waiting for them, for agents that have runs
-- waiting (includes/chime_agent_fill.lua). A slot normally passes on when a run ends; this sweep
-- covers a slot freed by its lease lapsing (a run canceled while queued, a lost job), so a
-- waiting run never waits on an event that will not come. Agents whose line is empty leave
-- the set.
--
-- KEYS[1]  set of agent ids with runs waiting (base..'awaiting')
-- KEYS[2]  outbox zset
-- ARGV[1]  now (ms)
-- ARGV[2]  outbox grace (ms)
-- ARGV[3]  run key prefix: the base of KEYS[1] and 'run:' ('{chime}:run:'), else a script
--          error
-- ARGV[4]  agents looked at, at most
-- Returns {run_id, priority, ...} of the runs handed a slot (queued, in the outbox: enqueue
-- them).

-- @include "includes/chime_key_base.lua"
-- @include "includes/chime_run_prefix.lua"
-- @include "includes/chime_agent_gate.lua"
-- @include "includes/chime_agent_fill.lua"

local awaiting, outbox_key = KEYS[1], KEYS[2]
local now, grace_ms, batch = tonumber(ARGV[1]), tonumber(ARGV[2]), tonumber(ARGV[4])
local base = chime_key_base(awaiting, 'awaiting')
local run_prefix = chime_run_prefix(base, ARGV[3])

local out = {}
for _, agent in ipairs(redis.call('SRANDMEMBER', awaiting, batch)) do
  local g = chime_agent_gate(base, agent)
  for _, v in ipairs(chime_agent_fill(g, now, outbox_key, grace_ms, run_prefix)) do
    out[#out + 1] = v
  end
  if redis.call('LLEN', g.waiting) == 0 then
    redis.call('SREM', awaiting, agent)
  end
end
return out
