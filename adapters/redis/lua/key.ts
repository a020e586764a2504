/**
 * The key script: one operation on one plain key (generic store keys at `prefix:kv:<key>`, the
 * queue index at `prefix:queues`).
 *
 *   KEYS: the key
 *   ARGV: op, then its arguments:
 *     get                     → ~value | nil
 *     set value ttlMs|""      → 1
 *     nx value ttlMs|""       → nil (set) | ~value already there
 *     cad expected            → 1 (deleted) | 0
 *     cas 1|0 expected value ttlMs|""
 *                             → 1 (set: the value was `expected`, or absent when 0) | 0
 *     del                     → 1
 *     incr by ttlMs|""        → ~newValue (the TTL is set on creation; a non-number is an error)
 *     sadd member…            → how many were added
 *     smembers                → { ~member, … }
 *     ping                    → 1
 *     mark                    → 1 (arms a wake-up marker: ZADD key 0 "1")
 *
 * @module
 */
import type { Script } from "./queue.ts";

const KEY_LUA = `
local key, op = KEYS[1], ARGV[1]
local function setWithTtl(value, ttl)
  if ttl ~= '' then redis.call('SET', key, value, 'PX', ttl) else redis.call('SET', key, value) end
end
if op == 'get' then
  local v = redis.call('GET', key)
  return v and ('~' .. v) or false
elseif op == 'set' then
  setWithTtl(ARGV[2], ARGV[3])
  return 1
elseif op == 'nx' then
  local v = redis.call('GET', key)
  if v then return '~' .. v end
  setWithTtl(ARGV[2], ARGV[3])
  return false
elseif op == 'cad' then
  if redis.call('GET', key) == ARGV[2] then redis.call('DEL', key) return 1 end
  return 0
elseif op == 'cas' then
  local v = redis.call('GET', key)
  if (ARGV[2] == '1' and v ~= ARGV[3]) or (ARGV[2] == '0' and v) then return 0 end
  setWithTtl(ARGV[4], ARGV[5])
  return 1
elseif op == 'del' then
  redis.call('DEL', key)
  return 1
elseif op == 'incr' then
  local v = redis.call('GET', key)
  if v and not tonumber(v) then return redis.error_reply('celeriac: value at key is not a number') end
  if not v and ARGV[3] ~= '' then redis.call('SET', key, '0', 'PX', ARGV[3]) end
  return '~' .. redis.call('INCRBYFLOAT', key, ARGV[2])
elseif op == 'sadd' then
  return redis.call('SADD', key, unpack(ARGV, 2))
elseif op == 'smembers' then
  local m = redis.call('SMEMBERS', key)
  for i = 1, #m do m[i] = '~' .. m[i] end
  return m
elseif op == 'ping' then
  return 1
elseif op == 'mark' then
  redis.call('ZADD', key, 0, '1')
  return 1
end
return redis.error_reply('celeriac: unknown key op ' .. tostring(op))
`;

/** Runs one operation on one key: get, set, nx, cad, cas, del, incr, sadd, smembers, ping. */
export const KEY_SCRIPT: Script = { name: "celeriac.key", source: KEY_LUA };
