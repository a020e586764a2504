/**
 * Operators' ops of the queue script: counts, pause and resume, purge, listing. None is on a
 * task's path; each count is a counter or a set's size.
 *
 * @module
 */
import { storedState } from "../../../backend.ts";

/** The stored states a purge cancels (a run that has not started). */
const PURGEABLE = `{ ['${storedState("queued")}'] = true, ['${storedState("scheduled")}'] = true, ['${storedState("retrying")}'] = true }`;

/**
 * counts — the queue's counts.
 *   ARGV: (none)
 *   reply: { waiting, scheduled, retrying, active, paused 1|0, dead letters, oldest waiting
 *          since (epoch ms) | -1, limited }
 * The oldest waiting message is the oldest head of the ten priorities (one range read each).
 */
export const COUNTS = `
  flushParked()
  local c = redis.call('HMGET', counters, 'd', 'y', 'g', 'l')
  local function count(v) return math.max(tonumber(v) or 0, 0) end
  local d, y, g, l = count(c[1]), count(c[2]), count(c[3]), count(c[4])
  local isPaused = redis.call('ZSCORE', timers, PAUSED) and 1 or 0
  local waiting = redis.call('ZCARD', readySet)
  local active = math.max(redis.call('ZCARD', timers) - d - y - g - isPaused, 0)
  local oldest = -1
  if waiting > 0 then
    for p = 9, 0, -1 do
      local mid = (9 - p) * 1e14
      local head = redis.call('ZRANGEBYSCORE', readySet, integer(mid - 5e13), integer(mid + 5e13), 'LIMIT', 0, 1)
      if head[1] then
        local since = tonumber(redis.call('HGET', runKeyOf(head[1]), '.e')) or 0
        if since > 0 and (oldest < 0 or since < oldest) then oldest = since end
      end
    end
  end
  res = { waiting, d, y, active, isPaused, redis.call('HLEN', deadLetters), oldest, l }
`;

/**
 * pause — pauses (1) or resumes (0) the queue: the PAUSED member heads the timers set while
 * paused, so every receive sees it with the timers check it makes anyway (no extra command).
 *   ARGV: 1 | 0
 *   reply: 1
 */
export const PAUSE = `
  if nextArg() == '1' then
    redis.call('ZADD', timers, -1, PAUSED)
  elseif redis.call('ZREM', timers, PAUSED) == 1 then
    woke = true
  end
`;

/**
 * purge — removes up to `limit` messages that were waiting, delayed or parked by a limit when the
 * purge began: ready ones with a sequence up to `back` (the back counter then), delayed ones sent
 * (.s) before `at` (µs), parked ones with a place in the queue's order (.n) up to `back`; their
 * runs that had not started are marked cancelled and expire after `ttl`.
 * A parked list is taken whole (rewritten with the ones that stay).
 *   ARGV: back | "" (first call: read it now), at | "", limit, ttl, phase ("r" ready, "t"
 *         delayed, "p" parked), cursor (the timers scan's for phase t; the last list's name for p)
 *   reply: { removed, back, at, next phase ("r", "t", "p" or "" when done), next cursor }
 */
export const PURGE = `
  local PURGEABLE = ${PURGEABLE}
  local back, at, limit, ttl, phase, cursor = nextArg(), nextArg(), nextNumber(), nextArg(), nextArg(), nextArg()
  if back == '' then
    back = redis.call('HGET', counters, 'b') or '0'
    at = integer(now().us)
  end
  local removed = 0
  local function drop(id)
    local key = runKeyOf(id)
    local state = redis.call('HGET', key, 'state')
    if state and PURGEABLE[state] then
      local t = integer(now().ms)
      redis.call('HSET', key, 'state', CANCELLED, 'finishedAt', t, 'updatedAt', t, '.t', ttl)
      historyChanged(id, CANCELLED, t)
    end
    settle(key)
    removed = removed + 1
  end
  if phase == 'r' then
    local ids = {}
    for p = 9, 0, -1 do
      if #ids >= limit then break end
      local mid = (9 - p) * 1e14
      local found = redis.call('ZRANGEBYSCORE', readySet, integer(mid - 5e13), integer(mid + tonumber(back)), 'LIMIT', 0, limit - #ids)
      for i = 1, #found do ids[#ids + 1] = found[i] end
    end
    if #ids > 0 then redis.call('ZREM', readySet, unpack(ids)) end
    for i = 1, #ids do drop(ids[i]) end
    if #ids < limit then phase = 't'; cursor = '0' end
  end
  if phase == 't' and removed < limit then
    local scan = redis.call('ZSCAN', timers, cursor, 'COUNT', limit)
    cursor = scan[1]
    local list = scan[2]
    for i = 1, #list, 2 do
      local member, score = list[i], tonumber(list[i + 1])
      local kind = timerKind(score)
      if member ~= PAUSED and kind ~= 1 and string.sub(member, 1, 1) ~= '!' then
        local sent = tonumber(redis.call('HGET', runKeyOf(member), '.s'))
        if not sent or sent < tonumber(at) then
          redis.call('ZREM', timers, member)
          redis.call('HINCRBY', counters, delayedCounter(kind), -1)
          drop(member)
        end
      end
    end
    if cursor == '0' then phase = 'p'; cursor = '' end
  end
  if phase == 'p' then
    while removed < limit do
      local from = cursor == '' and '-' or '(' .. cursor
      local name = redis.call('ZRANGEBYLEX', parkedLists, from, '+', 'LIMIT', 0, 1)[1]
      if not name then phase = ''; break end
      cursor = name
      local ids = redis.call('LRANGE', name, 0, -1)
      local keep, gone = {}, 0
      for i = 1, #ids do
        local m = redis.call('HMGET', runKeyOf(ids[i]), '.n', '.z')
        local seq = tonumber(m[1])
        if m[2] == name and seq and seq <= tonumber(back) then
          redis.call('HSET', runKeyOf(ids[i]), '.z', '', '.n', '')
          drop(ids[i]); gone = gone + 1
        else
          keep[#keep + 1] = ids[i]
        end
      end
      if gone > 0 then
        redis.call('DEL', name)
        for i = 1, #keep, 1000 do redis.call('RPUSH', name, unpack(keep, i, math.min(i + 999, #keep))) end
        unparked(name, gone)
      end
    end
  end
  res = { removed, '~' .. back, '~' .. at, '~' .. phase, '~' .. cursor }
`;

