/**
 * The schedules script: the stored schedules of `app.schedules`, one hash (one key, so one slot
 * on Redis Cluster) of JSON text by schedule id, and a revision token in the field `{rev}` (a
 * schedule id never holds braces) that each change replaces, so a reader checks for changes with
 * one HGET.
 *
 *   KEYS: the hash
 *   ARGV: op, then its arguments:
 *     put id json revision  → 1
 *     remove id revision    → 1 (removed; the revision is set) | 0 (there was none)
 *     list                  → { ~id, ~json, … } (the revision field left out)
 *     revision              → ~revision | nil (never changed)
 *
 * @module
 */
import type { Script } from "./queue.ts";

/** The hash field that holds the revision token. */
export const REVISION_FIELD = "{rev}";

const SCHEDULES_LUA = `
local key, op = KEYS[1], ARGV[1]
if op == 'put' then
  redis.call('HSET', key, ARGV[2], ARGV[3], '${REVISION_FIELD}', ARGV[4])
  return 1
elseif op == 'remove' then
  if redis.call('HDEL', key, ARGV[2]) == 0 then return 0 end
  redis.call('HSET', key, '${REVISION_FIELD}', ARGV[3])
  return 1
elseif op == 'list' then
  local all = redis.call('HGETALL', key)
  local out = {}
  for i = 1, #all, 2 do
    if all[i] ~= '${REVISION_FIELD}' then
      out[#out + 1] = '~' .. all[i]
      out[#out + 1] = '~' .. all[i + 1]
    end
  end
  return out
elseif op == 'revision' then
  local v = redis.call('HGET', key, '${REVISION_FIELD}')
  return v and ('~' .. v) or false
end
return redis.error_reply('celeriac: unknown schedules op ' .. tostring(op))
`;

/** Runs one operation on the stored schedules' hash: put, remove, list, revision. */
export const SCHEDULES_SCRIPT: Script = { name: "celeriac.schedules", source: SCHEDULES_LUA };
