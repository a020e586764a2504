/**
 * Key naming of the Redis backend: every key of a queue under its hash tag `{prefix:queue}`
 * (messages, leases, run records, idempotency keys and claims, dead letters), generic store keys
 * at `prefix:kv:<key>`, the index of known queues at `prefix:queues`, the stored schedules at
 * `prefix:schedules`.
 *
 * @module
 */
import type { QueueKey } from "../../backend.ts";

/** The hash tag every key of a queue shares. */
export function queueTag(prefix: string, queue: string): string {
  return `{${prefix}:${queue}}`;
}

/** The six fixed keys of a queue, in the order the queue script expects. */
export function queueKeys(prefix: string, queue: string): string[] {
  const tag = queueTag(prefix, queue);
  return ["r", "t", "c", "w", "x", "xi"].map((suffix) => `${tag}:${suffix}`);
}

/** The key of a run record (and its message). */
export function runKey(prefix: string, queue: string, id: string): string {
  return `${queueTag(prefix, queue)}:run:${id}`;
}

/** A core key that belongs to a queue (idempotency, claims), under the queue's hash tag. */
export function queueKeyOf(prefix: string, key: QueueKey): string {
  return `${queueTag(prefix, key.queue)}:${key.name}`;
}

/** The wake-up marker of a queue (blocking waiters pop it). */
export function wakeKey(prefix: string, queue: string): string {
  return `${queueTag(prefix, queue)}:w`;
}

/** A generic store key. */
export function kvKey(prefix: string, key: string): string {
  return `${prefix}:kv:${key}`;
}

/** The index of known queues. */
export function queueIndexKey(prefix: string): string {
  return `${prefix}:queues`;
}

/** The operators' keys (registry, control, statistics): one hash tag, so one slot. */
export function opsKeys(prefix: string): [registry: string, totals: string] {
  const tag = `{${prefix}:ops}`;
  return [`${tag}:workers`, `${tag}:tot`];
}

/** The hash of stored schedules (one key: one slot on Redis Cluster). */
export function schedulesKey(prefix: string): string {
  return `${prefix}:schedules`;
}
