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
  /**
   * The run history the dashboard lists and searches (`store.history`): how many runs are kept
   * in it per queue, and how many state changes its log keeps; `false` keeps none.
   * @default { maxRuns: 100_000, changes: 1_000 }
   */
  history?: { maxRuns?: number; changes?: number } | false;
}

const MEMORY_KEYS = keysOf<MemoryOptions>({
  eager: true,
  honorDelays: true,
  propagate: true,
  deadLetterTtlMs: true,
  clock: true,
  history: true,
});

/** The options with defaults filled in. */
export interface ResolvedMemoryOptions {
  eager: boolean;
  honorDelays: boolean;
  propagate: boolean;
  deadLetterTtlMs: number;
  clock: Clock;
  history: { maxRuns: number; changes: number } | false;
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
    history: resolveHistory(options.history),
  };
}

function positive(value: unknown, name: string, fallback: number): number {
  if (value === undefined) return fallback;
  if (typeof value !== "number" || !Number.isInteger(value) || value < 1) {
    throw new RangeError(`history.${name} must be a positive integer, got ${String(value)}`);
  }
  return value;
}

function resolveHistory(history: MemoryOptions["history"]): ResolvedMemoryOptions["history"] {
  if (history === false) return false;
  if (history !== undefined && (typeof history !== "object" || history === null)) {
    throw new TypeError("history must be an object or false");
  }
  checkKeys(history ?? {}, HISTORY_KEYS, "memory({ history })");
  return {
    maxRuns: positive(history?.maxRuns, "maxRuns", 100_000),
    changes: positive(history?.changes, "changes", 1_000),
  };
}

const HISTORY_KEYS = keysOf<{ maxRuns?: number; changes?: number }>({ maxRuns: true, changes: true });
