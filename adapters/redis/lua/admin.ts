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
 *          since (epoch ms) | -1 }
 * The oldest waiting message is the oldest head of the ten priorities (one range read each).
 */
export const COUNTS = `
  local c = redis.call('HMGET', counters, 'd', 'y')
  local d, y = math.max(tonumber(c[1]) or 0, 0), math.max(tonumber(c[2]) or 0, 0)
  local isPaused = redis.call('ZSCORE', timers, PAUSED) and 1 or 0
  local waiting = redis.call('ZCARD', readySet)
  local active = math.max(redis.call('ZCARD', timers) - d - y - isPaused, 0)
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
  res = { waiting, d, y, active, isPaused, redis.call('HLEN', deadLetters), oldest }
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
 * purge — removes up to `limit` messages that were waiting or delayed when the purge began:
 * ready ones with a sequence up to `back` (the back counter then), delayed ones sent (.s) before
 * `at` (µs); their runs that had not started are marked cancelled and expire after `ttl`.
 *   ARGV: back | "" (first call: read it now), at | "", limit, ttl, phase ("r" ready, "t" delayed),
 *         cursor (the timers scan's, for phase t)
 *   reply: { removed, back, at, next phase ("r", "t" or "" when done), next cursor }
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
      if member ~= PAUSED and kind ~= 1 then
        local sent = tonumber(redis.call('HGET', runKeyOf(member), '.s'))
        if not sent or sent < tonumber(at) then
          redis.call('ZREM', timers, member)
          redis.call('HINCRBY', counters, delayedCounter(kind), -1)
          drop(member)
        end
      end
    end
    if cursor == '0' then phase = '' end
  end
  res = { removed, '~' .. back, '~' .. at, '~' .. phase, '~' .. cursor }
`;

/**
 * list — a page of the queue's messages: phase "r" pages the ready set by rank (from `cursor`),
 * phase "t" scans the timers set (ZSCAN `cursor`).
 *   ARGV: phase, cursor, limit
 *   reply: { next phase ("r", "t" or ""), next cursor, then per message: ~id, ~task JSON | "",
 *          ~state code (w waiting, s scheduled, y retrying, a active), at | -1 }
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
  else
    local scan = redis.call('ZSCAN', timers, cursor, 'COUNT', limit)
    cursor = scan[1]
    local list = scan[2]
    for i = 1, #list, 2 do
      local member, score = list[i], tonumber(list[i + 1])
      if member ~= PAUSED then
        local kind = timerKind(score)
        if kind == 1 then
          local _, id = splitLease(member)
          add(id, 'a', timerTime(score))
        else
          add(member, kind == 2 and 'y' or 's', timerTime(score))
        end
      end
    end
    if cursor == '0' then phase = '' end
  end
  res = { '~' .. phase, '~' .. cursor }
  for i = 1, #out do res[#res + 1] = out[i] end
`;
