/**
 * The queue script, put together: the prelude, one dispatch branch per op (each op's code in its
 * own fragment, with its ARGV and reply), and the epilogue that writes what the ops batched
 * (new leases, messages popped and not handed out, messages sent, the wake-up marker).
 *
 * Reply convention: every string a script returns starts with `~`, so a REST client that
 * JSON-parses string results (`@upstash/redis` does by default) leaves it alone; the client
 * strips the `~`. Integers travel as integers, absent values as nil.
 *
 * @module
 */
import { COUNTS, LIST, PAUSE, PURGE } from "./admin.ts";
import { type HistoryConfig, historyWrites } from "./history.ts";
import { DEAD_ADD, DEAD_DELETE, DEAD_LIST, DEAD_PURGE, DEAD_TAKE, DEAD_TRIM } from "./dead-letters.ts";
import { ENQUEUE } from "./enqueue.ts";
import { CLAIM, OWN, OWNER, UNCLAIM } from "./idempotency.ts";
import { CANCEL, RELEASE, RENEW } from "./lease.ts";
import { OP, type OpCode } from "./_ops.ts";
import { PRELUDE } from "./prelude.ts";
import { RECEIVE } from "./receive.ts";
import { GET, NOTIFY, UPDATE, WATCH } from "./record.ts";
import { ACK, RETRY, SUCCEED } from "./settle.ts";

/** The history the backend keeps unless told otherwise (`RedisOptions.history`). */
export const DEFAULT_HISTORY: HistoryConfig = { maxRuns: 100_000, changes: 1_000, keyTtlMs: 86_400_000 };

const SCRIPTS = new Map<string, Script>();

/** A Lua script and its name (its SHA-1 is computed by the client). */
export interface Script {
  readonly name: string;
  readonly source: string;
}

const BRANCHES: readonly (readonly [OpCode, string])[] = [
  [OP.enqueue, ENQUEUE],
  [OP.receive, RECEIVE],
  [OP.ack, ACK],
  [OP.succeed, SUCCEED],
  [OP.retry, RETRY],
  [OP.renew, RENEW],
  [OP.release, RELEASE],
  [OP.cancel, CANCEL],
  [OP.update, UPDATE],
  [OP.get, GET],
  [OP.watch, WATCH],
  [OP.notify, NOTIFY],
  [OP.deadAdd, DEAD_ADD],
  [OP.deadList, DEAD_LIST],
  [OP.deadTake, DEAD_TAKE],
  [OP.deadDelete, DEAD_DELETE],
  [OP.deadPurge, DEAD_PURGE],
  [OP.owner, OWNER],
  [OP.own, OWN],
  [OP.claim, CLAIM],
  [OP.unclaim, UNCLAIM],
  [OP.counts, COUNTS],
  [OP.pause, PAUSE],
  [OP.purge, PURGE],
  [OP.list, LIST],
];

/** Ops that do not look leases up by member, so they need not see the call's new leases first. */
const NO_LEASE_LOOKUP: readonly OpCode[] = [OP.receive, OP.succeed];

const dispatch = BRANCHES.map(
  ([code, body], i) => `  ${i === 0 ? "if" : "elseif"} op == '${code}' then${body.replace(/\n$/, "")}`,
).join("\n");

const queueLua = (history: HistoryConfig | false) => `${PRELUDE}${historyWrites(history)}${DEAD_TRIM}
local out = {}
while argAt <= #ARGV do
  local op = nextArg()
  local res = 1
  -- Ops that look leases up by member see the ones this call took (a lease taken in this call
  -- cannot have reached a worker yet, so receive and succeed need not).
  if ${NO_LEASE_LOOKUP.map((code) => `op ~= '${code}'`).join(" and ")} then flushLeases() end
${dispatch}
  else
    return redis.error_reply('celeriac: unknown queue op ' .. tostring(op))
  end
  out[#out + 1] = res
end
flushLeases()
flushParked()
-- Popped but not handed out (only when ARGV[1] asked for more than the receive ops took): back
-- to the ready set as they were.
if poolAt <= #pool then
  local scored = {}
  for i = poolAt, #pool, 2 do scored[#scored + 1] = pool[i + 1]; scored[#scored + 1] = pool[i] end
  redis.call('ZADD', readySet, unpack(scored))
end
flush()
historyEnd()
-- A receive that took all it asked for re-arms the marker only when more is ready (and only
-- when it was asked to: a worker chaining from task to task wakes no one).
if woke or (moreReady and markWanted and redis.call('ZCARD', readySet) > 0) then
  redis.call('ZADD', wakeMarker, 0, '1')
end
return out
`;

/**
 * Runs a list of operations on one queue. KEYS: the six queue keys, then run, idempotency and
 * claim keys. Commands per op (besides the EVALSHA):
 * - enqueue: HSET (record and message in one hash), ZADD (ready or timers), HINCRBY once per
 *   call, ZADD marker once per call; an id not freshly generated first reads the old message
 *   (HMGET; ZREMs when it was pending), drops an old record (HKEYS, HDEL) and ends with
 *   PERSIST; + GET, SET with an idempotency key; + TIME when `notBefore` is set.
 * - receive: per message HMGET + HSET (the start is in the same HSET); once per call, however
 *   many receive ops it has: TIME, ZRANGE timers head, ZPOPMIN, one ZADD for the leases; + ZCARD
 *   (and ZADD marker when more is ready) when it took `max` and may mark; due delayed messages
 *   and expired leases add ZRANGEBYSCORE, ZREM, HINCRBY, ZADD (+ HMGET, HSET per expired lease)
 *   when present.
 * - succeed (ack + record): ZREM, HSET, PEXPIRE. retry (ack + record + next message): ZREM, HSET,
 *   and the enqueue's ZADD. ack: ZREM, HMGET, HSET [, PEXPIRE].
 *   renew: ZSCORE, HGET, TIME, ZADD. release: ZREM, HGET, HSET, HINCRBY, ZADD.
 * - update: HGETALL (`want`) or HMGET state, [HKEYS, HDEL], HSET, PEXPIRE (not while a message is
 *   pending in the key: the TTL waits in `.t` until the message is settled).
 * - dead letter: HSET, TIME, ZADD, ZRANGEBYSCORE (trim) [, HDEL, ZREM]. own: SET. owner: GET. claim: GET [, SET]. unclaim: GET [, DEL].
 * - counts (operators'): HMGET, ZSCORE, ZCARD ×2, HLEN, and per priority with waiting messages a
 *   ZRANGEBYSCORE + HMGET (oldest). pause: ZADD or ZREM. purge and list: pages (see admin.ts).
 * Keeping the counts costs the task path nothing but an HINCRBY when a delayed message is sent or
 * promoted (the ready and timers sets' sizes are the rest).
 * The run history (history.ts) adds, per call: one ZADD to each index its ops wrote (the queue's
 * and the task's for runs created, an ended state's for runs ended; + ZADD, PEXPIRE per run with
 * an idempotency key);
 * per call that changed a state, an EXISTS (is the log read?) and, while it is, an XADD per
 * change; once per 64 messages sent, a ZREMRANGEBYRANK per index (the cap).
 */
export const QUEUE_SCRIPT: Script = queueScript(DEFAULT_HISTORY);

/** The queue script keeping the given history (or none). */
export function queueScript(history: HistoryConfig | false): Script {
  const key = history === false ? "" : `${history.maxRuns}.${history.changes}.${history.keyTtlMs}`;
  let script = SCRIPTS.get(key);
  if (script === undefined) {
    script = { name: "celeriac.queue", source: queueLua(history) };
    SCRIPTS.set(key, script);
  }
  return script;
}
