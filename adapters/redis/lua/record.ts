/**
 * The ops on a run record without its message: a guarded update and a read.
 *
 * @module
 */

/**
 * update — merges (or replaces) a run record, atomically with a guard on its state.
 *   ARGV: runKey#, ttlMs, replace 1|0, want 1|0, nGuards, guard…, nFields, field, value, …
 *         (guards are states as stored, JSON, or "missing")
 *   reply: { applied 1|0, ~field, ~value, … } — the record before the update when `want`, else
 *          only its state when not applied
 * A key that still carries a pending message never expires (the message would go with it): the
 * TTL waits in .t until the message is settled.
 */
export const UPDATE = `
  local key, ttl, replace, want, nGuards = keyArg(), nextArg(), nextArg() == '1', nextArg() == '1', nextNumber()
  local guards = {}
  for i = 1, nGuards do guards[i] = nextArg() end
  local f = readFields(nextNumber())
  local current, state, pending = {}, 'missing', false
  if want then
    current = redis.call('HGETALL', key)
    for i = 1, #current, 2 do
      if current[i] == 'state' then state = current[i + 1] elseif current[i] == '.q' then pending = current[i + 1] == '1' end
    end
  else
    local m = redis.call('HMGET', key, 'state', '.q')
    state = m[1] or 'missing'
    pending = m[2] == '1'
  end
  local ok = nGuards == 0
  for i = 1, nGuards do if guards[i] == state then ok = true end end
  if ok then
    if replace and state ~= 'missing' then dropRecord(key) end
    if pending then f[#f + 1] = '.t'; f[#f + 1] = ttl end
    if #f > 0 then redis.call('HSET', key, unpack(f)) end
    if not pending then redis.call('PEXPIRE', key, ttl) end
    historyRecorded(string.sub(key, #queueBase + 6), f, state, replace)
  end
  if not ok and not want and state ~= 'missing' then current = { 'state', state } end
  res = tilde(current)
  table.insert(res, 1, ok and 1 or 0)
`;

/**
 * watch — reads a run record and marks the run watched (`.w`), so its end is announced on the
 * app's channel (see notify); a missing record is left alone.
 *   ARGV: runKey#
 *   reply: { ~field, ~value, … }
 */
export const WATCH = `
  local key = keyArg()
  local all = redis.call('HGETALL', key)
  if #all > 0 then redis.call('HSET', key, '.w', '1') end
  res = tilde(all)
`;

/**
 * notify — announces a watched run's end on the app's channel. A success is announced only when
 * the record says succeeded (a run cancelled while it ran is announced as another end).
 *   ARGV: runKey#, channel, id, resultJson | "" , success 1|0
 *   reply: 1
 */
export const NOTIFY = `
  local key, channel, id, result, success = keyArg(), nextArg(), nextArg(), nextArg(), nextArg() == '1'
  if success and redis.call('HGET', key, 'state') == SUCCEEDED then
    redis.call('PUBLISH', channel, 'S\\n' .. id .. '\\n' .. result)
  else
    redis.call('PUBLISH', channel, 'E\\n' .. id)
  end
`;

/**
 * get — reads a run record (its message's fields, starting with a dot, included).
 *   ARGV: runKey#
 *   reply: { ~field, ~value, … }
 */
export const GET = `
  res = tilde(redis.call('HGETALL', keyArg()))
`;
