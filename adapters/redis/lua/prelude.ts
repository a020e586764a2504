/**
 * The start of the queue script: its keys, the argument reader, the server clock, scores, and
 * the helpers every op shares (moving messages between the ready and timers sets, leases,
 * settling a message). The ops follow in their own fragments; `queue.ts` puts them together.
 *
 * @module
 */
import { STARTABLE_STATES, storedState } from "../../../backend.ts";
import { TRIM_EVERY } from "./history.ts";

/** The member of a queue's timers set that marks it paused. */
export const PAUSED_MEMBER = "!paused";

/** `{ ['"queued"'] = true, … }`: the startable states as they are stored (JSON), from run-state. */
const startable = `{ ${STARTABLE_STATES.map((s) => `['${storedState(s)}'] = true`).join(", ")} }`;

/**
 * KEYS (every key under the queue's hash tag `{prefix:queue}` = B):
 *   1 B:r   ready ZSET: id → (9 − priority)·1e14 + sequence (higher priority first, FIFO within)
 *   2 B:t   timers ZSET: time·30 + kind·10 + (9 − priority); kind 0 a delayed message (member:
 *           its id) due at time, kind 2 the same for a later attempt of a failed run, kind 1 a
 *           lease (member: receipt|id) that expires at time; and while the queue is paused, the
 *           member PAUSED at score −1 (always the head, so a receive sees it first); a member
 *           !r:<key> (kind 0) is the turn timer of a rate key whose list holds parked messages
 *   3 B:c   counters HASH: b (back of a priority, grows), f (front, shrinks), d and y (delayed
 *           messages of kind 0 and kind 2 in the timers set), g (rate keys' turn timers in it:
 *           the rest of it are leases), l (messages parked in the limits' lists)
 *   4 B:w   wake-up marker ZSET (one member), popped by blocking waiters
 *   5 B:x   dead letters HASH: id → JSON
 *   6 B:xi  dead letter index ZSET: id → microseconds when added
 *   7…      run records (B:run:<id>) and idempotency keys, referenced by index from ARGV
 * Limits' keys, under the same tag: B:rl:<key> a rate key's next turn (ms), B:rw:<key> the LIST of
 * messages waiting for a turn of the key, B:cc:<key> a concurrency key's held slots (ZSET of lease
 * members), B:cw:<key> the LIST of messages waiting for one of its slots, B:pk the ZSET (lex) of
 * the non-empty lists, for purges and listings.
 * ARGV: 1 how many messages the call's receive ops ask for in all (popped at once); then ops,
 *   each an op code and its arguments.
 */
