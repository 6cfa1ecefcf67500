-- chime_key_base(key, suffix) -> the key base ('{chime}:') of `key`, a key the script was given
--   in KEYS whose name after the base is `suffix`; raises a script error when `key` does not end
--   with `suffix`. Every key a script builds starts with a base taken this way, so it carries
--   the hash tag of the script's KEYS (app/store/keys.py).

local function chime_key_base(key, suffix)
  if string.sub(key, #key - #suffix + 1) ~= suffix then
    error('key ' .. key .. ' does not end with ' .. suffix)
  end
  return string.sub(key, 1, #key - #suffix)
end
