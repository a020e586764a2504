/**
 * The ops that end a delivery: ack, succeed (ack + record a success) and retry (ack + record the
 * failed attempt + send the next one). Each first removes the lease from the timers set: that
 * removal is the check that the caller still holds it.
 *
 * @module
 */

/**
 * ack — removes a leased message for good.
 *   ARGV: id, receipt
 *   reply: 1 | 0 (the lease was not held: nothing changes)
 */
export const ACK = `
  local id, receipt = nextArg(), nextArg()
  if redis.call('ZREM', timers, leaseMember(receipt, id)) == 1 then
    freeSlot(id, receipt); settle(runKeyOf(id))
  else res = 0 end
`;

/**
 * succeed — acks a leased message and records the run's success (state "succeeded",
 * finishedAt = updatedAt = at, and the result unless "": the patch run-state's `successPatch`
 * describes), then the record takes its TTL.
 *   ARGV: id, receipt, ttlMs, at, resultJson | ""
 *   reply: 1 | 0 (the lease was lost, expired and taken again: the success is recorded all the
 *          same, and the message stays with its new holder) | 2 (the run was cancelled while it
 *          ran: nothing is recorded)
 */
export const SUCCEED = `
  local id, receipt, ttl, at, result = nextArg(), nextArg(), nextArg(), nextArg(), nextArg()
  local f = { 'state', SUCCEEDED, 'finishedAt', at, 'updatedAt', at }
  if result ~= '' then f[7] = 'result'; f[8] = result end
  local key = runKeyOf(id)
  if redis.call('ZREM', timers, leaseMember(receipt, id)) == 1 then
    freeSlot(id, receipt)
    f[#f + 1] = '.q'; f[#f + 1] = ''
    f[#f + 1] = '.r'; f[#f + 1] = ''
    redis.call('HSET', key, unpack(f))
    redis.call('PEXPIRE', key, ttl)
  else
    local m = redis.call('HMGET', key, '.q', 'state')
    if m[2] == CANCELLED then
      res = 2
      f = nil
    elseif m[1] == '1' then
      res = 0
      f[#f + 1] = '.t'; f[#f + 1] = ttl
      redis.call('HSET', key, unpack(f))
    else
      res = 0
      redis.call('HSET', key, unpack(f))
      redis.call('PEXPIRE', key, ttl)
    end
  end
  if f then historyChanged(id, SUCCEEDED, tonumber(at)) end
`;

/**
 * retry — acks a leased message, records the failed attempt and sends the next attempt's message,
 * in one step. The record's key holds the next message, so it keeps no TTL.
 *   ARGV: id, receipt, priority, notBefore | "", body, attempt | "", nFields, field, value, …
 *   reply: 1 | 0 (the lease was not held; the next attempt replaces whatever message the run has)
 *          | 2 (the run was cancelled while it ran: nothing is sent)
 */
export const RETRY = `
  local id, receipt, priority, notBefore, body, attempt = nextArg(), nextArg(), nextNumber(), nextArg(), nextArg(), nextArg()
  local f = readFields(nextNumber())
  local key = runKeyOf(id)
  local send = true
  if redis.call('ZREM', timers, leaseMember(receipt, id)) == 1 then
    freeSlot(id, receipt)
  else
    local was = redis.call('HMGET', key, '.q', '.r', 'state')
    if was[3] == CANCELLED then
      res = 2; send = false
    else
      res = 0
      if was[1] == '1' then unqueue(id, was[2]) end
    end
  end
  if send then
    messageFields(f, body, priority, attempt)
    sentAt(f, notBefore, '')
    redis.call('HSET', key, unpack(f))
    schedule(id, priority, notBefore, attempt, fieldOf(f, '.l'))
    local state = fieldOf(f, 'state')
    if state then historyChanged(id, state) end
  end
`;
