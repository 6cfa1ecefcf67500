-- The error codes of every script (constants only, no function). A script that refuses
-- returns {code, detail} before writing anything. These names and numbers are
-- app.store.scripts.ErrorCode; a test keeps the two equal.
--
-- ERR_NOT_FOUND  no such task or run (detail: which)
-- ERR_CONFLICT   the change is not allowed in the record's status (detail: the status)
-- ERR_STALE      the caller's snapshot is out of date: read again and retry (detail: what moved)
-- ERR_EXISTS     the record exists already (detail: its id)
-- ERR_LOST       the caller's claim is no longer its own (taken over after its lease)
-- ERR_QUOTA      a limit of the agent is reached (detail: the limit's value)

local ERR_NOT_FOUND = -1
local ERR_CONFLICT = -2
local ERR_STALE = -3
local ERR_EXISTS = -4
local ERR_LOST = -5
local ERR_QUOTA = -6
