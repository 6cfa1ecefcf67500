-- Concurrency slots: a semaphore is a zset of holder run ids scored by lease expiry, with a FIFO
-- list of runs waiting for a slot (chime_sem_park).
--
-- chime_sem_fill(sem_key, fifo_key, limit, now, lease_ms, outbox_key, grace_ms, run_prefix)
--   Drops holders whose lease lapsed (a dead worker), then hands free slots to waiting runs in
--   FIFO order: each becomes a holder, `queued` (flag `sem_handover`), and enters the outbox
--   so it reaches RQ even if the caller dies before enqueueing it. Waiting ids whose run is no
--   longer `pending` (canceled meanwhile) are dropped (chime_fifo_fill). Returns
--   {run_id, priority, ...} of the runs handed a slot.

-- @include "includes/chime_fifo_fill.lua"

local function chime_sem_fill(sem_key, fifo_key, limit, now, lease_ms, outbox_key, grace_ms,
                              run_prefix)
  return chime_fifo_fill(sem_key, fifo_key, limit, now, lease_ms, outbox_key, grace_ms,
    run_prefix, {'sem_handover', '1'}, {})
end
