-- chime_dedupe_key(base, agent, dedupe) -> the key of a task's dedupe window,
--   base..'dedupe:'..agent..':'..dedupe (Keys.dedupe in app/store/keys.py), from the task's
--   own `dedupe_key` and agent as the script reads them; '' when the task has no dedupe_key.
--   Built here, not given in KEYS, so a script always uses the dedupe_key the task has now.

local function chime_dedupe_key(base, agent, dedupe)
  if not dedupe or dedupe == '' or not agent then
    return ''
  end
  return base .. 'dedupe:' .. agent .. ':' .. dedupe
end
