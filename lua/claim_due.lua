-- Claim a bounded batch of due members: move them from a schedule sorted set (due tasks, or
-- delayed runs) into its claims sorted set, scored by lease expiry. Claims whose lease lapsed
-- (their scheduler died or stalled) are taken over first, in the same call. The lease a member
-- gets is the claimer's token: no two claims of one member ever get the same score, so a
-- commit can tell its own claim from one that was taken over.
--
-- A call is named by a unique id: its reply is kept under that name for the lease, so the same
-- call sent again (the client retries a command whose reply a dropped connection lost) gets the
-- claims it made back instead of an empty batch that would leave them waiting out their lease.
--
-- KEYS[1]  schedule zset: due (task ids by next_run_at) or delayed (run ids by release time)
-- KEYS[2]  claims zset of that schedule (claims or delayed:claims), by lease expiry (ms)
-- KEYS[3]  this call's reply list (`claimcall:<call id>`), kept for the lease when not empty
-- ARGV[1]  now (ms)
-- ARGV[2]  lease (ms), > 0
-- ARGV[3]  batch size: at most this many members are claimed, > 0
-- Returns {member, token, member, token, ...}: the claimed members, each once, with their lease
-- expiry (the token to present on commit or release); {} when nothing is due; the same reply
-- again when this call was made before. Nothing can be refused: the caller passes a positive
-- lease and batch size.

local due_key, claims_key, call_key = KEYS[1], KEYS[2], KEYS[3]
local now, lease, limit = tonumber(ARGV[1]), tonumber(ARGV[2]), tonumber(ARGV[3])

local made = redis.call('LRANGE', call_key, 0, -1)
if #made > 0 then
  for i = 2, #made, 2 do
    made[i] = tonumber(made[i])
  end
  return made
end

local CHUNK = 1000
local out = {}

-- lapsed claims first: they are the oldest work
local lapsed = redis.call('ZRANGEBYSCORE', claims_key, '-inf', now, 'LIMIT', 0, limit)
local expiry = now + lease
local taken = {}
if #lapsed > 0 then
  local args = {}
  for _, member in ipairs(lapsed) do
    -- a lapsed lease is <= now < expiry: the new token differs from the old one
    args[#args + 1] = expiry
    args[#args + 1] = member
    taken[member] = true
    out[#out + 1] = member
    out[#out + 1] = expiry
    if #args >= 2 * CHUNK then
      redis.call('ZADD', claims_key, unpack(args))
      args = {}
    end
  end
  if #args > 0 then
    redis.call('ZADD', claims_key, unpack(args))
  end
end

local function reply()
  for first = 1, #out, 2 * CHUNK do
    redis.call('RPUSH', call_key, unpack(out, first, math.min(first + 2 * CHUNK - 1, #out)))
  end
  if #out > 0 then
    redis.call('PEXPIRE', call_key, lease)
  end
  return out
end

local room = limit - #lapsed
if room <= 0 then
  return reply()
end
local due = redis.call('ZRANGEBYSCORE', due_key, '-inf', now, 'LIMIT', 0, room)
for first = 1, #due, CHUNK do
  local last = math.min(first + CHUNK - 1, #due)
  local members = {unpack(due, first, last)}
  redis.call('ZREM', due_key, unpack(members))
  -- a member can still hold a live claim (a pause and resume raced with it): the new token
  -- must differ from that claim's
  local held = redis.call('ZMSCORE', claims_key, unpack(members))
  local args = {}
  for i, member in ipairs(members) do
    if not taken[member] then
      local token = expiry
      if held[i] and tonumber(held[i]) == token then
        token = token + 1
      end
      args[#args + 1] = token
      args[#args + 1] = member
      out[#out + 1] = member
      out[#out + 1] = token
    end
  end
  if #args > 0 then
    redis.call('ZADD', claims_key, unpack(args))
  end
end
return reply()
