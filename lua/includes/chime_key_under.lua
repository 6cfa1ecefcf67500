-- chime_key_under(base, stored) -> the key named `stored` rebuilt from `base` when it is a key
--   under that base, else nil. For a key name read from a record (a run's `event_key`) rather
--   than given in KEYS: the script touches it only when it carries the hash tag of its keys.

local function chime_key_under(base, stored)
  if stored and string.sub(stored, 1, #base) == base then
    return base .. string.sub(stored, #base + 1)
  end
  return nil
end
