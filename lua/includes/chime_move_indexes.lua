-- chime_move_indexes(from, to, task_id, score): the task leaves the listing indexes `from` (the
--   8 of its old agent, status and kind) that are not in `to`, and is in each of `to` (the 8 of
--   the new ones) at `score` (its created_at).

local function chime_move_indexes(from, to, task_id, score)
  for i = 1, #from do
    if from[i] ~= to[i] then
      redis.call('ZREM', from[i], task_id)
    end
  end
  for i = 1, #to do
    redis.call('ZADD', to[i], score, task_id)
  end
end
