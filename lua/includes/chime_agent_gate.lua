-- The per-agent gate: the agent's `max_running` slots and its `max_runs_per_minute` window,
-- held across every worker and scheduler. A slot is taken when a run is queued (so an agent's
-- excess waits `pending` here instead of filling the RQ queues ahead of other agents) and
-- checked again when it starts; it is held, under a lease renewed with the run's heartbeat,
-- until the attempt ends. A holder whose lease lapsed (its worker died, its job was lost) is
-- dropped by the next fill. The functions that act on the gate are chime_agent_window,
-- chime_agent_admit, chime_agent_delay, chime_agent_release, chime_agent_fill and
-- chime_agent_free (one include each).
--
-- chime_agent_gate(base, agent) -> g {base, agent, slots, waiting, starts, max_running,
--   per_minute, lease_ms}: the agent's keys, built from the key base (chime_key_base) as
--   app/store/keys.py builds them (aslots:, await:, astarts:), and its limits: the agent's
--   overrides (base..'limits:'..agent), else the defaults the processes published
--   (base..'limits'), else CHIME_AGENT_DEFAULTS.

local CHIME_AGENT_DEFAULTS = {max_running = 100, max_runs_per_minute = 6000, lease_ms = 60000}

local function chime_agent_gate(base, agent)
  local own_running, own_per_minute = unpack(redis.call('HMGET', base .. 'limits:' .. agent,
    'max_running', 'max_runs_per_minute'))
  local dflt_running, dflt_per_minute, dflt_lease = unpack(redis.call('HMGET',
    base .. 'limits', 'max_running', 'max_runs_per_minute', 'lease_ms'))
  return {
    base = base,
    agent = agent,
    slots = base .. 'aslots:' .. agent,
    waiting = base .. 'await:' .. agent,
    starts = base .. 'astarts:' .. agent,
    max_running = tonumber(own_running or dflt_running or CHIME_AGENT_DEFAULTS.max_running),
    per_minute = tonumber(own_per_minute or dflt_per_minute
      or CHIME_AGENT_DEFAULTS.max_runs_per_minute),
    lease_ms = tonumber(dflt_lease or CHIME_AGENT_DEFAULTS.lease_ms),
  }
end
