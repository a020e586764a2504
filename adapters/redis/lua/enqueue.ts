/**
 * The enqueue op of the queue script.
 *
 * @module
 */

/**
 * enqueue — sends a message, (re)creating the run record; with an idempotency key, only if no
 * run holds it.
 *   ARGV: id, priority, notBefore | "", body, attempt | "", fresh 1|0, runKey# | "", sentMs
 *         (the sender's clock), nFields, field, value, …, idemKey# | "", idemTtlMs
 *   reply: nil (sent) | ~owner (the run holding the key; nothing sent)
 * `fresh`: the id was generated for this run just now, so no earlier message or record can exist
 * (one HSET, no checks). The record key keeps no TTL while its message is pending.
 */
export const ENQUEUE = `
  local id, priority, notBefore, body, attempt = nextArg(), nextNumber(), nextArg(), nextArg(), nextArg()
  local fresh, recordKey, sentMs = nextArg() == '1', nextArg(), nextArg()
  local f = readFields(nextNumber())
  local idemKey, idemTtl = nextArg(), nextArg()
  local owner = false
  if idemKey ~= '' then
    owner = redis.call('GET', KEYS[tonumber(idemKey)])
    if not owner then redis.call('SET', KEYS[tonumber(idemKey)], id, 'PX', idemTtl) end
  end
  if owner then
    res = '~' .. owner
  else
    res = false
    local key = recordKey ~= '' and KEYS[tonumber(recordKey)] or runKeyOf(id)
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
    schedule(id, priority, notBefore, attempt)
  end
`;
