-- The key base (included, not called on its own): '{chime}:' from a key the script was given,
-- for the scripts that build an agent's keys (app/store/keys.py builds the same names).
--
-- chime_key_base(key, suffix) -> the base of `key`, whose name after the base is `suffix`;
--   raises a script error when `key` does not end with `suffix`.

local function chime_key_base(key, suffix)
  local base = string.sub(key, 1, #key - #suffix)
  if string.sub(key, #key - #suffix + 1) ~= suffix then
    error('key ' .. key .. ' does not end with ' .. suffix)
  end
  return base
end
