-- Queue a run (included, not called on their own): the moment a run is about to go to RQ.
--
-- chime_queue_run(run_key, outbox_key, dedupe_key, dedupe_window_ms, run_id, now, grace_ms)
--   dedupe_key: '' when the task has none. With one, SET NX PX claims the window for this run;
--   a window held by another run ends this run `deduped`, naming the holder in `error`, and
--   announces it on the channel named like the run's key (message: 'deduped').
--   Otherwise the run becomes `queued` and enters the outbox, scored by the time after which
--   the scheduler enqueues it again if nobody confirmed it on RQ.
--   Returns 'queued' or 'deduped'.

local function chime_queue_run(run_key, outbox_key, dedupe_key, dedupe_window_ms, run_id, now,
                               grace_ms)
  if dedupe_key ~= '' then
    local ok = redis.call('SET', dedupe_key, run_id, 'NX', 'PX', dedupe_window_ms)
    if not ok then
      local holder = redis.call('GET', dedupe_key)
      if holder and holder ~= run_id then
        redis.call('HSET', run_key, 'status', 'deduped', 'finished_at', now,
          'error', 'deduped: run ' .. holder .. ' holds the dedupe window')
        redis.call('HDEL', run_key, 'next_attempt_at')
        redis.call('PUBLISH', run_key, 'deduped')
        return 'deduped'
      end
      if not holder then
        redis.call('SET', dedupe_key, run_id, 'PX', dedupe_window_ms)
      end
    end
  end
  redis.call('HSET', run_key, 'status', 'queued', 'enqueued_at', now)
  redis.call('HDEL', run_key, 'next_attempt_at')
  redis.call('ZADD', outbox_key, now + grace_ms, run_id)
  return 'queued'
end
