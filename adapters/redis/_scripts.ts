/**
 * The Lua scripts of the Redis backend. Two scripts serve everything, over TCP and REST alike:
 *
 * - {@link QUEUE_SCRIPT} runs a list of operations against one queue. Every key it touches
 *   carries the queue's hash tag `{prefix:queue}`, so one call is one slot and one round trip.
 * - {@link KEY_SCRIPT} runs one operation on one plain key (generic store keys, the queue index).
 *
 * Reply convention: every string a script returns starts with `~`, so a REST client that
 * JSON-parses string results (`@upstash/redis` does by default) leaves it alone; the client
 * strips the `~`. Integers travel as integers, absent values as nil.
 *
 * Per-queue keys (`B` = `{prefix:queue}`), passed as KEYS[1..7] in this order:
 * - `B:r` ready ZSET: id → (9 − priority)·1e14 + sequence (higher priority first, FIFO within)
 * - `B:t` timers ZSET: id → time·20 + kind·10 + (9 − priority), where kind 0 is a delayed
 *   message due at `time` and kind 1 a lease that expires at `time` (a message is in one of
 *   `B:r` or `B:t`, or in neither once acked)
 * - `B:m` messages HASH: id → `priority:deliveries:receipt:body` (receipt empty unless leased)
 * - `B:c` counters HASH: `b` (back of a priority, grows), `f` (front, shrinks)
 * - `B:w` wake-up marker ZSET (one member), popped by blocking waiters
 * - `B:x` dead letters HASH: id → JSON; `B:xi` ZSET: id → microseconds when added
 * Further KEYS (run records `B:run:<id>`, idempotency keys `B:idem:<key>`) follow, referenced
 * by index from the operations.
 *
 * Times come from the server's `TIME` (one clock for every worker's leases).
 *
 * @module
 */

/** A Lua script and its SHA-1 (filled in lazily by the client). */
export interface Script {
  readonly name: string;
  readonly source: string;
}

/**
 * Operations of {@link QUEUE_SCRIPT}. ARGV is a flat list: an op code, then its arguments.
 * Each op appends one result to the reply.
 */
export const OP = {
  /** id, priority, notBefore|"", body, runKey#|"", ttlMs, nFields, fields…, idemKey#|"", idemTtlMs → nil (sent) | ~owner */
  enqueue: "E",
  /** id, receipt → 1 | 0 */
  ack: "A",
  /** id, receipt, leaseMs → 1 | 0 */
  renew: "N",
  /** id, receipt → 1 | 0 */
  release: "F",
  /** id → 1 | 0 */
  cancel: "C",
  /** max, leaseMs, startAt|"" → { nextDueInMs | -1, ~id, ~body, ~receipt, deliveries, started (1 | 0 | ~state), … } */
  receive: "Q",
  /** runKey#, ttlMs, replace 1|0, want 1|0, nGuards, guards…, nFields, fields… → { applied, ~field, ~value, … } */
  update: "U",
  /** runKey# → { ~field, ~value, … } */
  get: "G",
  /** id, json → 1 */
  deadAdd: "X",
  /** limit → { micros, ~json, … } newest first */
  deadList: "XL",
  /** id → ~json | nil */
  deadTake: "XT",
  /** idemKey# → ~runId | nil */
  owner: "I",
  /** idemKey#, runId, ttlMs → 1 (the key now maps to this run) */
  claim: "K",
} as const;