/**
 * list — a page of the queue's messages: phase "r" pages the ready set by rank (from `cursor`),
 * phase "t" scans the timers set (ZSCAN `cursor`), phase "p" the parked lists (`cursor`
 * "index:list name", or "" from the first).
 *   ARGV: phase, cursor, limit
 *   reply: { next phase ("r", "t", "p" or ""), next cursor, then per message: ~id, ~task JSON |
 *          "", ~state code (w waiting, s scheduled, y retrying, l limited, a active), at | -1 }
 */
export const LIST = `
  local phase, cursor, limit = nextArg(), nextArg(), nextNumber()
  res = {}
  local out = {}
  local function add(id, code, at)
    local task = redis.call('HGET', runKeyOf(id), 'task')
    out[#out + 1] = '~' .. id; out[#out + 1] = '~' .. (task or ''); out[#out + 1] = '~' .. code; out[#out + 1] = at
  end
  if phase == 'r' then
    local from = tonumber(cursor) or 0
    local ids = redis.call('ZRANGE', readySet, from, from + limit - 1)
    for i = 1, #ids do add(ids[i], 'w', -1) end
    if #ids < limit then phase = 't'; cursor = '0' else cursor = tostring(from + #ids) end
  elseif phase == 't' then
    local scan = redis.call('ZSCAN', timers, cursor, 'COUNT', limit)
    cursor = scan[1]
    local list = scan[2]
    for i = 1, #list, 2 do
      local member, score = list[i], tonumber(list[i + 1])
      if string.sub(member, 1, 1) ~= '!' then
        local kind = timerKind(score)
        if kind == 1 then
          local _, id = splitLease(member)
          add(id, 'a', timerTime(score))
        else
          add(member, kind == 2 and 'y' or 's', timerTime(score))
        end
      end
    end
    if cursor == '0' then phase = 'p'; cursor = '' end
  else
    local index, name = string.match(cursor, '^(%d+):(.*)$')
    index = tonumber(index) or 0
    local listed = 0
    while listed < limit do
      local found = redis.call('ZRANGEBYLEX', parkedLists, name and '[' .. name or '-', '+', 'LIMIT', 0, 1)[1]
      if not found then phase = ''; cursor = ''; break end
      if found ~= name then index = 0; name = found end
      -- A rate key's parked messages wait for its next turn (its timer); a slot has no time.
      local at = -1
      if string.sub(name, #queueBase + 1, #queueBase + 4) == ':rw:' then
        local key = string.sub(name, #queueBase + 5)
        local score = redis.call('ZSCORE', timers, turnMember(key))
        if score then at = timerTime(tonumber(score)) end
      end
      local ids = redis.call('LRANGE', name, index, index + limit - listed - 1)
      for i = 1, #ids do add(ids[i], 'l', at) end
      listed = listed + #ids
      index = index + #ids
      cursor = integer(index) .. ':' .. name
      if listed < limit then
        local nextName = redis.call('ZRANGEBYLEX', parkedLists, '(' .. name, '+', 'LIMIT', 0, 1)[1]
        if not nextName then phase = ''; cursor = ''; break end
        name = nextName; index = 0
      end
    end
  end
  res = { '~' .. phase, '~' .. cursor }
  for i = 1, #out do res[#res + 1] = out[i] end
`;
