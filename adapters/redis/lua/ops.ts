/**
 * The ops script: the worker registry, control messages and task statistics of one backend, all
 * under the hash tag `{prefix:ops}` (one slot). Expiry uses the server's clock.
 *
 *   KEYS: 1 the registry ZSET (worker id → expires at, epoch ms), 2 the totals HASH
 *   Other keys are the tag's base followed by `:wi:<id>` (a worker's report, JSON, expiring),
 *   `:wc:<id>` (its control LIST) and `:m:<minute>` (a minute's statistics HASH); a statistics
 *   field is the JSON `[task, queue, name]`.
 *   ARGV: op, then its arguments:
 *     report id|"" infoJson|"" ttlMs statsTtlMs n minute₁ field₁ value₁ …
 *                       → { ~command JSON, … } (the worker's waiting commands, taken)
 *     forget id         → 1
 *     workers           → { ~info JSON, … } (expired ones are dropped first)
 *     control id json   → 1 (queued) | 0 (no such live worker)
 *     stats fromMinute  → { ~minute, ~field, value, …, then "~", then ~field, value, … (totals) }
 *
 * @module
 */
import type { Script } from "./queue.ts";

const OPS_LUA = `
local registry, totals, op = KEYS[1], KEYS[2], ARGV[1]
local base = string.sub(registry, 1, -9)
local t = redis.call('TIME')
local nowMs = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local function info(id) return base .. ':wi:' .. id end
local function commands(id) return base .. ':wc:' .. id end
local function minuteKey(m) return base .. ':m:' .. m end
local function prune()
  local gone = redis.call('ZRANGEBYSCORE', registry, '-inf', nowMs)
  for i = 1, #gone do redis.call('DEL', info(gone[i]), commands(gone[i])) end
  if #gone > 0 then redis.call('ZREMRANGEBYSCORE', registry, '-inf', nowMs) end
end
if op == 'report' then
  local id, json, ttl, statsTtl, n = ARGV[2], ARGV[3], tonumber(ARGV[4]), ARGV[5], tonumber(ARGV[6])
  local touched = {}
  for i = 0, n - 1 do
    local minute, field, value = ARGV[7 + 3 * i], ARGV[8 + 3 * i], tonumber(ARGV[9 + 3 * i])
    local key = minuteKey(minute)
    redis.call('HINCRBY', key, field, value)
    redis.call('HINCRBY', totals, field, value)
    touched[key] = true
  end
  for key in pairs(touched) do redis.call('PEXPIRE', key, statsTtl) end
  if id == '' then return {} end
  redis.call('ZADD', registry, nowMs + ttl, id)
  redis.call('SET', info(id), json, 'PX', ttl)
  local list = redis.call('LRANGE', commands(id), 0, -1)
  if #list > 0 then redis.call('DEL', commands(id)) end
  for i = 1, #list do list[i] = '~' .. list[i] end
  return list
elseif op == 'forget' then
  redis.call('ZREM', registry, ARGV[2])
  redis.call('DEL', info(ARGV[2]), commands(ARGV[2]))
  return 1
elseif op == 'workers' then
  prune()
  local ids = redis.call('ZRANGE', registry, 0, -1)
  local out = {}
  for i = 1, #ids do
    local v = redis.call('GET', info(ids[i]))
    if v then out[#out + 1] = '~' .. v end
  end
  return out
elseif op == 'control' then
  local expires = tonumber(redis.call('ZSCORE', registry, ARGV[2]))
  if not expires or expires <= nowMs then return 0 end
  redis.call('RPUSH', commands(ARGV[2]), ARGV[3])
  redis.call('PEXPIREAT', commands(ARGV[2]), math.floor(expires))
  return 1
elseif op == 'stats' then
  local out = {}
  local last = math.floor(nowMs / 60000)
  for m = math.max(tonumber(ARGV[2]), last - 1440), last do
    local h = redis.call('HGETALL', minuteKey(m))
    for i = 1, #h, 2 do
      out[#out + 1] = '~' .. m; out[#out + 1] = '~' .. h[i]; out[#out + 1] = tonumber(h[i + 1])
    end
  end
  out[#out + 1] = '~'
  local h = redis.call('HGETALL', totals)
  for i = 1, #h, 2 do out[#out + 1] = '~' .. h[i]; out[#out + 1] = tonumber(h[i + 1]) end
  return out
end
return redis.error_reply('celeriac: unknown ops op ' .. tostring(op))
`;

/** Runs one operators' operation: report, forget, workers, control, stats. */
export const OPS_SCRIPT: Script = { name: "celeriac.ops", source: OPS_LUA };
