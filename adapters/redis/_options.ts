/**
 * Options of the Redis backend, validated up front.
 *
 * @module
 */
import { checkKeys, keysOf } from "../../backend.ts";
import type { RedisClientLike } from "./_client.ts";

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
}

const REDIS_KEYS = keysOf<RedisOptions>({
  client: true,
  prefix: true,
  commandTimeoutMs: true,
  pollMinMs: true,
  pollMaxMs: true,
  deadLetterTtlMs: true,
});

/** The options with defaults filled in. */
export interface ResolvedRedisOptions {
  prefix: string;
  commandTimeoutMs: number;
  pollMinMs: number;
  pollMaxMs: number;
  deadLetterTtlMs: number;
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
  return { prefix, commandTimeoutMs, pollMinMs, pollMaxMs, deadLetterTtlMs };
}
