-- Create a task: its hash, its 8 listing indexes and (when it has a next run) its place in due,
-- at once. With an idempotency key, a repeat returns the first task instead. The agent's checks
-- that need Redis (min_interval_seconds, the secrets the payload names) are made here too, in
-- the order the API reports them, so a create is one round trip. The keys of the agent (its
-- limit overrides, its secrets) and of the indexes are built from the key base of KEYS[2] and
-- the task's agent, status and kind (fields created_by, status, schedule_kind), as
-- app/store/keys.py builds them: three keys and no index name to send and encode per call.
--
-- KEYS[1]  task hash
-- KEYS[2]  due zset (its base: base..'limits:'..agent, base..'secrets:'..agent,
--          base..'idx:<agent|*>:<status|*>:<kind|*>')
-- KEYS[3]  idempotency key (a string key; pass the task key again when there is none)
-- ARGV[1]  task id
-- ARGV[2]  created_at (ms): the index score
-- ARGV[3]  next_run_at (ms) or '' (no place in due)
-- ARGV[4]  idempotency TTL (ms), '' when there is no idempotency key
-- ARGV[5]  wake channel
-- ARGV[6]  the default min_interval_seconds, '' when there is no interval to check (not a
--          cron or rrule task, or the caller checks nothing)
-- ARGV[7]  the min_interval_seconds the schedule was already checked against, '' for none
-- ARGV[8]  n: how many secret names follow
-- ARGV[9..8+n] secret names the payload refers to (each must be a field of the agent's
--          secrets hash)
-- ARGV[9+n] the hash's field, value pairs, as one MessagePack array of strings (one argument
--          rather than ~50 keeps the client's encoding of the call short); it must hold
--          created_by, status and schedule_kind
-- Returns {'created', id} or {'existing', first_id}; writes nothing and returns
-- {'check_interval', minimum} when the agent's min_interval_seconds (its override, else
-- ARGV[6]) is above 1 and differs from ARGV[7] (the caller checks the schedule against it and
-- calls again), {'missing_secret', name} for the first secret name the agent does not have,
-- {'created', id} again for the same call sent again,
-- {ERR_EXISTS, id} if the task id exists already (another task's), {ERR_QUOTA, max_tasks} when the agent has
-- reached its max_tasks (includes/chime_agent_tasks_full.lua).

-- @include "includes/errors.lua"
-- @include "includes/chime_key_base.lua"
-- @include "includes/chime_set_due.lua"
-- @include "includes/chime_agent_tasks_full.lua"

local task_key, due_key, idem_key = KEYS[1], KEYS[2], KEYS[3]
local task_id, created_at, next_run_at, idem_ttl, wake = ARGV[1], ARGV[2], ARGV[3], ARGV[4], ARGV[5]
local default_interval, checked_interval = ARGV[6], ARGV[7]
local n_secrets = tonumber(ARGV[8])
local fields = cmsgpack.unpack(ARGV[9 + n_secrets])
local named = {}
for i = 1, #fields - 1, 2 do
  named[fields[i]] = fields[i + 1]
end
local agent, status, kind = named['created_by'], named['status'], named['schedule_kind']
if not (agent and status and kind) then
  error('create_task: the fields must hold created_by, status and schedule_kind')
end
local base = chime_key_base(due_key, 'due')
local limits_key, secrets_key = base .. 'limits:' .. agent, base .. 'secrets:' .. agent

if default_interval ~= '' then
  -- an override that is not a whole number is ignored, as app.core.limits.Limits does
  local minimum = tonumber(default_interval)
  local raw = redis.call('HGET', limits_key, 'min_interval_seconds')
  local given = raw and string.match(raw, '^%s*([+-]?%d+)%s*$')
  if given then
    minimum = tonumber(given)
  end
  if minimum > 1 and string.format('%d', minimum) ~= checked_interval then
    return {'check_interval', string.format('%d', minimum)}
  end
end
for i = 9, 8 + n_secrets do
  if redis.call('HEXISTS', secrets_key, ARGV[i]) == 0 then
    return {'missing_secret', ARGV[i]}
  end
end
-- The same call sent again (a client retrying after its connection dropped before the reply)
-- finds the task it made: the same id, agent and created_at. It is answered as the first call
-- was, and writes nothing more.
if idem_ttl ~= '' then
  local first = redis.call('GET', idem_key)
  if first == task_id then
    return {'created', task_id}
  end
  if first then
    return {'existing', first}
  end
end
if redis.call('EXISTS', task_key) == 1 then
  local made_by, made_at = unpack(redis.call('HMGET', task_key, 'created_by', 'created_at'))
  if made_by == agent and made_at == named['created_at'] then
    return {'created', task_id}
  end
  return {ERR_EXISTS, task_id}
end

local full = chime_agent_tasks_full(base, agent)
if full then
  return {ERR_QUOTA, tostring(full)}
end
redis.call('HSET', task_key, unpack(fields))
-- the 8 indexes of keys.indexes(agent, status, kind): each of the three, or '*'
local index = base .. 'idx:'
for _, a in ipairs({agent, '*'}) do
  for _, s in ipairs({status, '*'}) do
    for _, k in ipairs({kind, '*'}) do
      redis.call('ZADD', index .. a .. ':' .. s .. ':' .. k, created_at, task_id)
    end
  end
end
if next_run_at ~= '' then
  chime_set_due(due_key, wake, task_id, next_run_at)
end
if idem_ttl ~= '' then
  redis.call('SET', idem_key, task_id, 'PX', idem_ttl)
end
return {'created', task_id}
