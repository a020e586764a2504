/**
 * The ops on a lease that do not end the delivery (renew, release) and cancelling a message that
 * was not delivered.
 *
 * @module
 */

/**
 * renew — extends a lease from now.
 *   ARGV: id, receipt, leaseMs
 *   reply: 1 | 0 (the lease is not held)
 */
export const RENEW = `
  local id, receipt, leaseMs = nextArg(), nextArg(), nextNumber()
  local member = leaseMember(receipt, id)
  if redis.call('ZSCORE', timers, member) then
    local priority = priorityOf(redis.call('HGET', runKeyOf(id), '.p'))
    redis.call('ZADD', timers, timerScore(now().ms + leaseMs, 1, priority), member)
  else res = 0 end
`;

/**
 * release — gives a leased message back to the front of its priority at once (graceful stop).
 *   ARGV: id, receipt
 *   reply: 1 | 0 (the lease is not held)
 */
export const RELEASE = `
  flush()
  local id, receipt = nextArg(), nextArg()
  if redis.call('ZREM', timers, leaseMember(receipt, id)) == 1 then
    local key = runKeyOf(id)
    local priority = priorityOf(redis.call('HGET', key, '.p'))
    redis.call('HSET', key, '.r', '')
    toFront({ priority, id }); woke = true
  else res = 0 end
`;

/**
 * cancel — removes a message that is waiting (ready or delayed, not leased).
 *   ARGV: id
 *   reply: 1 | 0
 */
export const CANCEL = `
  flush()
  local id = nextArg()
  local key = runKeyOf(id)
  local was = redis.call('HMGET', key, '.q', '.r')
  if was[1] == '1' and (was[2] or '') == '' and (redis.call('ZREM', readySet, id) + redis.call('ZREM', timers, id)) > 0 then
    settle(key)
  else res = 0 end
`;