const QUEUE_LUA = `
local R, T, M, C, W, X, XI = KEYS[1], KEYS[2], KEYS[3], KEYS[4], KEYS[5], KEYS[6], KEYS[7]
local BASE = string.sub(R, 1, -3)
local a = 1
local function arg() local v = ARGV[a]; a = a + 1; return v end
local function num() return tonumber(arg()) end
local function fmt(n) return string.format('%.0f', n) end
local clock
local function now()
  if not clock then
    local t = redis.call('TIME')
    local s, us = tonumber(t[1]), tonumber(t[2])
    clock = { ms = s * 1000 + math.floor(us / 1000), us = s * 1000000 + us, stamp = t[1] .. string.format('%06d', us) }
  end
  return clock
end
local function parse(v)
  local i = string.find(v, ':', 1, true)
  local j = i and string.find(v, ':', i + 1, true)
  local k = j and string.find(v, ':', j + 1, true)
  if not k then return 0, 0, '', v end
  local p, d = tonumber(string.sub(v, 1, i - 1)), tonumber(string.sub(v, i + 1, j - 1))
  if not p or not d then return 0, 0, '', v end
  if p ~= p or p < 0 or p > 9 then p = 0 end
  return math.floor(p), d, string.sub(v, j + 1, k - 1), string.sub(v, k + 1)
end
local function pack(p, d, r, body) return p .. ':' .. d .. ':' .. r .. ':' .. body end
local function rscore(p, n) return fmt((9 - p) * 1e14 + n) end
local function tscore(ms, kind, p) return fmt(ms * 20 + kind * 10 + 9 - p) end
local back = {}
local function flush()
  local k = #back / 2
  if k == 0 then return end
  local base = redis.call('HINCRBY', C, 'b', k) - k
  local z = {}
  for j = 1, k do z[2 * j - 1] = rscore(back[2 * j - 1], base + j); z[2 * j] = back[2 * j] end
  redis.call('ZADD', R, unpack(z))
  back = {}
end
local function front(list)
  local k = #list / 2
  if k == 0 then return end
  local base = redis.call('HINCRBY', C, 'f', -k)
  local z = {}
  for j = 1, k do z[2 * j - 1] = rscore(list[2 * j - 1], base + k - j); z[2 * j] = list[2 * j] end
  redis.call('ZADD', R, unpack(z))
end
local function fields(n)
  local f = {}
  for i = 1, 2 * n do f[i] = arg() end
  return f
end
local function record(key, f, ttl, replace)
  if replace then redis.call('DEL', key) end
  if #f > 0 then redis.call('HSET', key, unpack(f)) end
  redis.call('PEXPIRE', key, ttl)
end
local function tilde(list)
  for i = 1, #list do list[i] = '~' .. list[i] end
  return list
end
local function leased(id, receipt)
  local v = redis.call('HGET', M, id)
  if not v then return nil end
  local p, d, r, body = parse(v)
  if r == '' or r ~= receipt then return nil end
  return p, d, body
end
local woke, more = false, false
local out = {}
while a <= #ARGV do
  local op = arg()
  local res = 1
  if op == 'E' then
    local id, p, nb, body, rk, ttl = arg(), num(), arg(), arg(), arg(), arg()
    local f = fields(num())
    local ik, ittl = arg(), arg()
    local owner = false
    if ik ~= '' then
      owner = redis.call('GET', KEYS[tonumber(ik)])
      if not owner then redis.call('SET', KEYS[tonumber(ik)], id, 'PX', ittl) end
    end
    if owner then
      res = '~' .. owner
    else
      res = false
      if rk ~= '' then
        -- A fresh record takes one HSET; only when fields were overwritten is there an old one to drop.
        local key = KEYS[tonumber(rk)]
        if redis.call('HSET', key, unpack(f)) < #f / 2 then
          redis.call('DEL', key); redis.call('HSET', key, unpack(f))
        end
        redis.call('PEXPIRE', key, ttl)
      end
      if redis.call('HSET', M, id, pack(p, 0, '', body)) == 0 then
        redis.call('ZREM', R, id); redis.call('ZREM', T, id)
      end
      if nb ~= '' and tonumber(nb) > now().ms then
        redis.call('ZADD', T, tscore(tonumber(nb), 0, p), id)
      else
        back[#back + 1] = p; back[#back + 1] = id
      end
      woke = true
    end
  elseif op == 'A' then
    local id = arg()
    if leased(id, arg()) then
      redis.call('HDEL', M, id); redis.call('ZREM', T, id)
    else res = 0 end
  elseif op == 'N' then
    local id, receipt, lease = arg(), arg(), num()
    local p = leased(id, receipt)
    if p then redis.call('ZADD', T, tscore(now().ms + lease, 1, p), id) else res = 0 end
  elseif op == 'F' then
    flush()
    local id = arg()
    local p, d, body = leased(id, arg())
    if p then
      redis.call('HSET', M, id, pack(p, d, '', body)); redis.call('ZREM', T, id)
      front({ p, id }); woke = true
    else res = 0 end
  elseif op == 'C' then
    flush()
    local id = arg()
    local v = redis.call('HGET', M, id)
    local _, _, r = parse(v or '')
    if v and r == '' and (redis.call('ZREM', R, id) + redis.call('ZREM', T, id)) > 0 then
      redis.call('HDEL', M, id)
    else res = 0 end
  elseif op == 'Q' then
    flush()
    local max, lease, startAt = num(), num(), arg()
    local t = now()
    local bound = t.ms * 20 + 19
    local due = -1
    local head = redis.call('ZRANGE', T, 0, 0, 'WITHSCORES')
    if head[1] and tonumber(head[2]) > bound then
      due = math.max(math.floor(tonumber(head[2]) / 20) - t.ms, 0)
    elseif head[1] then
      local list = redis.call('ZRANGEBYSCORE', T, '-inf', fmt(bound), 'WITHSCORES', 'LIMIT', 0, 1000)
      local ids, expired = {}, {}
      for i = 1, #list, 2 do
        local id, sc = list[i], tonumber(list[i + 1])
        ids[#ids + 1] = id
        if math.floor(sc / 10) % 2 == 0 then
          back[#back + 1] = 9 - sc % 10; back[#back + 1] = id
        else
          local v = redis.call('HGET', M, id)
          if v then
            local p, d, _, body = parse(v)
            redis.call('HSET', M, id, pack(p, d, '', body))
            expired[#expired + 1] = p; expired[#expired + 1] = id
          end
        end
      end
      redis.call('ZREM', T, unpack(ids))
      flush()
      front(expired)
      if #ids == 1000 then due = 0 end
    end
    local popped = redis.call('ZPOPMIN', R, max)
    res = { due }
    local z = {}
    for i = 1, #popped, 2 do
      local id = popped[i]
      local v = redis.call('HGET', M, id)
      if v then
        local p, d, _, body = parse(v)
        d = d + 1
        local receipt = t.stamp .. '.' .. d
        redis.call('HSET', M, id, pack(p, d, receipt, body))
        z[#z + 1] = tscore(t.ms + lease, 1, p); z[#z + 1] = id
        res[#res + 1] = '~' .. id; res[#res + 1] = '~' .. body; res[#res + 1] = '~' .. receipt; res[#res + 1] = d
        -- Start the run as it is leased (startable states only; a missing record is left to the
        -- executor, which can create it). Same hash tag, so the same slot as every declared key.
        local started = 0
        if startAt ~= '' then
          local rk = BASE .. ':run:' .. id
          local st = redis.call('HGET', rk, 'state')
          if st == '"queued"' or st == '"scheduled"' or st == '"retrying"' or st == '"active"' then
            local ok, env = pcall(cjson.decode, body)
            local att = ok and type(env) == 'table' and tonumber(env.attempt)
            if att then
              redis.call('HSET', rk, 'state', '"active"', 'attempt', fmt(att), 'startedAt', startAt, 'updatedAt', startAt)
              started = 1
            end
          elseif st then
            started = '~' .. st
          end
        end
        res[#res + 1] = started
      end
    end
    if #z > 0 then redis.call('ZADD', T, unpack(z)); res[1] = 0 end
    if #popped / 2 >= max then more = true end
  elseif op == 'U' then
    local key, ttl, replace, want, ng = KEYS[tonumber(arg())], arg(), arg() == '1', arg() == '1', num()
    local guards = {}
    for i = 1, ng do guards[i] = arg() end
    local f = fields(num())
    local cur, state = {}, nil
    if want then
      cur = redis.call('HGETALL', key)
      state = 'missing'
      for i = 1, #cur, 2 do if cur[i] == 'state' then state = cur[i + 1] end end
    elseif ng > 0 then
      state = redis.call('HGET', key, 'state') or 'missing'
    end
    local ok = ng == 0
    for i = 1, ng do if guards[i] == state then ok = true end end
    if ok then record(key, f, ttl, replace and state ~= 'missing') end
    if not ok and not want and state ~= 'missing' then cur = { 'state', state } end
    res = tilde(cur)
    table.insert(res, 1, ok and 1 or 0)
  elseif op == 'G' then
    res = tilde(redis.call('HGETALL', KEYS[tonumber(arg())]))
  elseif op == 'X' then
    local id, json = arg(), arg()
    redis.call('HSET', X, id, json)
    redis.call('ZADD', XI, fmt(now().us), id)
  elseif op == 'XL' then
    local list = redis.call('ZREVRANGE', XI, 0, num() - 1, 'WITHSCORES')
    res = {}
    if #list > 0 then
      local ids = {}
      for i = 1, #list, 2 do ids[#ids + 1] = list[i] end
      local jsons = redis.call('HMGET', X, unpack(ids))
      for i = 1, #ids do
        if jsons[i] then res[#res + 1] = tonumber(list[2 * i]); res[#res + 1] = '~' .. jsons[i] end
      end
    end
  elseif op == 'XT' then
    local id = arg()
    local json = redis.call('HGET', X, id)
    if json then
      redis.call('HDEL', X, id); redis.call('ZREM', XI, id)
      res = '~' .. json
    else res = false end
  elseif op == 'K' then
    local key, id, ttl = KEYS[tonumber(arg())], arg(), arg()
    redis.call('SET', key, id, 'PX', ttl)
  elseif op == 'I' then
    local v = redis.call('GET', KEYS[tonumber(arg())])
    res = v and ('~' .. v) or false
  else
    return redis.error_reply('celeriac: unknown queue op ' .. tostring(op))
  end
  out[#out + 1] = res
end
flush()
-- A receive that took all it asked for re-arms the marker only when more is ready.
if woke or (more and redis.call('ZCARD', R) > 0) then redis.call('ZADD', W, 0, '1') end
return out
`;

