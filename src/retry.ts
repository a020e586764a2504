/**
 * Retry policies as plain data, validated at definition time, and the backoff formula:
 * delay(n) = min(maxMs, baseMs · factor^(n−1)) with `full`, `equal` or no jitter.
 *
 * @module
 */
import { NonRetryableError, RetryAfterError, RetryRequest, ValidationError } from "./errors.ts";
import { checkKeys, keysOf } from "./_options.ts";

/** Which errors are retried: error classes, or a predicate. */
export type RetryOn =
  | ReadonlyArray<abstract new (...args: never[]) => unknown>
  | ((error: unknown, attempt: number) => boolean);

/**
 * How a task retries.
 *
 * @example
 * ```ts
 * const retry = { maxAttempts: 5, backoff: "exponential", baseMs: 1000, maxMs: 600_000, jitter: "full" };
 * ```
 */
export interface RetryOptions {
  /** Attempts in all, the first included. @default 3 */
  maxAttempts?: number;
  /** `exponential`: baseMs · factor^(n−1); `fixed`: baseMs every time. @default "exponential" */
  backoff?: "exponential" | "fixed";
  /** The first delay. @default 1000 */
  baseMs?: number;
  /** Growth per attempt for exponential backoff. @default 2 */
  factor?: number;
  /** Upper bound of any delay. @default 3_600_000 */
  maxMs?: number;
  /** `full`: uniform[0, d]; `equal`: d/2 + uniform[0, d/2]; `none`: d. @default "full" */
  jitter?: "full" | "equal" | "none";
  /** Only these errors are retried (others fail the run at once). @default every error */
  retryOn?: RetryOn;
}

/** A validated policy with every default filled in. */
export interface RetryPolicy {
  readonly maxAttempts: number;
  readonly backoff: "exponential" | "fixed";
  readonly baseMs: number;
  readonly factor: number;
  readonly maxMs: number;
  readonly jitter: "full" | "equal" | "none";
  readonly retryOn: RetryOn | undefined;
}

function fail(name: string, must: string, value: unknown): never {
  const shown = typeof value === "string" ? JSON.stringify(value) : String(value);
  throw new RangeError(`${name} must be ${must}, got ${shown}`);
}

const RETRY_KEYS = keysOf<RetryOptions>({
  maxAttempts: true,
  backoff: true,
  baseMs: true,
  factor: true,
  maxMs: true,
  jitter: true,
  retryOn: true,
});

/**
 * Validates retry options and fills in defaults. Throws `RangeError`/`TypeError` naming the
 * option and the value.
 *
 * @example
 * ```ts
 * import { retryPolicy } from "celeriac/backend";
 * retryPolicy({ maxAttempts: 0 }); // RangeError: retry.maxAttempts must be a positive integer, got 0
 * ```
 */
export function retryPolicy(options: RetryOptions = {}, where = "retry"): RetryPolicy {
  checkKeys(options, RETRY_KEYS, where);
  const {
    maxAttempts = 3,
    backoff = "exponential",
    baseMs = 1000,
    factor = 2,
    maxMs = 3_600_000,
    jitter = "full",
    retryOn,
  } = options;
  if (!Number.isSafeInteger(maxAttempts) || maxAttempts < 1) {
    fail(`${where}.maxAttempts`, "a positive integer", maxAttempts);
  }
  if (backoff !== "exponential" && backoff !== "fixed") {
    fail(`${where}.backoff`, `"exponential" or "fixed"`, backoff);
  }
  if (typeof baseMs !== "number" || !Number.isFinite(baseMs) || baseMs < 0) {
    fail(`${where}.baseMs`, "a non-negative number", baseMs);
  }
  if (typeof factor !== "number" || !Number.isFinite(factor) || factor < 1) {
    fail(`${where}.factor`, "a number >= 1", factor);
  }
  if (typeof maxMs !== "number" || Number.isNaN(maxMs) || maxMs < baseMs) {
    fail(`${where}.maxMs`, `a number >= baseMs (${baseMs})`, maxMs);
  }
  if (jitter !== "full" && jitter !== "equal" && jitter !== "none") {
    fail(`${where}.jitter`, `"full", "equal" or "none"`, jitter);
  }
  if (retryOn !== undefined && typeof retryOn !== "function" && !Array.isArray(retryOn)) {
    throw new TypeError(
      `${where}.retryOn must be an array of error classes or a function, got ${typeof retryOn}`,
    );
  }
  return { maxAttempts, backoff, baseMs, factor, maxMs, jitter, retryOn };
}

/**
 * The delay before attempt `failedAttempt + 1`, given the attempt that just failed (1-based)
 * and a random source returning [0, 1).
 *
 * @example
 * ```ts
 * import { backoffDelay, retryPolicy } from "celeriac";
 * backoffDelay(retryPolicy({ baseMs: 100, jitter: "none" }), 3, Math.random); // 400
 * ```
 */
export function backoffDelay(policy: RetryPolicy, failedAttempt: number, random: () => number): number {
  const raw =
    policy.backoff === "fixed" ? policy.baseMs : policy.baseMs * policy.factor ** (failedAttempt - 1);
  const delay = Math.min(policy.maxMs, raw);
  switch (policy.jitter) {
    case "none":
      return delay;
    case "equal":
      return delay / 2 + random() * (delay / 2);
    case "full":
      return random() * delay;
  }
}

/** What to do after an attempt failed. */
export type RetryDecision =
  | { retry: true; delayMs: number }
  | { retry: false; reason: "non-retryable" | "exhausted" | "not-retried" };

/** Decides whether a failed attempt is retried, and after how long. */
export function decideRetry(
  policy: RetryPolicy,
  error: unknown,
  attempt: number,
  random: () => number,
): RetryDecision {
  if (error instanceof NonRetryableError || error instanceof ValidationError) {
    return { retry: false, reason: "non-retryable" };
  }
  if (attempt >= policy.maxAttempts) return { retry: false, reason: "exhausted" };
  if (error instanceof RetryRequest) {
    return { retry: true, delayMs: error.delayMs ?? backoffDelay(policy, attempt, random) };
  }
  if (error instanceof RetryAfterError) return { retry: true, delayMs: error.delayMs };
  const on = policy.retryOn;
  if (on !== undefined) {
    const wanted =
      typeof on === "function"
        ? safePredicate(on, error, attempt)
        : on.some((cls) => error instanceof (cls as abstract new (...args: never[]) => unknown));
    if (!wanted) return { retry: false, reason: "not-retried" };
  }
  return { retry: true, delayMs: backoffDelay(policy, attempt, random) };
}

function safePredicate(
  fn: (error: unknown, attempt: number) => boolean,
  error: unknown,
  attempt: number,
): boolean {
  try {
    return fn(error, attempt) === true;
  } catch {
    return false;
  }
}