export const PRELUDE = `
local readySet, timers, counters, wakeMarker, deadLetters, deadIndex = KEYS[1], KEYS[2], KEYS[3], KEYS[4], KEYS[5], KEYS[6]
local queueBase = string.sub(readySet, 1, -3)
local STARTABLE = ${startable}
local ACTIVE, SUCCEEDED, CANCELLED = '${storedState("active")}', '${storedState("succeeded")}', '${storedState("cancelled")}'
local wanted = tonumber(ARGV[1]) or 0
local argAt = 2
local function nextArg() local v = ARGV[argAt]; argAt = argAt + 1; return v end
local function nextNumber() return tonumber(nextArg()) end
local function keyArg() return KEYS[tonumber(nextArg())] end
local function integer(n) return string.format('%.0f', n) end
local function runKeyOf(id) return queueBase .. ':run:' .. id end

-- The server's clock, read once per call (one clock for every worker's leases).
local clock
local function now()
  if not clock then
    local t = redis.call('TIME')
    local seconds, micros = tonumber(t[1]), tonumber(t[2])
    clock = {
      ms = seconds * 1000 + math.floor(micros / 1000),
      us = seconds * 1000000 + micros,
      stamp = t[1] .. string.format('%06d', micros),
    }
  end
  return clock
end

local function priorityOf(value)
  local p = tonumber(value)
  if not p or p ~= p or p < 0 or p > 9 then return 0 end
  return math.floor(p)
end
local function readyScore(priority, sequence) return integer((9 - priority) * 1e14 + sequence) end
local function timerScore(ms, kind, priority) return integer(ms * 30 + kind * 10 + 9 - priority) end
-- The kind of a timers score (0 delayed, 1 lease, 2 delayed retry) and its time.
local function timerKind(score) return math.floor(score / 10) % 3 end
local function timerTime(score) return math.floor(score / 30) end
local PAUSED = '${PAUSED_MEMBER}'
-- The counter of delayed messages of a kind (d for first attempts, y for retries).
local function delayedCounter(kind) return kind == 2 and 'y' or 'd' end

-- A lease in the timers set is the member receipt|id: removing it is the check that it is held.
local function leaseMember(receipt, id) return receipt .. '|' .. id end
local function splitLease(member)
  local i = string.find(member, '|', 1, true)
  if not i then return nil, member end
  return string.sub(member, 1, i - 1), string.sub(member, i + 1)
end

-- Messages going to the back of their priority ({priority, id, …}), added in one ZADD (flush).
local toBack = {}
-- Messages popped from the ready set for this call's receive ops and not handed out yet
-- ({id, score, …} from position poolAt on); poolDry: the ready set had no more when last asked.
local pool, poolAt, poolDry = {}, 1, false
-- The timers set: checked (nothing was due at this call's time), and the earliest score known
-- in it since (leases this call adds come later than any due time; nil: none known).
local timersChecked, earliestTimer = false, nil
-- The queue is paused (seen by this call's first receive).
local paused = false
local function sawTimer(score) if not earliestTimer or score < earliestTimer then earliestTimer = score end end
-- Leases taken by this call, added to the timers set in one ZADD (flushLeases).
local newLeases = {}
local function flushLeases()
  if #newLeases > 0 then redis.call('ZADD', timers, unpack(newLeases)); newLeases = {} end
end
-- The history's indexes are trimmed at the end of this call (history.ts).
local historyDue = false
local function flush()
  local k = #toBack / 2
  if k == 0 then return end
  local base = redis.call('HINCRBY', counters, 'b', k) - k
  if math.floor((base + k) / ${TRIM_EVERY}) > math.floor(base / ${TRIM_EVERY}) then historyDue = true end
  local scored = {}
  for j = 1, k do scored[2 * j - 1] = readyScore(toBack[2 * j - 1], base + j); scored[2 * j] = toBack[2 * j] end
  redis.call('ZADD', readySet, unpack(scored))
  toBack = {}; poolDry = false
end
local function toFront(list)
  local k = #list / 2
  if k == 0 then return end
  local base = redis.call('HINCRBY', counters, 'f', -k)
  local scored = {}
  for j = 1, k do scored[2 * j - 1] = readyScore(list[2 * j - 1], base + k - j); scored[2 * j] = list[2 * j] end
  redis.call('ZADD', readySet, unpack(scored))
  poolDry = false
end
local function readFields(n)
  local f = {}
  for i = 1, 2 * n do f[i] = nextArg() end
  return f
end
-- The value of a field in a flat field list, or nil.
local function fieldOf(f, name)
  for i = 1, #f, 2 do if f[i] == name then return f[i + 1] end end
  return nil
end
local function tilde(list)
  for i = 1, #list do list[i] = '~' .. list[i] end
  return list
end
-- Drops the run record's own fields, keeping the message's (names starting with a dot).
local function dropRecord(key)
  local names = redis.call('HKEYS', key)
  local drop = {}
  for i = 1, #names do
    if string.sub(names[i], 1, 1) ~= '.' then drop[#drop + 1] = names[i] end
  end
  if #drop > 0 then redis.call('HDEL', key, unpack(drop)) end
end
-- Takes a delayed message out of the timers set, keeping the counters right; false when absent.
local function undelay(id)
  local score = redis.call('ZSCORE', timers, id)
  if not score then return false end
  redis.call('ZREM', timers, id)
  redis.call('HINCRBY', counters, delayedCounter(timerKind(tonumber(score))), -1)
  return true
end
local parkedLists = queueBase .. ':pk'
-- Parked messages this call added (or, below zero, took out), counted once at its end.
local parkedDelta = 0
local function flushParked()
  if parkedDelta ~= 0 then redis.call('HINCRBY', counters, 'l', parkedDelta); parkedDelta = 0 end
end
-- A message parked in a limit's list (its .z names the list; .n its sequence in the ready set's
-- order, which a purge compares with its back counter; both are read only for a message found in
-- that list, so they are not cleared when it leaves); a list that was empty joins the parked
-- lists (true: it was empty).
local function park(list, id, seq)
  local new = redis.call('RPUSH', list, id) == 1
  if new then redis.call('ZADD', parkedLists, 0, list) end
  redis.call('HSET', runKeyOf(id), '.z', list, '.n', seq)
  parkedDelta = parkedDelta + 1
  return new
end
-- Messages leaving a parked list (n of them): the list leaves the parked lists once empty.
local function unparked(list, n)
  parkedDelta = parkedDelta - n
  if redis.call('LLEN', list) == 0 then redis.call('ZREM', parkedLists, list) end
end
-- Takes a parked message out of its list; false when it is in none.
local function unpark(id)
  local list = redis.call('HGET', runKeyOf(id), '.z')
  if not list or list == '' or redis.call('LREM', list, 1, id) == 0 then return false end
  redis.call('HSET', runKeyOf(id), '.z', '', '.n', '')
  unparked(list, 1)
  return true
end
-- Takes the message of id out of the ready and timers sets or its parked list (it is being
-- replaced).
local function unqueue(id, receipt)
  if redis.call('ZREM', readySet, id) == 0 and not undelay(id) then unpark(id) end
  if receipt and receipt ~= '' then redis.call('ZREM', timers, leaseMember(receipt, id)) end
end
-- Limits (a message's .l "limit\tperiodMs\tkey" and .k "limit\tkey"; .v "1" once its rate-limit
-- turn is reserved). Their keys share the queue's hash tag.
local function rateKey(key) return queueBase .. ':rl:' .. key end
local function rateListKey(key) return queueBase .. ':rw:' .. key end
local function slotsKey(key) return queueBase .. ':cc:' .. key end
local function slotListKey(key) return queueBase .. ':cw:' .. key end
local function turnMember(key) return '!r:' .. key end
local function rateOf(spec)
  local limit, period, key = string.match(spec, '^(%d+)\t(%d+)\t(.*)$')
  return tonumber(limit), tonumber(period), key
end
local function concurrencyOf(spec)
  local limit, key = string.match(spec, '^(%d+)\t(.*)$')
  return tonumber(limit), key
end
-- A rate key's next turn as a cell rate: base (its stored time, or ms when that has passed) is
-- free while base − ms is within the period less one step (bursts of up to the limit).
local function rateBase(key, ms) return math.max(tonumber(redis.call('GET', rateKey(key))) or 0, ms) end
local function turnAt(base, limit, period) return math.ceil(base - (period - period / limit)) end
local function reserveTurns(key, base, step, n, ms)
  local tat = base + n * step
  redis.call('SET', rateKey(key), string.format('%.3f', tat), 'PX', integer(math.max(1, tat - ms)))
  return tat
end
-- Arms the turn timer of a rate key (or brings it forward to at).
local function armTurn(key, at)
  local score = timerScore(at, 0, 9)
  if redis.call('ZADD', timers, 'LT', score, turnMember(key)) == 1 then redis.call('HINCRBY', counters, 'g', 1) end
  sawTimer(tonumber(score))
end
-- A message of a rate-limited task sent for now waits in its key's list, behind one timer per key
-- that lets it into the queue with its turn reserved (so a backlog of held-back runs costs
-- other messages of the queue nothing). It takes its place in the queue's order now (.n, the
-- back counter's next), and goes into the ready set at that place.
local function parkForTurn(id, spec)
  local limit, period, key = rateOf(spec)
  if not limit then return false end
  flush()
  if park(rateListKey(key), id, redis.call('HINCRBY', counters, 'b', 1)) then
    armTurn(key, turnAt(rateBase(key, now().ms), limit, period))
  end
  return true
end
-- woke: a message was sent (arm the marker); moreReady: a receive took all it asked for;
-- markWanted: false when a worker chaining from task to task should wake no one.
local woke, moreReady, markWanted = false, false, true
-- The message fields of a run's hash (.b body, .p priority, .d deliveries, .r receipt while
-- leased, .a attempt, .q "1" while pending; .e and .s from sentAt), appended to the fields about to be written.
local function messageFields(f, body, priority, attempt)
  f[#f + 1] = '.b'; f[#f + 1] = body
  f[#f + 1] = '.p'; f[#f + 1] = priority
  f[#f + 1] = '.d'; f[#f + 1] = '0'
  f[#f + 1] = '.r'; f[#f + 1] = ''
  f[#f + 1] = '.a'; f[#f + 1] = attempt
  f[#f + 1] = '.q'; f[#f + 1] = '1'
  f[#f + 1] = '.v'; f[#f + 1] = ''
end
-- A message notes since when it waits (.e: when sent, or when due); a delayed one also when it
-- was sent (.s, the server's time in µs: a script takes longer than that, so a purge that began
-- later has a later time), so a purge can leave later ones alone. sentMs: the sender's
-- time ("" to read the server's), so an immediate send needs no TIME.
local function sentAt(f, notBefore, sentMs)
  if notBefore ~= '' and tonumber(notBefore) > now().ms then
    f[#f + 1] = '.e'; f[#f + 1] = notBefore
    f[#f + 1] = '.s'; f[#f + 1] = integer(now().us)
  else
    f[#f + 1] = '.e'; f[#f + 1] = sentMs ~= '' and sentMs or integer(now().ms)
  end
end
-- A sent message waits in the timers set until notBefore, in its rate key's list (rate: its .l),
-- or goes to the back of the ready set.
local function schedule(id, priority, notBefore, attempt, rate)
  if notBefore ~= '' and tonumber(notBefore) > now().ms then
    local kind = (tonumber(attempt) or 1) > 1 and 2 or 0
    local score = timerScore(tonumber(notBefore), kind, priority)
    redis.call('ZADD', timers, score, id)
    redis.call('HINCRBY', counters, delayedCounter(kind), 1)
    sawTimer(tonumber(score))
  elseif rate and parkForTurn(id, rate) then
    -- parked
  else
    toBack[#toBack + 1] = priority; toBack[#toBack + 1] = id
  end
  woke = true
end
-- Slots taken by this call (their leases reach the timers set when the call ends), and the keys
-- this call found full (until one of their slots frees).
local heldNow, fullKeys = {}, {}
-- Whether a concurrency key's slots are all held at ms: held are lease members whose lease is
-- still in the timers set and not expired, or taken by this call (others are dropped: their
-- holder ended or died). Fewer members than slots: free, without looking at them.
local function slotsFull(key, ms, limit)
  if fullKeys[key] then return true end
  if redis.call('ZCARD', slotsKey(key)) < limit then return false end
  local members = redis.call('ZRANGE', slotsKey(key), 0, -1)
  local live = 0
  for i = 1, #members do
    if heldNow[members[i]] then
      live = live + 1
    else
      local score = redis.call('ZSCORE', timers, members[i])
      if score and timerTime(tonumber(score)) > ms then live = live + 1
      else redis.call('ZREM', slotsKey(key), members[i]) end
    end
  end
  if live >= limit then fullKeys[key] = true end
  return live >= limit
end
local function holdSlot(spec, member)
  local _, key = concurrencyOf(spec)
  redis.call('ZADD', slotsKey(key), 0, member)
  heldNow[member] = true
end
-- Whether a message (its HMGET m: .p m[2], .l m[7], .k m[8], .v m[9]; seq its place in the ready
-- set) may be leased at ms: 'lease' (and whether it takes a slot) or 'park' (its concurrency key
-- is full, or no turn of its rate key is free: it waits in the key's list).
local function admit(id, m, ms, seq)
  local climit, ckey
  if m[8] then
    climit, ckey = concurrencyOf(m[8])
    if climit and slotsFull(ckey, ms, climit) then
      park(slotListKey(ckey), id, seq)
      return 'park', false
    end
  end
  if m[7] and m[9] ~= '1' then
    local limit, period, key = rateOf(m[7])
    if limit and period then
      local list = rateListKey(key)
      -- Others of the key wait for a turn already (their timer is armed): behind them.
      if redis.call('LLEN', list) > 0 then
        park(list, id, seq)
        return 'park', false
      end
      local base = rateBase(key, ms)
      if base - ms > period - period / limit then
        park(list, id, seq)
        armTurn(key, turnAt(base, limit, period))
        return 'park', false
      end
      reserveTurns(key, base, period / limit, 1, ms)
    end
  end
  return 'lease', climit ~= nil
end
-- A lease that held a concurrency slot (its receipt ends in k) ended: the slot frees and the
-- first parked message of its key goes to the front of the queue.
local function freeSlot(id, receipt)
  if string.sub(receipt, -1) ~= 'k' then return end
  local spec = redis.call('HGET', runKeyOf(id), '.k')
  if not spec then return end
  local _, key = concurrencyOf(spec)
  redis.call('ZREM', slotsKey(key), leaseMember(receipt, id))
  fullKeys[key] = nil
  local list = slotListKey(key)
  local next = redis.call('LPOP', list)
  if next then
    -- (Its .z and .n stay behind: nothing reads them while it is not in that list.)
    unparked(list, 1)
    toFront({ priorityOf(redis.call('HGET', runKeyOf(next), '.p')), next })
    woke = true
  end
end
-- The turn timer of a rate key came due at ms: as many of its parked messages as it has free
-- turns go to the front of the queue with their turns reserved (.v); the timer is armed again for
-- the next turn while any wait.
local function releaseTurns(key, ms)
  local list = rateListKey(key)
  local head = redis.call('LINDEX', list, 0)
  local limit, period
  if head then limit, period = rateOf(redis.call('HGET', runKeyOf(head), '.l') or '') end
  if not limit or not period then
    if head then
      -- Not a rate-limited message any more (replaced): it goes on without a turn.
      redis.call('LPOP', list)
      redis.call('HSET', runKeyOf(head), '.z', '', '.n', '')
      toFront({ priorityOf(redis.call('HGET', runKeyOf(head), '.p')), head })
      woke = true
      unparked(list, 1)
    end
    if redis.call('LLEN', list) > 0 then
      redis.call('ZADD', timers, timerScore(ms, 0, 9), turnMember(key))
    else
      redis.call('HINCRBY', counters, 'g', -1)
    end
    return
  end
  local step = period / limit
  local base = rateBase(key, ms)
  local n = 0
  if base - ms <= period - step then n = math.min(limit, math.floor((period - step - (base - ms)) / step + 1e-6) + 1) end
  if n > 0 then
    local ids = redis.call('LPOP', list, n) or {}
    local back = {}
    for i = 1, #ids do
      local r = redis.call('HMGET', runKeyOf(ids[i]), '.q', '.p', '.n')
      if r[1] == '1' then
        redis.call('HSET', runKeyOf(ids[i]), '.v', '1')
        -- Back in the ready set at the place it took when sent (or parked).
        back[#back + 1] = readyScore(priorityOf(r[2]), tonumber(r[3]) or 0); back[#back + 1] = ids[i]
      end
    end
    if #back > 0 then
      base = math.max(reserveTurns(key, base, step, #back / 2, ms), ms)
      redis.call('ZADD', readySet, unpack(back))
      poolDry = false
      woke = true
    end
    unparked(list, #ids)
  end
  if redis.call('LLEN', list) > 0 then
    local score = timerScore(math.max(turnAt(base, limit, period), ms + 1), 0, 9)
    redis.call('ZADD', timers, score, turnMember(key))
    sawTimer(tonumber(score))
  else
    redis.call('HINCRBY', counters, 'g', -1)
  end
end
-- The message of key is gone for good (acked or cancelled): a key holding only the message goes
-- with it; a run record keeps its fields and now expires as its last update asked (.t).
local function settle(key)
  local m = redis.call('HMGET', key, 'state', '.t')
  if not m[1] then redis.call('DEL', key); return end
  redis.call('HSET', key, '.q', '', '.r', '')
  if m[2] then redis.call('PEXPIRE', key, m[2]) end
end
`;