/**
 * Runs a list of operations on one queue. KEYS: the seven queue keys, then run and idempotency
 * keys. Commands per op (besides the EVALSHA):
 * - enqueue: HSET (message), ZADD (ready or timers), HINCRBY once per call, ZADD marker once per
 *   call; + HSET, PEXPIRE with a record (+ DEL, HSET when one existed: replay); + GET, SET with
 *   an idempotency key; + TIME when
 *   `notBefore` is set; + 2×ZREM when the id already had a message (replaced).
 * - receive: TIME, ZRANGE timers head, ZPOPMIN; per message HGET + HSET (+ HGET state, HSET
 *   on its run record with `startAt`); one ZADD for the leases; + ZCARD (and ZADD marker when
 *   more is ready) when it took `max`; due delayed messages and expired leases add
 *   ZRANGEBYSCORE, ZREM, HINCRBY, ZADD (+ HGET, HSET per expired lease) when present.
 * - ack: HGET, HDEL, ZREM. renew: HGET, TIME, ZADD. release: HGET, HSET, ZREM, HINCRBY, ZADD.
 * - update: HGETALL (`want`; or HGET state with a guard, or nothing), [DEL], HSET, PEXPIRE.
 * - dead letter: HSET, TIME, ZADD. claim: SET. owner: GET.
 */
