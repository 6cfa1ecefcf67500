-- chime_run_prefix(base, given) -> base..'run:', the prefix of run keys (a run key is the prefix
--   and the run id). `given` is the run key prefix the caller passed in ARGV; a script error
--   when it is another one, so no run key is built outside the base of the script's KEYS.
--   Called before the script writes anything.

local function chime_run_prefix(base, given)
  local prefix = base .. 'run:'
  if given ~= prefix then
    error('run key prefix ' .. tostring(given) .. ' is not ' .. prefix)
  end
  return prefix
end
