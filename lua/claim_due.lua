-- Claim a bounded batch of due members: move them from a schedule sorted set (due tasks, or
-- delayed runs) into its claims sorted set, scored by lease expiry. Claims whose lease lapsed
-- (their scheduler died or stalled) are taken over first, in the same call. The lease a member
-- gets is the claimer's token: no two claims of one member ever get the same score, so a
-- commit can tell its own claim from one that was taken over.
--
-- KEYS[1]  schedule zset: due (task ids by next_run_at) or delayed (run ids by release time)
-- KEYS[2]  claims zset of that schedule (claims or delayed:claims), by lease expiry (ms)
-- ARGV[1]  now (ms)
-- ARGV[2]  lease (ms), > 0
-- ARGV[3]  batch size: at most this many members are claimed, > 0
-- Returns {member, token, member, token, ...}: the claimed members, each once, with their lease
-- expiry (the token to present on commit or release); {} when nothing is due. Nothing can be
-- refused: the caller passes a positive lease and batch size.

local due_key, claims_key = KEYS[1], KEYS[2]
local now, lease, limit = tonumber(ARGV[1]), tonumber(ARGV[2]), tonumber(ARGV[3])

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

local room = limit - #lapsed
if room <= 0 then
  return out
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
return out
