/**
 * Typed errors. Every error celeriac throws is a {@link CeleriacError}; callers branch on the
 * subclasses with `instanceof`.
 *
 * @module
 */

/** Options accepted by every celeriac error. */
export interface CeleriacErrorOptions {
  /** The underlying error, if any. */
  cause?: unknown;
}

/**
 * Base class of every error celeriac throws.
 *
 * @example
 * ```ts
 * import { CeleriacError } from "celeriac";
 * try { await task.enqueue(input); } catch (e) { if (e instanceof CeleriacError) console.log(e.name); }
 * ```
 */
export class CeleriacError extends Error {
  constructor(message: string, options?: CeleriacErrorOptions) {
    super(message, options?.cause === undefined ? undefined : { cause: options.cause });
    this.name = new.target.name;
  }
}

/** One problem reported by a Standard Schema validator. */
export interface SchemaIssue {
  /** What is wrong, in the validator's words. */
  readonly message: string;
  /** Where in the value, as a list of keys. */
  readonly path?: ReadonlyArray<PropertyKey>;
}

/**
 * Input failed the task's schema. Carries the validator's issues. Never retried.
 *
 * @example
 * ```ts
 * import { ValidationError } from "celeriac";
 * try { await sendEmail.enqueue({ to: "nope" }); }
 * catch (e) { if (e instanceof ValidationError) console.log(e.issues[0]?.message); }
 * ```
 */
export class ValidationError extends CeleriacError {
  /** The issues reported by the schema, path as plain keys. */
  readonly issues: ReadonlyArray<SchemaIssue>;
  constructor(message: string, issues: ReadonlyArray<SchemaIssue>, options?: CeleriacErrorOptions) {
    super(message, options);
    this.issues = issues;
  }
}

/**
 * Thrown from a task to fail the run at once, without further attempts.
 *
 * @example
 * ```ts
 * import { NonRetryableError } from "celeriac";
 * throw new NonRetryableError("account closed");
 * ```
 */
export class NonRetryableError extends CeleriacError {}

/**
 * Thrown from a task to ask for another attempt after a given delay (for example from a
 * `Retry-After` header), overriding the backoff. The attempt still counts toward `maxAttempts`.
 *
 * @example
 * ```ts
 * import { RetryAfterError } from "celeriac";
 * throw new RetryAfterError("rate limited", { delayMs: 30_000 });
 * ```
 */
export class RetryAfterError extends CeleriacError {
  /** How long to wait before the next attempt. */
  readonly delayMs: number;
  constructor(message: string, options: CeleriacErrorOptions & { delayMs: number }) {
    super(message, options);
    if (!Number.isFinite(options.delayMs) || options.delayMs < 0) {
      throw new RangeError(`delayMs must be a non-negative number, got ${options.delayMs}`);
    }
    this.delayMs = options.delayMs;
  }
}

/** An attempt ran past its `timeoutMs`, or a wait (such as `run.result()`) ran out of time. */
export class TimeoutError extends CeleriacError {}

/** A push delivery's signature is missing, forged, expired or for another URL. */
export class SignatureError extends CeleriacError {}

/** A delivered envelope names a task this app does not know. */
export class UnknownTaskError extends CeleriacError {
  /** The task name found in the envelope. */
  readonly task: string;
  constructor(task: string, options?: CeleriacErrorOptions) {
    super(`unknown task "${task}": no task with that name is registered on this app`, options);
    this.task = task;
  }
}

/** A delivered envelope could not be decoded (not JSON, wrong shape, unknown version). */
export class EnvelopeError extends CeleriacError {}

/** A value could not be carried as JSON (input at enqueue, or a task's result). */
export class SerializationError extends CeleriacError {}

/** A broker or store failed (unreachable, timed out, answered with an error). */
export class BackendError extends CeleriacError {}

/** A run ended in `failed`; `run.result()` throws this. `cause` holds what the task threw. */
export class TaskFailedError extends CeleriacError {
  /** The run's id. */
  readonly runId: string;
  /** The name of the error the last attempt ended with. */
  readonly errorName: string;
  constructor(runId: string, error: { name: string; message: string }, options?: CeleriacErrorOptions) {
    super(`run ${runId} failed: ${error.name}: ${error.message}`, options);
    this.runId = runId;
    this.errorName = error.name;
  }
}

/** A run was cancelled; `run.result()` throws this, and a running task's `ctx.signal` aborts with it. */
export class CancelledError extends CeleriacError {}

