/**
 * The dead-letter ops: a hash of entries by run id and an index by time added (microseconds).
 * Entries older than their retention are trimmed whenever one is added or the list is read.
 *
 * @module
 */

/** Trims dead letters added more than `retentionMs` ago (at most 1,000 a call). */
export const DEAD_TRIM = `
local function trimDead(retentionMs)
  local cutoff = integer(now().us - retentionMs * 1000)
  local old = redis.call('ZRANGEBYSCORE', deadIndex, '-inf', '(' .. cutoff, 'LIMIT', 0, 1000)
  if #old > 0 then
    redis.call('HDEL', deadLetters, unpack(old))
    redis.call('ZREM', deadIndex, unpack(old))
  end
end
`;

/**
 * deadAdd — keeps a dead letter (replacing one with the same id), trimming expired ones.
 *   ARGV: id, json, retentionMs
 *   reply: 1
 */
export const DEAD_ADD = `
  local id, json, retention = nextArg(), nextArg(), nextNumber()
  redis.call('HSET', deadLetters, id, json)
  redis.call('ZADD', deadIndex, integer(now().us), id)
  trimDead(retention)
`;

/**
 * deadDelete — deletes a dead letter.
 *   ARGV: id
 *   reply: 1 | 0 (none with that id)
 */
export const DEAD_DELETE = `
  local id = nextArg()
  res = redis.call('HDEL', deadLetters, id)
  redis.call('ZREM', deadIndex, id)
`;

/**
 * deadPurge — deletes every dead letter of the queue.
 *   ARGV: (none)
 *   reply: how many there were
 */
export const DEAD_PURGE = `
  res = redis.call('HLEN', deadLetters)
  redis.call('DEL', deadLetters, deadIndex)
`;

/**
 * deadList — the newest dead letters, after trimming expired ones.
 *   ARGV: limit, retentionMs
 *   reply: { microsAdded, ~json, … } newest first
 */
export const DEAD_LIST = `
  local limit = nextNumber()
  trimDead(nextNumber())
  local list = redis.call('ZREVRANGE', deadIndex, 0, limit - 1, 'WITHSCORES')
  res = {}
  if #list > 0 then
    local ids = {}
    for i = 1, #list, 2 do ids[#ids + 1] = list[i] end
    local jsons = redis.call('HMGET', deadLetters, unpack(ids))
    for i = 1, #ids do
      if jsons[i] then res[#res + 1] = tonumber(list[2 * i]); res[#res + 1] = '~' .. jsons[i] end
    end
  end
`;

/**
 * deadTake — removes and returns a dead letter.
 *   ARGV: id
 *   reply: ~json | nil
 */
export const DEAD_TAKE = `
  local id = nextArg()
  local json = redis.call('HGET', deadLetters, id)
  if json then
    redis.call('HDEL', deadLetters, id); redis.call('ZREM', deadIndex, id)
    res = '~' .. json
  else res = false end
`;
