/**
 * The key namespace: every key the core writes to a store, named in one place. Backends map
 * these names to their storage (the memory backend as they are; the Redis backend under its
 * prefix, and a {@link QueueKey} under the queue's hash tag, so a script can touch it in the
 * same slot as the queue).
 *
 * Idempotency keys are scoped **per task and queue**: the same key given to two tasks, or to
 * one task on two queues (a queue override at enqueue), names two runs. That is one rule on
 * every backend, and it keeps a key in its queue's slot on Redis Cluster, as BullMQ's job ids
 * are per queue.
 *
 * @example
 * ```ts
 * import { idempotencyKey, flatKey } from "celeriac/backend";
 * const key = idempotencyKey("default", "email.send", "welcome:ada");
 * flatKey(key); // "q:default:idem:email.send:welcome:ada"
 * ```
 *
 * @module
 */

/**
 * Checks a queue name (the same rule for a task's queue, an enqueue override and `POST /runs`):
 * a non-empty string without braces or whitespace, which would change a Redis hash tag.
 */
export function checkQueueName(queue: unknown, where: string): string {
  if (typeof queue !== "string" || queue.length === 0 || /[{}\s]/.test(queue)) {
    throw new TypeError(
      `${where}queue must be a non-empty string without braces or spaces, got ${JSON.stringify(queue)}`,
    );
  }
  return queue;
}

/** A key that belongs to one queue: partitioned stores keep it in the queue's partition. */
export interface QueueKey {
  readonly queue: string;
  /** The key's name within its queue. */
  readonly name: string;
}

/** Task names may hold ":" (a separator here): escaped, so two scopes never share a name. */
function part(text: string): string {
  return text.replace(/%/g, "%25").replace(/:/g, "%3A");
}

/** The key that maps an idempotency key of a task on a queue to the run that holds it. */
export function idempotencyKey(queue: string, task: string, key: string): QueueKey {
  return { queue, name: `idem:${part(task)}:${key}` };
}

/** The run-time claim of an idempotency key: one running holder at a time. */
export function claimKey(queue: string, task: string, key: string): QueueKey {
  return { queue, name: `lock:${part(task)}:${key}` };
}

/**
 * The current burst of a debounce key of a task on a queue (its run and when it began). Scoped
 * per task and queue, as idempotency keys are: a burst is one run, and a run is on one queue.
 */
export function debounceKey(queue: string, task: string, key: string): string {
  return flatKey({ queue, name: `debounce:${part(task)}:${key}` });
}

/**
 * The count of a throttle key's enqueues in the window starting at `windowStart` (epoch ms).
 * Scoped per task: a queue override at enqueue does not get around the throttle.
 */
export function throttleKey(task: string, key: string, windowStart: number): string {
  return `throttle:${part(task)}:${windowStart}:${key}`;
}

/** Where a throttle key's delayed enqueues look for room first: a window known to be full before it. */
export function throttleNextKey(task: string, key: string): string {
  return `throttle:${part(task)}:next:${key}`;
}

/** A queue key as one flat name, for stores that do not partition by queue. */
export function flatKey(key: QueueKey): string {
  return `q:${part(key.queue)}:${key.name}`;
}

/** The claim of one tick of a schedule (`tick` in epoch ms). */
export function scheduleTickKey(schedule: string, tick: number): string {
  return `sched:${schedule}:${tick}`;
}

/** The last tick of a schedule handled by any scheduler. */
export function scheduleLastKey(schedule: string): string {
  return `sched:${schedule}:last`;
}

/** The last run a schedule enqueued. */
export function scheduleRunKey(schedule: string): string {
  return `sched:${schedule}:run`;
}

/** The idempotency key of a schedule's tick (the same text as the tick's claim). */
export function scheduleTickIdempotency(schedule: string, tick: number): string {
  return scheduleTickKey(schedule, tick);
}

/** The recorded result of a `ctx.once(name, fn)` step of a run. */
export function onceKey(runId: string, name: string): string {
  return `once:${runId}:${name}`;
}

/** The idempotency key of a workflow node's step. */
export function workflowStepKey(nodeId: string): string {
  return `wf:${nodeId}`;
}

/** The slot of member `index` of a group (written once). */
export function groupMemberKey(groupId: string, index: number): string {
  return `wf:${groupId}:m:${index}`;
}

/** The count of a group's members that ended. */
export function groupCountKey(groupId: string): string {
  return `wf:${groupId}:n`;
}

/** The state of a circuit breaker (shared by every task that names it). */
export function breakerKey(name: string): string {
  return `breaker:${part(name)}`;
}

/** The probe slots taken in one half-open round of a breaker (`epoch`: the opening it follows). */
export function breakerProbeKey(name: string, epoch: string): string {
  return `breaker:${part(name)}:probes:${epoch}`;
}

/**
 * The state of a rate limit enforced as deliveries arrive, not by its broker (its theoretical
 * arrival time); `limitKey` is the limit's key as its message carries it (`task` or `task:key`).
 */
export function rateKey(limitKey: string): string {
  return `rate:${limitKey}`;
}

/** A lock taken with `app.lock(key)` or `ctx.lock(key)`: its holder and fencing token, with a TTL. */
export function lockKey(key: string): string {
  return `lock:${key}`;
}

/** The counter a lock's fencing tokens come from; it never expires, so tokens never go back. */
export function lockTokenKey(key: string): string {
  return `lock-token:${key}`;
}
