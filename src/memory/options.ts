/**
 * Options of the in-memory backend, validated up front.
 *
 * @module
 */
import type { Clock } from "../contracts.ts";
import { checkKeys, keysOf } from "../_options.ts";

/** Options of `memory()`. */
export interface MemoryOptions {
  /**
   * Run each task to its end (retries included) before `enqueue` resolves.
   * @default false
   */
  eager?: boolean;
  /**
   * In eager mode, wait out delays and retry backoff for real instead of collapsing them to 0.
   * @default false
   */
  honorDelays?: boolean;
  /**
   * In eager mode, a run that failed for good rejects `enqueue()` with its `TaskFailedError`
   * (Celery's `task_eager_propagates`); by default `enqueue()` resolves and the run is `failed`.
   * @default false
   */
  propagate?: boolean;
  /** How long a dead letter is kept. @default 604_800_000 (7 days) */
  deadLetterTtlMs?: number;
  /** Time source for delays, leases and TTLs. @default the system clock */
  clock?: Clock;
}

const MEMORY_KEYS = keysOf<MemoryOptions>({
  eager: true,
  honorDelays: true,
  propagate: true,
  deadLetterTtlMs: true,
  clock: true,
});

/** The options with defaults filled in. */
export interface ResolvedMemoryOptions {
  eager: boolean;
  honorDelays: boolean;
  propagate: boolean;
  deadLetterTtlMs: number;
  clock: Clock;
}

/** Validates the options; throws naming a wrong one. */
export function resolveMemoryOptions(options: MemoryOptions): ResolvedMemoryOptions {
  checkKeys(options, MEMORY_KEYS, "memory()");
  const eager = options.eager === true;
  const propagate = options.propagate === true;
  if (propagate && !eager) throw new TypeError("propagate needs eager: true (it is an eager-mode option)");
  const deadLetterTtlMs = options.deadLetterTtlMs ?? 604_800_000;
  if (typeof deadLetterTtlMs !== "number" || !(deadLetterTtlMs > 0)) {
    throw new RangeError(`deadLetterTtlMs must be a positive number, got ${String(deadLetterTtlMs)}`);
  }
  return {
    eager,
    honorDelays: options.honorDelays === true,
    propagate,
    deadLetterTtlMs,
    clock: options.clock ?? { now: () => Date.now() },
  };
}
