/**
 * Internal: the store's compare-and-set on one key, which circuit breakers and rate limits kept
 * in the store write their state with.
 *
 * @module
 */
import type { Store } from "../contracts.ts";

/** Sets `key` to `value` when it holds `expected` (null: absent); true when it was set. */
export type Cas = (key: string, expected: string | null, value: string, ttlMs: number) => Promise<boolean>;

/**
 * The store's compare-and-set, or a stand-in composed of its primitives: a compare-and-delete
 * followed by a set-if-absent, which is not atomic (between the two a reader sees the key absent,
 * and a concurrent writer can take it).
 */
export function casOf(store: Store): Cas {
  if (store.compareAndSet !== undefined) {
    return (key, expected, value, ttlMs) => store.compareAndSet!(key, expected, value, ttlMs);
  }
  return async (key, expected, value, ttlMs) => {
    if (expected !== null && !(await store.compareAndDelete(key, expected))) return false;
    return (await store.setIfAbsent(key, value, ttlMs)) === null;
  };
}
