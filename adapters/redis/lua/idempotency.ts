/**
 * The idempotency ops. Keys are scoped per task and queue (`keys.ts` in the core) and live under
 * the queue's hash tag, so they are read and written in the same slot as the queue.
 *
 * @module
 */

/**
 * owner — the run an idempotency key maps to.
 *   ARGV: idemKey#
 *   reply: ~runId | nil
 */
export const OWNER = `
  local v = redis.call('GET', keyArg())
  res = v and ('~' .. v) or false
`;

/**
 * own — maps an idempotency key to a run (the one whose effect happened).
 *   ARGV: idemKey#, runId, ttlMs
 *   reply: 1
 */
export const OWN = `
  local key, id, ttl = keyArg(), nextArg(), nextArg()
  redis.call('SET', key, id, 'PX', ttl)
`;

/**
 * claim — takes the run-time claim of a key for a holder unless another holder has it. Holders
 * are `runId:receipt`: a claim left by an earlier delivery of the same run whose lease is gone
 * (its worker died, the message was delivered again) is taken over at once.
 *   ARGV: claimKey#, holder, ttlMs, runId
 *   reply: nil (taken, or already this holder's) | { ~holder, msLeft } (someone else has it)
 */
export const CLAIM = `
  local key, holder, ttl, runId = keyArg(), nextArg(), nextArg(), nextArg()
  local current = redis.call('GET', key)
  local prefix = runId .. ':'
  local stale = current and current ~= holder and string.sub(current, 1, #prefix) == prefix
    and not redis.call('ZSCORE', timers, leaseMember(string.sub(current, #prefix + 1), runId))
  if not current or stale then
    redis.call('SET', key, holder, 'PX', ttl)
    res = false
  elseif current == holder then
    res = false
  else
    res = { '~' .. current, redis.call('PTTL', key) }
  end
`;

/**
 * unclaim — frees a claim when the holder still has it.
 *   ARGV: claimKey#, holder
 *   reply: 1 | 0
 */
export const UNCLAIM = `
  local key, holder = keyArg(), nextArg()
  if redis.call('GET', key) == holder then redis.call('DEL', key) else res = 0 end
`;
