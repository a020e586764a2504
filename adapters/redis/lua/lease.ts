/**
 * The ops on a lease that do not end the delivery (renew, release) and cancelling a message that
 * was not delivered.
 *
 * @module
 */

/**
 * renew — extends a lease from now, and the claim its delivery holds (an idempotency key's, or a
 * run's), so the claim lapses with the lease when its worker dies.
 *   ARGV: id, receipt, leaseMs, claimKey# | "", holder | ""
 *   reply: 1 (held) | 0 (lost: expired and perhaps taken again, or settled) | 2 (the run was
 *          cancelled while it ran)
 */
export const RENEW = `
  local id, receipt, leaseMs, claim, holder = nextArg(), nextArg(), nextNumber(), nextArg(), nextArg()
  local member = leaseMember(receipt, id)
  if redis.call('ZSCORE', timers, member) then
    local priority = priorityOf(redis.call('HGET', runKeyOf(id), '.p'))
    redis.call('ZADD', timers, timerScore(now().ms + leaseMs, 1, priority), member)
    if claim ~= '' and redis.call('GET', KEYS[tonumber(claim)]) == holder then
      redis.call('PEXPIRE', KEYS[tonumber(claim)], leaseMs)
    end
  elseif redis.call('HGET', runKeyOf(id), 'state') == CANCELLED then
    res = 2
  else
    res = 0
  end
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
    freeSlot(id, receipt)
    local key = runKeyOf(id)
    local priority = priorityOf(redis.call('HGET', key, '.p'))
    redis.call('HSET', key, '.r', '')
    toFront({ priority, id }); woke = true
  else res = 0 end
`;

/**
 * cancel — removes a message that is waiting (ready, delayed or parked by a limit); with `leased` 1, also the lease
 * of one being run (its holder's renewals then report it cancelled, its outcome is not recorded).
 *   ARGV: id, leased 1|0
 *   reply: 1 | 0
 */
export const CANCEL = `
  flush()
  local id, leased = nextArg(), nextArg() == '1'
  local key = runKeyOf(id)
  local was = redis.call('HMGET', key, '.q', '.r')
  if was[1] ~= '1' then
    res = 0
  elseif (was[2] or '') ~= '' then
    if not leased then res = 0
    elseif redis.call('ZREM', timers, leaseMember(was[2], id)) == 1 then
      freeSlot(id, was[2]); settle(key)
    else res = 0 end
  elseif redis.call('ZREM', readySet, id) == 1 or undelay(id) or unpark(id) then
    settle(key)
  else res = 0 end
`;