/**
 * A run expired: its `expiresAt` (from `expiresAt` / `expiresInMs` at enqueue, or the task's
 * `expiresInMs`) passed before an attempt started, so it was not run. `run.result()` throws this
 * for a run in the `expired` state.
 *
 * @example
 * ```ts
 * import { ExpiredError } from "celeriac";
 * try { await run.result(); } catch (e) { if (e instanceof ExpiredError) console.log(e.runId, e.expiresAt); }
 * ```
 */
export class ExpiredError extends CeleriacError {
  /** The run's id. */
  readonly runId: string;
  /** When it expired (epoch ms), when known. */
  readonly expiresAt: number | undefined;
  constructor(runId: string, expiresAt: number | undefined, options?: CeleriacErrorOptions) {
    const date = new Date(expiresAt ?? Number.NaN);
    const when = Number.isNaN(date.getTime()) ? "" : ` at ${date.toISOString()}`;
    super(`run ${runId} expired${when} before it started`, options);
    this.runId = runId;
    this.expiresAt = expiresAt;
  }
}

/**
 * A delivery's worker was lost (crashed, killed, out of memory) `maxDeliveries` times while it ran
 * it: the run is dead-lettered with this error instead of being redelivered for ever.
 */
export class WorkerLostError extends CeleriacError {}

/**
 * The thread running a pool task's attempt ended before the task did: it exited (`process.exit`
 * inside it), crashed, ran out of memory, or the pool closed. The attempt fails with it and
 * retries per the task's policy; the pool starts another thread.
 *
 * @example
 * ```ts
 * import { ThreadError } from "celeriac/threads";
 * app.on("retrying", (e) => { if (e.error.name === "ThreadError") console.log(e.error.message); });
 * ```
 */
export class ThreadError extends CeleriacError {
  /** How the thread ended. */
  readonly reason: "exit" | "crash" | "memory" | "closed";

  constructor(reason: ThreadError["reason"], message: string, options?: CeleriacErrorOptions) {
    super(message, options);
    this.reason = reason;
  }
}

/**
 * `app.lock()` or `ctx.lock()` found the lock held by another holder (at once, or still at the end
 * of its `waitMs`).
 *
 * @example
 * ```ts
 * import { LockedError } from "celeriac";
 * try { await app.lock("report:daily", { ttlMs: 60_000 }); }
 * catch (e) { if (e instanceof LockedError) console.log(`${e.key} is busy`); }
 * ```
 */
export class LockedError extends CeleriacError {
  /** The lock's key, as given. */
  readonly key: string;
  constructor(key: string, message: string, options?: CeleriacErrorOptions) {
    super(message, options);
    this.key = key;
  }
}

/**
 * A throttled enqueue was dropped (`throttle: { mode: "drop" }`, the default): nothing was sent.
 * `result()` of its handle rejects with this error.
 *
 * @example
 * ```ts
 * import { ThrottledError } from "celeriac";
 * const run = await search.enqueue({ q });
 * await run.result().catch((e) => {
 *   if (e instanceof ThrottledError) console.log(`${e.key} is throttled until`, new Date(e.retryAt));
 * });
 * ```
 */
export class ThrottledError extends CeleriacError {
  /** The task's name. */
  readonly task: string;
  /** The throttle key the enqueue was counted under. */
  readonly key: string;
  /** When the key's next window begins (epoch ms): an enqueue from then on is counted afresh. */
  readonly retryAt: number;
  constructor(task: string, key: string, retryAt: number, options?: CeleriacErrorOptions) {
    super(
      `an enqueue of task "${task}" was dropped: throttle key ${JSON.stringify(key)} is over its limit`,
      options,
    );
    this.task = task;
    this.key = key;
    this.retryAt = retryAt;
  }
}

/**
 * A flow-control key function (`debounce.key`, `throttle.key`, `rateLimit.key`, `concurrency.key`)
 * threw, or returned something other than a non-empty string, at enqueue: nothing was sent.
 * `cause` holds what it threw.
 *
 * @example
 * ```ts
 * import { FlowKeyError } from "celeriac";
 * try { await reindex.enqueue(input); } catch (e) { if (e instanceof FlowKeyError) console.log(e.option); }
 * ```
 */
export class FlowKeyError extends CeleriacError {
  /** The option whose key function failed, such as "debounce.key". */
  readonly option: string;
  constructor(option: string, message: string, options?: CeleriacErrorOptions) {
    super(message, options);
    this.option = option;
  }
}

/** Internal: the signal a task raises through `ctx.retry()`. */
export class RetryRequest extends CeleriacError {
  readonly delayMs: number | undefined;
  constructor(delayMs: number | undefined, reason?: unknown) {
    super("retry requested by the task", reason === undefined ? undefined : { cause: reason });
    this.delayMs = delayMs;
  }
}