export const QUEUE_SCRIPT: Script = { name: "celeriac.queue", source: QUEUE_LUA };

const KEY_LUA = `
local k, op = KEYS[1], ARGV[1]
if op == 'get' then
  local v = redis.call('GET', k)
  return v and ('~' .. v) or false
elseif op == 'set' then
  if ARGV[3] ~= '' then redis.call('SET', k, ARGV[2], 'PX', ARGV[3]) else redis.call('SET', k, ARGV[2]) end
  return 1
elseif op == 'nx' then
  local v = redis.call('GET', k)
  if v then return '~' .. v end
  if ARGV[3] ~= '' then redis.call('SET', k, ARGV[2], 'PX', ARGV[3]) else redis.call('SET', k, ARGV[2]) end
  return false
elseif op == 'cad' then
  if redis.call('GET', k) == ARGV[2] then redis.call('DEL', k) return 1 end
  return 0
elseif op == 'del' then
  redis.call('DEL', k)
  return 1
elseif op == 'incr' then
  local v = redis.call('GET', k)
  if v and not tonumber(v) then return redis.error_reply('celeriac: value at key is not a number') end
  if not v and ARGV[3] ~= '' then redis.call('SET', k, '0', 'PX', ARGV[3]) end
  return '~' .. redis.call('INCRBYFLOAT', k, ARGV[2])
elseif op == 'sadd' then
  return redis.call('SADD', k, unpack(ARGV, 2))
elseif op == 'smembers' then
  local m = redis.call('SMEMBERS', k)
  for i = 1, #m do m[i] = '~' .. m[i] end
  return m
elseif op == 'ping' then
  return 1
end
return redis.error_reply('celeriac: unknown key op ' .. tostring(op))
`;

/** Runs one operation on one key: get, set, nx, cad, del, incr, sadd, smembers, ping. */
export const KEY_SCRIPT: Script = { name: "celeriac.key", source: KEY_LUA };
