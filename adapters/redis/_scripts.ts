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
 * Per-queue keys (`B` = `{prefix:queue}`), passed as KEYS[1..6] in this order:
 * - `B:r` ready ZSET: id → (9 − priority)·1e14 + sequence (higher priority first, FIFO within)
 * - `B:t` timers ZSET: time·20 + kind·10 + (9 − priority), where kind 0 is a delayed message
 *   (member: its id) due at `time` and kind 1 a lease (member: `receipt|id`) that expires at
 *   `time`; a message is in one of `B:r` or `B:t`, or in neither once settled
 * - `B:c` counters HASH: `b` (back of a priority, grows), `f` (front, shrinks)
 * - `B:w` wake-up marker ZSET (one member), popped by blocking waiters
 * - `B:x` dead letters HASH: id → JSON; `B:xi` ZSET: id → microseconds when added
 * - `B:run:<id>` one HASH per run: the run record (one JSON value per field) and its message
 *   (fields starting with a dot: `.b` body, `.p` priority, `.d` deliveries, `.r` receipt while
 *   leased, `.a` attempt, `.q` "1" while pending, `.t` TTL to apply once settled). The key has
 *   no TTL while its message is pending, so a message never expires with its record.
 * Run keys and idempotency keys `B:idem:<key>` follow as further KEYS, referenced by index.
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
 * Operations of {@link QUEUE_SCRIPT}. ARGV is how many messages the call's receive ops ask for
 * in all (they share one ZPOPMIN), then a flat list: an op code, then its arguments. Each op
 * appends one result to the reply.
 */
