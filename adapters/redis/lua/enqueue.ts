/**
 * The enqueue op of the queue script.
 *
 * @module
 */

/**
 * enqueue — sends a message, (re)creating the run record; with an idempotency key, only if no
 * run holds it; with guards, only while the run waits (a debounced enqueue replacing its input).
 *   ARGV: id, priority, notBefore | "", body, attempt | "", fresh 1|0, runKey# | "", sentMs
 *         (the sender's clock), nFields, field, value, …, idemKey# | "", idemTtlMs, nGuards,
 *         guard… (states as stored, JSON, or "missing")
 *   reply: nil (sent) | ~owner (the run holding the key; nothing sent) | 0 (guarded: the run's
 *          state is not listed, or its message is leased; nothing sent)
 * `fresh`: the id was generated for this run just now, so no earlier message or record can exist
 * (one HSET, no checks). The record key keeps no TTL while its message is pending.
 */
export const ENQUEUE = `
  local id, priority, notBefore, body, attempt = nextArg(), nextNumber(), nextArg(), nextArg(), nextArg()
  local fresh, recordKey, sentMs = nextArg() == '1', nextArg(), nextArg()
  local f = readFields(nextNumber())
  local idemKey, idemTtl = nextArg(), nextArg()
  local nGuards = nextNumber()
  local key = recordKey ~= '' and KEYS[tonumber(recordKey)] or runKeyOf(id)
  -- With guards, only while the run waits: its state is listed and its message is not leased.
  local waits = nGuards == 0
  if nGuards > 0 then
    local was = redis.call('HMGET', key, 'state', '.r')
    local state, leased = was[1] or 'missing', was[2] and was[2] ~= ''
    for i = 1, nGuards do
      if nextArg() == state and not leased then waits = true end
    end
  end
  local owner = false
  if waits and idemKey ~= '' then
    owner = redis.call('GET', KEYS[tonumber(idemKey)])
    if not owner then redis.call('SET', KEYS[tonumber(idemKey)], id, 'PX', idemTtl) end
  end
  if not waits then
    res = 0
  elseif owner then
    res = '~' .. owner
  else
    res = false
    messageFields(f, body, priority, attempt)
    sentAt(f, notBefore, sentMs)
    if fresh then
      redis.call('HSET', key, unpack(f))
    else
      -- An id seen before: replace its pending message, if any; a new record replaces the old.
      local was = redis.call('HMGET', key, '.q', '.r')
      if was[1] == '1' then unqueue(id, was[2]) end
      if recordKey ~= '' then dropRecord(key) end
      redis.call('HSET', key, unpack(f))
      redis.call('PERSIST', key)
    end
    historyAdded(id, f, true)
    schedule(id, priority, notBefore, attempt, fieldOf(f, '.l'))
  end
`;
