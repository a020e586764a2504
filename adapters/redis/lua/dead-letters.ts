/**
 * The dead-letter ops: a hash of entries by run id and an index by time added.
 *
 * @module
 */

/**
 * deadAdd — keeps a dead letter (replacing one with the same id).
 *   ARGV: id, json
 *   reply: 1
 */
export const DEAD_ADD = `
  local id, json = nextArg(), nextArg()
  redis.call('HSET', deadLetters, id, json)
  redis.call('ZADD', deadIndex, integer(now().us), id)
`;

/**
 * deadList — the newest dead letters.
 *   ARGV: limit
 *   reply: { microsAdded, ~json, … } newest first
 */
export const DEAD_LIST = `
  local list = redis.call('ZREVRANGE', deadIndex, 0, nextNumber() - 1, 'WITHSCORES')
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