export const OP = {
  /**
   * id, priority, notBefore|"", body, attempt|"", fresh 1|0, runKey#|"", ttlMs, nFields, fields…,
   * idemKey#|"", idemTtlMs → nil (sent) | ~owner. `fresh`: the id was generated for this run just
   * now, so no earlier message or record can exist (one HSET, no checks).
   */
  enqueue: "E",
  /** id, receipt → 1 | 0 */
  ack: "A",
  /**
   * id, receipt, priority, notBefore|"", body, attempt|"", nFields, fields… → 1 | 0: acks a
   * leased message, records the failed attempt and sends the next attempt's message, in one step
   * (0: the lease was not held; the next attempt is sent all the same).
   */
  retry: "Y",
  /** id, receipt, leaseMs → 1 | 0 */
  renew: "N",
  /** id, receipt → 1 | 0 */
  release: "F",
  /** id → 1 | 0 */
  cancel: "C",
  /**
   * max, leaseMs, startAt|"", mark 1|0 → { nextDueInMs | -1, ~id, ~body, ~receipt, deliveries,
   * started (1 | 0 | ~state), … }. `mark` 0 (a worker taking its next task as it finishes one)
   * skips re-arming the wake-up marker.
   */
  receive: "Q",
  /** runKey#, ttlMs, replace 1|0, want 1|0, nGuards, guards…, nFields, fields… → { applied, ~field, ~value, … } */
  update: "U",
  /**
   * id, receipt, ttlMs, nFields, fields… → 1 | 0: acks a leased message and records the run's
   * final fields in one step (0: the lease was not held; the record is written all the same).
   */
  finish: "S",
  /**
   * id, receipt, ttlMs, at, resultJson|"" → 1 | 0: `finish` with the fields of a success
   * (state "succeeded", finishedAt = updatedAt = at, the result unless "") in fewer arguments.
   */
  succeed: "O",
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
local R, T, C, W, X, XI = KEYS[1], KEYS[2], KEYS[3], KEYS[4], KEYS[5], KEYS[6]
local BASE = string.sub(R, 1, -3)
-- ARGV[1]: how many messages the call's receive ops ask for in all (popped at once).
local want = tonumber(ARGV[1]) or 0
local a = 2
local function arg() local v = ARGV[a]; a = a + 1; return v end
local function num() return tonumber(arg()) end
local function fmt(n) return string.format('%.0f', n) end
local function rk(id) return BASE .. ':run:' .. id end
local clock
local function now()
  if not clock then
    local t = redis.call('TIME')
    local s, us = tonumber(t[1]), tonumber(t[2])
    clock = { ms = s * 1000 + math.floor(us / 1000), us = s * 1000000 + us, stamp = t[1] .. string.format('%06d', us) }
  end
  return clock
end
local function prio(v)
  local p = tonumber(v)
  if not p or p ~= p or p < 0 or p > 9 then return 0 end
  return math.floor(p)
end
local function rscore(p, n) return fmt((9 - p) * 1e14 + n) end
local function tscore(ms, kind, p) return fmt(ms * 20 + kind * 10 + 9 - p) end
-- A lease in the timers set is the member receipt|id: removing it is the check that it is held.
local function lease(receipt, id) return receipt .. '|' .. id end
local function unlease(member)
  local i = string.find(member, '|', 1, true)
  if not i then return nil, member end
  return string.sub(member, 1, i - 1), string.sub(member, i + 1)
end
local back = {}
-- Messages popped from the ready set for this call's receive ops and not handed out yet
-- ({id, score, …} from position pi on); dry: the ready set had no more when last asked.
local pool, pi, dry = {}, 1, false
-- The timers set: checked (nothing was due at this call's time) and the earliest score known
-- in it since (leases this call adds come later than any due time; nil: none known).
local checked, headScore = false, nil
local function seen(score) if not headScore or score < headScore then headScore = score end end
-- Leases taken by this call, added to the timers set in one ZADD (see flushLeases).
local leases = {}
local function flushLeases()
  if #leases > 0 then redis.call('ZADD', T, unpack(leases)); leases = {} end
end
local function flush()
  local k = #back / 2
  if k == 0 then return end
  local base = redis.call('HINCRBY', C, 'b', k) - k
  local z = {}
  for j = 1, k do z[2 * j - 1] = rscore(back[2 * j - 1], base + j); z[2 * j] = back[2 * j] end
  redis.call('ZADD', R, unpack(z))
  back = {}; dry = false
end
local function front(list)
  local k = #list / 2
  if k == 0 then return end
  local base = redis.call('HINCRBY', C, 'f', -k)
  local z = {}
  for j = 1, k do z[2 * j - 1] = rscore(list[2 * j - 1], base + k - j); z[2 * j] = list[2 * j] end
  redis.call('ZADD', R, unpack(z))
  dry = false
end
local function fields(n)
  local f = {}
  for i = 1, 2 * n do f[i] = arg() end
  return f
end
local function tilde(list)
  for i = 1, #list do list[i] = '~' .. list[i] end
  return list
end
-- Drops the run record's own fields, keeping the message's (names starting with a dot).
local function droprecord(key)
  local names = redis.call('HKEYS', key)
  local drop = {}
  for i = 1, #names do
    if string.sub(names[i], 1, 1) ~= '.' then drop[#drop + 1] = names[i] end
  end
  if #drop > 0 then redis.call('HDEL', key, unpack(drop)) end
end
-- Takes the message of id out of the ready and timers sets (it is being replaced).
local function unqueue(id, receipt)
  redis.call('ZREM', R, id); redis.call('ZREM', T, id)
  if receipt and receipt ~= '' then redis.call('ZREM', T, lease(receipt, id)) end
end
local woke, more, mark = false, false, true
-- The message fields of a run's hash, appended to the fields about to be written.
local function message(f, body, p, att)
  f[#f + 1] = '.b'; f[#f + 1] = body
  f[#f + 1] = '.p'; f[#f + 1] = p
  f[#f + 1] = '.d'; f[#f + 1] = '0'
  f[#f + 1] = '.r'; f[#f + 1] = ''
  f[#f + 1] = '.a'; f[#f + 1] = att
  f[#f + 1] = '.q'; f[#f + 1] = '1'
end
-- A sent message waits in the timers set until notBefore, or goes to the back of the ready set.
local function schedule(id, p, nb)
  if nb ~= '' and tonumber(nb) > now().ms then
    local sc = tscore(tonumber(nb), 0, p)
    redis.call('ZADD', T, sc, id)
    seen(tonumber(sc))
  else
    back[#back + 1] = p; back[#back + 1] = id
  end
  woke = true
end
-- The message of key is gone for good (acked or cancelled): a key holding only the message goes
-- with it; a run record keeps its fields and now expires as its last update asked (.t).
local function settle(key)
  local m = redis.call('HMGET', key, 'state', '.t')
  if not m[1] then redis.call('DEL', key); return end
  redis.call('HSET', key, '.q', '', '.r', '')
  if m[2] then redis.call('PEXPIRE', key, m[2]) end
end
local out = {}
while a <= #ARGV do
  local op = arg()
  local res = 1
  -- Ops that look leases up by member see the ones this call took (receive and finish do not
  -- need to: a lease taken in this call cannot have reached a worker yet).
  if op ~= 'Q' and op ~= 'S' and op ~= 'O' then flushLeases() end
  if op == 'E' then
    local id, p, nb, body, att, fresh, rki, ttl = arg(), num(), arg(), arg(), arg(), arg() == '1', arg(), arg()
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
      local key = rki ~= '' and KEYS[tonumber(rki)] or rk(id)
      message(f, body, p, att)
      if fresh then
        redis.call('HSET', key, unpack(f))
      else
        -- An id seen before: replace its pending message, if any; a new record replaces the old.
        local was = redis.call('HMGET', key, '.q', '.r')
        if was[1] == '1' then unqueue(id, was[2]) end
        if rki ~= '' then droprecord(key) end
        redis.call('HSET', key, unpack(f))
        redis.call('PERSIST', key)
      end
      schedule(id, p, nb)
    end
  elseif op == 'A' then
    local id, receipt = arg(), arg()
    if redis.call('ZREM', T, lease(receipt, id)) == 1 then settle(rk(id)) else res = 0 end
  elseif op == 'S' or op == 'O' then
    local id, receipt, ttl = arg(), arg(), arg()
    local f
    if op == 'O' then
      local at, result = arg(), arg()
      f = { 'state', '"succeeded"', 'finishedAt', at, 'updatedAt', at }
      if result ~= '' then f[7] = 'result'; f[8] = result end
    else
      f = fields(num())
    end
    local key = rk(id)
    if redis.call('ZREM', T, lease(receipt, id)) == 1 then
      f[#f + 1] = '.q'; f[#f + 1] = ''
      f[#f + 1] = '.r'; f[#f + 1] = ''
      redis.call('HSET', key, unpack(f))
      redis.call('PEXPIRE', key, ttl)
    else
      -- The lease was lost (expired and taken again): record the outcome, keep the message.
      res = 0
      if redis.call('HGET', key, '.q') == '1' then
        f[#f + 1] = '.t'; f[#f + 1] = ttl
        redis.call('HSET', key, unpack(f))
      else
        redis.call('HSET', key, unpack(f))
        redis.call('PEXPIRE', key, ttl)
      end
    end
  elseif op == 'Y' then
    local id, receipt, p, nb, body, att = arg(), arg(), num(), arg(), arg(), arg()
    local f = fields(num())
    local key = rk(id)
    if redis.call('ZREM', T, lease(receipt, id)) == 0 then
      -- The lease was lost: the next attempt replaces whatever message the run has now.
      res = 0
      local was = redis.call('HMGET', key, '.q', '.r')
      if was[1] == '1' then unqueue(id, was[2]) end
    end
    message(f, body, p, att)
    redis.call('HSET', key, unpack(f))
    schedule(id, p, nb)
  elseif op == 'N' then
    local id, receipt, ms = arg(), arg(), num()
    local member = lease(receipt, id)
    if redis.call('ZSCORE', T, member) then
      local p = prio(redis.call('HGET', rk(id), '.p'))
      redis.call('ZADD', T, tscore(now().ms + ms, 1, p), member)
    else res = 0 end
  elseif op == 'F' then
    flush()
    local id, receipt = arg(), arg()
    if redis.call('ZREM', T, lease(receipt, id)) == 1 then
      local key = rk(id)
      local p = prio(redis.call('HGET', key, '.p'))
      redis.call('HSET', key, '.r', '')
      front({ p, id }); woke = true
    else res = 0 end
  elseif op == 'C' then
    flush()
    local id = arg()
    local key = rk(id)
    local was = redis.call('HMGET', key, '.q', '.r')
    if was[1] == '1' and (was[2] or '') == '' and (redis.call('ZREM', R, id) + redis.call('ZREM', T, id)) > 0 then
      settle(key)
    else res = 0 end
  elseif op == 'Q' then
    flush()
    local max, ms, startAt = num(), num(), arg()
    if arg() == '0' then mark = false end
    local t = now()
    local bound = t.ms * 20 + 19
    local due = -1
    if not checked then
      local head = redis.call('ZRANGE', T, 0, 0, 'WITHSCORES')
      if not head[1] then
        checked = true
      elseif tonumber(head[2]) > bound then
        checked = true; seen(tonumber(head[2]))
      else
        local list = redis.call('ZRANGEBYSCORE', T, '-inf', fmt(bound), 'WITHSCORES', 'LIMIT', 0, 1000)
        local members, expired = {}, {}
        for i = 1, #list, 2 do
          local member, sc = list[i], tonumber(list[i + 1])
          members[#members + 1] = member
          if math.floor(sc / 10) % 2 == 0 then
            back[#back + 1] = 9 - sc % 10; back[#back + 1] = member
          else
            local receipt, id = unlease(member)
            local key = rk(id)
            local was = redis.call('HMGET', key, '.q', '.r')
            if receipt and was[1] == '1' and was[2] == receipt then
              redis.call('HSET', key, '.r', '')
              expired[#expired + 1] = 9 - sc % 10; expired[#expired + 1] = id
            end
          end
        end
        redis.call('ZREM', T, unpack(members))
        flush()
        front(expired)
        if #members == 1000 then due = 0 end
      end
    end
    if checked and headScore then due = math.max(math.floor(headScore / 20) - t.ms, 0) end
    -- One ZPOPMIN for every receive op of the call (ARGV[1] says how many they want in all).
    local have = (#pool - pi + 1) / 2
    if have < max and not dry then
      local ask = math.max(want, max) - have
      local got = redis.call('ZPOPMIN', R, ask)
      for i = 1, #got do pool[#pool + 1] = got[i] end
      if #got / 2 < ask then dry = true end
      have = have + #got / 2
    end
    want = math.max(want - max, 0)
    local take = math.min(max, have)
    res = { due }
    local leased = 0
    for _ = 1, take do
      local id = pool[pi]
      pi = pi + 2
      local key = rk(id)
      local m = redis.call('HMGET', key, '.b', '.p', '.d', '.a', 'state')
      local body = m[1]
      if body then
        local p, d = prio(m[2]), (tonumber(m[3]) or 0) + 1
        local receipt = t.stamp .. '.' .. d
        local set = { '.d', d, '.r', receipt }
        local sc = tscore(t.ms + ms, 1, p)
        leases[#leases + 1] = sc; leases[#leases + 1] = lease(receipt, id)
        seen(tonumber(sc))
        leased = leased + 1
        res[#res + 1] = '~' .. id; res[#res + 1] = '~' .. body; res[#res + 1] = '~' .. receipt; res[#res + 1] = d
        -- Start the run as it is leased (startable states only; a missing record is left to the
        -- executor, which can create it).
        local started = 0
        if startAt ~= '' then
          local st = m[5]
          if st == '"queued"' or st == '"scheduled"' or st == '"retrying"' or st == '"active"' then
            local att = tonumber(m[4])
            if not att then
              local ok, env = pcall(cjson.decode, body)
              att = ok and type(env) == 'table' and tonumber(env.attempt)
            end
            if att then
              set[#set + 1] = 'state'; set[#set + 1] = '"active"'
              set[#set + 1] = 'attempt'; set[#set + 1] = fmt(att)
              set[#set + 1] = 'startedAt'; set[#set + 1] = startAt
              set[#set + 1] = 'updatedAt'; set[#set + 1] = startAt
              started = 1
            end
          elseif st then
            started = '~' .. st
          end
        end
        redis.call('HSET', key, unpack(set))
        res[#res + 1] = started
      end
    end
    if leased > 0 then res[1] = 0 end
    if take >= max then more = true end
  elseif op == 'U' then
    local key, ttl, replace, want, ng = KEYS[tonumber(arg())], arg(), arg() == '1', arg() == '1', num()
    local guards = {}
    for i = 1, ng do guards[i] = arg() end
    local f = fields(num())
    local cur, state, pending = {}, 'missing', false
    if want then
      cur = redis.call('HGETALL', key)
      for i = 1, #cur, 2 do
        if cur[i] == 'state' then state = cur[i + 1] elseif cur[i] == '.q' then pending = cur[i + 1] == '1' end
      end
    else
      local m = redis.call('HMGET', key, 'state', '.q')
      state = m[1] or 'missing'
      pending = m[2] == '1'
    end
    local ok = ng == 0
    for i = 1, ng do if guards[i] == state then ok = true end end
    if ok then
      if replace and state ~= 'missing' then droprecord(key) end
      -- A key that still carries a pending message never expires (the message would go with it):
      -- the TTL waits in .t until the message is settled.
      if pending then f[#f + 1] = '.t'; f[#f + 1] = ttl end
      if #f > 0 then redis.call('HSET', key, unpack(f)) end
      if not pending then redis.call('PEXPIRE', key, ttl) end
    end
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
flushLeases()
-- Popped but not handed out (only when ARGV[1] asked for more than the receive ops took): back
-- to the ready set as they were.
if pi <= #pool then
  local z = {}
  for i = pi, #pool, 2 do z[#z + 1] = pool[i + 1]; z[#z + 1] = pool[i] end
  redis.call('ZADD', R, unpack(z))
end
flush()
-- A receive that took all it asked for re-arms the marker only when more is ready (and only
-- when it was asked to: a worker chaining from task to task wakes no one).
if woke or (more and mark and redis.call('ZCARD', R) > 0) then redis.call('ZADD', W, 0, '1') end
return out
`;

/**
 * Runs a list of operations on one queue. KEYS: the six queue keys, then run and idempotency
 * keys. Commands per op (besides the EVALSHA):
 * - enqueue: HSET (record and message in one hash), ZADD (ready or timers), HINCRBY once per
 *   call, ZADD marker once per call; an id not freshly generated first reads the old message
 *   (HMGET; ZREMs when it was pending), drops an old record (HKEYS, HDEL) and ends with
 *   PERSIST; + GET, SET with an idempotency key; + TIME when `notBefore` is set.
 * - receive: per message HMGET + HSET (the start is in the same HSET); once per call, however
 *   many receive ops it has: TIME, ZRANGE timers head, ZPOPMIN, one ZADD for the leases; + ZCARD
 *   (and ZADD marker when more is ready) when it took `max` and may mark; due delayed messages
 *   and expired leases add ZRANGEBYSCORE, ZREM, HINCRBY, ZADD (+ HMGET, HSET per expired lease)
 *   when present.
 * - finish or succeed (ack + record): ZREM, HSET, PEXPIRE. retry (ack + record + next message): ZREM, HSET,
 *   and the enqueue's ZADD. ack: ZREM, HMGET, HSET [, PEXPIRE].
 *   renew: ZSCORE, HGET, TIME, ZADD. release: ZREM, HGET, HSET, HINCRBY, ZADD.
 * - update: HGETALL (`want`) or HMGET state, [HKEYS, HDEL], HSET, PEXPIRE (not while a message is
 *   pending in the key: the TTL then waits in `.t` until the message is settled).
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
