/**
 * Options of the Redis backend, validated up front.
 *
 * @module
 */
import { checkKeys, keysOf } from "../../backend.ts";
import type { RedisClientLike } from "./_client.ts";
import { DEFAULT_HISTORY, type HistoryConfig } from "./lua/mod.ts";

/**
 * Options of `redis()`.
 *
 * @example
 * ```ts
 * import { Redis } from "@upstash/redis";
 * const r = redis({ client: new Redis({ url, token }), prefix: "myapp", commandTimeoutMs: 3_000 });
 * ```
 */
export interface RedisOptions {
  /**
   * An ioredis `Redis` (or `Cluster`) instance, Bun's `RedisClient`, or an `@upstash/redis`
   * `Redis` instance. The backend never closes it. Over TCP, blocking waits run on connections
   * duplicated from it.
   */
  client: RedisClientLike;
  /** First part of every key and hash tag (`{prefix:queue}`). @default "celeriac" */
  prefix?: string;
  /** Longest time one Redis call may take before it fails with `BackendError`. @default 5_000 */
  commandTimeoutMs?: number;
  /** Polling without blocking (REST): the first wait after an empty poll. @default 50 */
  pollMinMs?: number;
  /** Polling without blocking (REST): waits double up to this; an idle worker polls this often. @default 2_000 */
  pollMaxMs?: number;
  /** How long a dead letter is kept (trimmed as others are added or the list is read). @default 604_800_000 (7 days) */
  deadLetterTtlMs?: number;
  /**
   * The run history the dashboard lists and searches (`store.history`): per queue, indexes of
   * recent runs (by enqueue time), of runs per task, of ended runs per state and of runs per
   * idempotency key, kept by the scripts as they write each run (no extra round trip), and a
   * capped log of state changes, written only while someone reads it. `false`: none of it (the
   * runs table then finds a run by its id only).
   * @default { maxRuns: 100_000, changes: 1_000, keyTtlMs: 86_400_000 }
   */
  history?: HistoryOptions | false;
}

/** Options of the Redis run history (`RedisOptions.history`). */
export interface HistoryOptions {
  /** Runs kept in each index of a queue; the oldest go first. @default 100_000 */
  maxRuns?: number;
  /** State changes kept in a queue's log. @default 1_000 */
  changes?: number;
  /** How long a run stays findable by its idempotency key. @default 86_400_000 (24 h) */
  keyTtlMs?: number;
}

const HISTORY_KEYS = keysOf<HistoryOptions>({ maxRuns: true, changes: true, keyTtlMs: true });

const REDIS_KEYS = keysOf<RedisOptions>({
  client: true,
  prefix: true,
  commandTimeoutMs: true,
  pollMinMs: true,
  pollMaxMs: true,
  deadLetterTtlMs: true,
  history: true,
});

/** The options with defaults filled in. */
export interface ResolvedRedisOptions {
  prefix: string;
  commandTimeoutMs: number;
  pollMinMs: number;
  pollMaxMs: number;
  deadLetterTtlMs: number;
  history: HistoryConfig | false;
}

function wholeNumber(name: string, value: number | undefined, fallback: number): number {
  const v = value ?? fallback;
  if (!Number.isInteger(v) || v < 1)
    throw new RangeError(`${name} must be a positive integer, got ${String(value)}`);
  return v;
}

function historyOf(value: RedisOptions["history"]): HistoryConfig | false {
  if (value === false) return false;
  if (value === undefined) return DEFAULT_HISTORY;
  if (value === null || typeof value !== "object") {
    throw new TypeError(`history must be an object or false, got ${String(value)}`);
  }
  checkKeys(value, HISTORY_KEYS, "redis() history");
  return {
    maxRuns: wholeNumber("history.maxRuns", value.maxRuns, DEFAULT_HISTORY.maxRuns),
    changes: wholeNumber("history.changes", value.changes, DEFAULT_HISTORY.changes),
    keyTtlMs: wholeNumber("history.keyTtlMs", value.keyTtlMs, DEFAULT_HISTORY.keyTtlMs),
  };
}

function positive(name: string, value: number | undefined, fallback: number): number {
  const v = value ?? fallback;
  if (typeof v !== "number" || !Number.isFinite(v) || v <= 0) {
    throw new RangeError(`${name} must be a positive number, got ${String(value)}`);
  }
  return v;
}

/** Validates the options; throws TypeError/RangeError naming a wrong one. */
export function resolveOptions(options: RedisOptions): ResolvedRedisOptions {
  if (options === null || typeof options !== "object" || options.client == null) {
    throw new TypeError("redis() needs { client }: an ioredis or @upstash/redis client");
  }
  checkKeys(options, REDIS_KEYS, "redis()");
  const prefix = options.prefix ?? "celeriac";
  if (typeof prefix !== "string" || prefix === "" || /[{}]/.test(prefix)) {
    throw new TypeError(`prefix must be a non-empty string without braces, got ${JSON.stringify(prefix)}`);
  }
  const commandTimeoutMs = positive("commandTimeoutMs", options.commandTimeoutMs, 5_000);
  const pollMinMs = positive("pollMinMs", options.pollMinMs, 50);
  const pollMaxMs = positive("pollMaxMs", options.pollMaxMs, 2_000);
  if (pollMaxMs < pollMinMs) {
    throw new RangeError(`pollMaxMs must be >= pollMinMs (${pollMinMs}), got ${pollMaxMs}`);
  }
  const deadLetterTtlMs = positive("deadLetterTtlMs", options.deadLetterTtlMs, 604_800_000);
  const history = historyOf(options.history);
  return { prefix, commandTimeoutMs, pollMinMs, pollMaxMs, deadLetterTtlMs, history };
}
