-- chime_claim_dedupe(run_key, dedupe_key, dedupe_window_ms, run_id, now) -> false when the run
--   ended `deduped`, true otherwise. dedupe_key: '' when the task has none. With one, SET NX PX
--   claims the window for this run; a window held by another run ends this run `deduped`,
--   naming the holder in `error`, and announces it on the channel named like the run's key
--   (message: 'deduped').

local function chime_claim_dedupe(run_key, dedupe_key, dedupe_window_ms, run_id, now)
  if dedupe_key ~= '' then
    local ok = redis.call('SET', dedupe_key, run_id, 'NX', 'PX', dedupe_window_ms)
    if not ok then
      local holder = redis.call('GET', dedupe_key)
      if holder and holder ~= run_id then
        redis.call('HSET', run_key, 'status', 'deduped', 'finished_at', now,
          'error', 'deduped: run ' .. holder .. ' holds the dedupe window')
        redis.call('HDEL', run_key, 'next_attempt_at')
        redis.call('PUBLISH', run_key, 'deduped')
        return false
      end
      if not holder then
        redis.call('SET', dedupe_key, run_id, 'PX', dedupe_window_ms)
      end
    end
  end
  return true
end
