import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { backoffDelay, decideRetry, retryPolicy } from "../backend.ts";
import { NonRetryableError, RetryAfterError, type RetryOptions, ValidationError } from "../mod.ts";

describe("retry policy", () => {
  it("grows as min(maxMs, baseMs * factor^(n-1)) without jitter", () => {
    const policy = retryPolicy({ baseMs: 100, factor: 3, maxMs: 2_000, jitter: "none" });
    const delays = [1, 2, 3, 4, 5].map((n) => backoffDelay(policy, n, Math.random));
    assert.deepEqual(delays, [100, 300, 900, 2_000, 2_000]);
  });

  it("keeps a fixed delay with fixed backoff", () => {
    const policy = retryPolicy({ backoff: "fixed", baseMs: 250, jitter: "none" });
    assert.deepEqual(
      [1, 2, 7].map((n) => backoffDelay(policy, n, Math.random)),
      [250, 250, 250],
    );
  });

  it("draws full jitter uniformly in [0, delay] and equal jitter in [delay/2, delay]", () => {
    const full = retryPolicy({ baseMs: 1_000, jitter: "full" });
    const equal = retryPolicy({ baseMs: 1_000, jitter: "equal" });
    assert.equal(
      backoffDelay(full, 2, () => 0),
      0,
    );
    assert.equal(
      backoffDelay(full, 2, () => 0.5),
      1_000,
    );
    assert.equal(
      backoffDelay(equal, 2, () => 0),
      1_000,
    );
    assert.equal(
      backoffDelay(equal, 2, () => 0.5),
      1_500,
    );
    assert.equal(backoffDelay(equal, 2, () => 0.999999) < 2_000, true);
  });

  it("names the option and the value when an option is invalid", () => {
    assert.throws(() => retryPolicy({ maxAttempts: 0 }), {
      name: "RangeError",
      message: "retry.maxAttempts must be a positive integer, got 0",
    });
    assert.throws(() => retryPolicy({ baseMs: -1 }), /retry\.baseMs must be a non-negative number, got -1/);
    assert.throws(() => retryPolicy({ factor: 0.5 }), /retry\.factor must be a number >= 1, got 0\.5/);
    assert.throws(() => retryPolicy({ baseMs: 10, maxMs: 5 }), /retry\.maxMs must be a number >= baseMs/);
    // @ts-expect-error: not a jitter mode
    const badJitter: RetryOptions = { jitter: "some" };
    assert.throws(
      () => retryPolicy(badJitter),
      /retry\.jitter must be "full", "equal" or "none", got "some"/,
    );
    // @ts-expect-error: not a backoff mode
    const badBackoff: RetryOptions = { backoff: "linear" };
    assert.throws(() => retryPolicy(badBackoff), /retry\.backoff/);
    // @ts-expect-error: retryOn must be classes or a predicate
    const badRetryOn: RetryOptions = { retryOn: "all" };
    assert.throws(() => retryPolicy(badRetryOn), TypeError);
  });

  it("never retries validation errors or NonRetryableError, and stops after maxAttempts", () => {
    const policy = retryPolicy({ maxAttempts: 3 });
    assert.deepEqual(decideRetry(policy, new NonRetryableError("no"), 1, Math.random), {
      retry: false,
      reason: "non-retryable",
    });
    assert.deepEqual(decideRetry(policy, new ValidationError("bad", []), 1, Math.random), {
      retry: false,
      reason: "non-retryable",
    });
    assert.equal(decideRetry(policy, new Error("x"), 2, Math.random).retry, true);
    assert.deepEqual(decideRetry(policy, new Error("x"), 3, Math.random), {
      retry: false,
      reason: "exhausted",
    });
  });

  it("honours RetryAfterError's delay and retryOn classes or predicates", () => {
    const policy = retryPolicy({ maxAttempts: 5, retryOn: [TypeError] });
    assert.deepEqual(decideRetry(policy, new RetryAfterError("later", { delayMs: 42 }), 1, Math.random), {
      retry: true,
      delayMs: 42,
    });
    assert.equal(decideRetry(policy, new TypeError("t"), 1, Math.random).retry, true);
    assert.deepEqual(decideRetry(policy, new RangeError("r"), 1, Math.random), {
      retry: false,
      reason: "not-retried",
    });
    const byPredicate = retryPolicy({ retryOn: (e) => (e as Error).message === "again" });
    assert.equal(decideRetry(byPredicate, new Error("again"), 1, Math.random).retry, true);
    assert.equal(decideRetry(byPredicate, new Error("stop"), 1, Math.random).retry, false);
    const throwing = retryPolicy({
      retryOn: () => {
        throw new Error("predicate broke");
      },
    });
    assert.equal(decideRetry(throwing, new Error("x"), 1, Math.random).retry, false);
  });
});
