/**
 * Task definitions: options, validation at definition time, and the types that flow from the
 * input schema into `enqueue`, `run` and `result`.
 *
 * @module
 */
import {
  type ConcurrencyLimitOption,
  type RateLimitOption,
  type ResolvedLimits,
  resolveLimits,
} from "./flow/limits.ts";
import type { RunRecord } from "./contracts.ts";
import type { LockHandle, TaskLockOptions } from "./flow/lock.ts";
import type { Step } from "./workflow/workflow.ts";
import { type RetryOptions, type RetryPolicy, retryPolicy } from "./retry.ts";
import { isStandardSchema, type StandardSchemaV1 } from "./schema.ts";
import { checkKeys, keysOf, positiveInt } from "./_options.ts";
import { checkQueueName } from "./keys.ts";
import { checkExpiresInMs } from "./expiry.ts";
import { checkRoute, type Route } from "./routes.ts";
import { type BreakerOptions, type ResolvedBreaker, resolveBreaker } from "./flow/breaker-options.ts";
import type { DebounceOptions, ResolvedDebounce } from "./flow/debounce.ts";
import { resolveFlow } from "./flow/enqueue.ts";
import type { ResolvedThrottle, ThrottleOptions } from "./flow/throttle.ts";
import { checkWork, type ThreadTaskDefinition } from "./pool.ts";

/** The `run` of a pool task's resolved definition: the executor hands the module to a pool. */
function poolOnly(): never {
  throw new TypeError("a pool task runs its module, not run");
}

/** What a running task can see and do. */
export interface TaskContext {
  /** The run id, stable across attempts. */
  readonly id: string;
  /** The task's name. */
  readonly task: string;
  /** This attempt, 1-based. */
  readonly attempt: number;
  /** Attempts allowed in all. */
  readonly maxAttempts: number;
  /** Aborted when the attempt times out, the run is cancelled, or the worker stops for good. */
  readonly signal: AbortSignal;
  /**
   * A key for this run's effects outside celeriac, the same on every attempt and redelivery:
   * pass it to a downstream API that deduplicates (Stripe's `Idempotency-Key`, an upsert). It is
   * `<task>:<idempotency key>` for a run with an idempotency key, else the run id.
   */
  readonly idempotencyKey: string;
  /**
   * Runs `fn` once per run: its result (JSON) is recorded in the store under `name`, and a
   * re-run of the run (a retry, a redelivery after a crash) returns the recorded result without
   * calling `fn` again. An effect is still repeated if the process dies after `fn`'s effect and
   * before its result is recorded — a window of one store write.
   *
   * @example
   * ```ts
   * const charge = await ctx.once("charge", () => stripe.charges.create({ amount }, { idempotencyKey: ctx.idempotencyKey }));
   * ```
   */
  once<T>(name: string, fn: () => T | Promise<T>): Promise<T>;
  /**
   * Records progress (any JSON value) on the run and emits a `progress` event. Writes are kept in
   * order; await the promise to know this one is stored (a failed write is reported as an
   * `error` event either way).
   */
  progress(value: unknown): Promise<void>;
  /**
   * Ends this attempt and asks for another, after `delayMs` or the policy's backoff. Counts toward
   * `maxAttempts`. Use as `throw ctx.retry()` or just `ctx.retry()`.
   */
  retry(options?: { delayMs?: number; reason?: unknown }): never;
  /**
   * Takes a distributed lock for this attempt (as `app.lock()` does), tied to its lease: the lock
   * lives as long as the lease, is renewed with it, lapses with it when the worker dies, and is
   * released when the attempt ends (success, failure, timeout, cancel). Without a lease (a push
   * delivery) it lives `ttlMs` (default: the task's `timeoutMs`). Rejects with `LockedError` when
   * another holder has it (at once, or after `waitMs`).
   *
   * @example
   * ```ts
   * const lock = await ctx.lock(`account:${input.accountId}`, { waitMs: 10_000 });
   * await ledger.write(input, { fencingToken: lock.token });
   * ```
   */
  lock(key: string, options?: TaskLockOptions): Promise<LockHandle>;
}

/**
 * A task's definition, as passed to `app.task()`: its work as a `run` function on the event loop,
 * or as a `module` a thread pool runs ({@link ThreadTaskDefinition}).
 *
 * @example
 * ```ts
 * app.task({ name: "email.send", input: v.object({ to: v.string() }), run: async ({ to }) => ({ to }) });
 * ```
 */
export type { ThreadTaskDefinition };
export type TaskDefinition<S extends StandardSchemaV1, R> =
  | InlineTaskDefinition<S, R>
  | ThreadTaskDefinition<S, R>;

/** A task whose work is a function run on the worker's event loop. */
export interface InlineTaskDefinition<S extends StandardSchemaV1, R> extends TaskOptions<S> {
  /** The work. Gets the schema's output; its return value (JSON) is the run's result. */
  run(input: NoInfer<StandardOutput<S>>, ctx: TaskContext): R | Promise<R>;
  pool?: undefined;
  module?: undefined;
}

/** A task's options besides its work. */
export interface TaskOptions<S extends StandardSchemaV1> {
  /** Unique and stable: it is what travels on the wire. */
  name: string;
  /** Any Standard Schema v1 validator (valibot, zod, arktype…). Omitted: any JSON value. */
  input?: S;
  /** Retry policy. @default { maxAttempts: 3, backoff: "exponential", baseMs: 1000, factor: 2, jitter: "full" } */
  retry?: RetryOptions;
  /** Derives an idempotency key from the validated input: same key, same run, one effect. */
  idempotencyKey?: (input: NoInfer<StandardOutput<S>>) => string;
  /** How long an idempotency key is remembered. @default resultTtlMs */
  idempotencyTtlMs?: number;
  /**
   * At most `limit` runs start per `periodMs` across every worker (per `key` of the input when
   * given), or a string such as `"100/m"`. A run over the limit waits, queued, with no attempt used.
   */
  rateLimit?: RateLimitOption<NoInfer<StandardOutput<S>>>;
  /** At most `limit` runs at once across every worker (per `key` when given); slots follow leases. */
  concurrency?: ConcurrencyLimitOption<NoInfer<StandardOutput<S>>>;
  /** Queue name (overrides the app's `routes`). @default the route's queue, else "default" */
  queue?: string;
  /** 0–9, higher runs first within a queue (overrides `routes`). @default the route's, else 0 */
  priority?: number;
  /** An attempt fails after this long, whether or not the handler stops. @default 300_000 */
  timeoutMs?: number;
  /** How long state and result are kept after the run ends. @default 86_400_000 */
  resultTtlMs?: number;
  /** Keep the state but not the result. @default false */
  ignoreResult?: boolean;
  /**
   * How often a delivery's worker may be lost (its lease lapsed: the process crashed, was killed
   * or ran out of memory) before the run is dead-lettered with `WorkerLostError`, instead of
   * being redelivered for ever (BullMQ's `maxStalledCount`, Celery's `reject_on_worker_lost`).
   * Counted per attempt from the broker's delivery count, so a delivery a worker gave back on a
   * graceful stop counts too.
   * @default 5
   */
  maxDeliveries?: number;
  /**
   * Celery's `expires` as a default for every run of the task: a run not started within this many
   * ms of its enqueue is not run; it ends `expired` (`run.result()` rejects with `ExpiredError`),
   * retries included. An enqueue's `expiresAt` / `expiresInMs` overrides it.
   * @default undefined: runs never expire
   */
  expiresInMs?: number;
  /** Dead-letter runs that expired too (they are only recorded `expired` otherwise). @default false */
  deadLetterExpired?: boolean;
  /**
   * A circuit breaker: after `failureThreshold` failed attempts within `windowMs`, runs of this
   * task (of every task sharing the breaker's `name`) wait `cooldownMs` without starting or using
   * an attempt; then `halfOpenProbes` runs probe, and one success closes it. Shared across workers
   * and replicas through the store.
   * @default undefined (no breaker)
   */
  breaker?: BreakerOptions;
  /**
   * Collapses enqueues with the same key while they keep coming: the last input wins, and one
   * run starts `delayMs` after the last enqueue (at most `maxWaitMs` after the first). The
   * handle says `debounced: "scheduled" | "replaced"`. Needs memory or Redis as both broker and
   * store. Not with `throttle`.
   * @default none
   */
  debounce?: DebounceOptions<NoInfer<StandardOutput<S>>>;
  /**
   * At most `limit` enqueues per key in each fixed window of `periodMs`; over it, an enqueue is
   * dropped (`throttled: "dropped"`, nothing sent) or delayed to the next window with room
   * (`throttled: "delayed"`). Not with `debounce`.
   * @default none
   */
  throttle?: ThrottleOptions<NoInfer<StandardOutput<S>>>;
}

/** The output type of a schema (unknown when there is none). */
export type StandardOutput<S> = S extends StandardSchemaV1<unknown, infer O> ? O : unknown;
/** The input type of a schema (unknown when there is none). */
export type StandardInput<S> = S extends StandardSchemaV1<infer I, unknown> ? I : unknown;

/** A task definition after validation, defaults filled in. */
export interface ResolvedTask {
  readonly name: string;
  readonly schema: StandardSchemaV1 | undefined;
  readonly run: (input: unknown, ctx: TaskContext) => unknown;
  /** A pool task's module URL (its `run` is then unused). */
  readonly module: string | undefined;
  readonly retry: RetryPolicy;
  readonly idempotencyKey: ((input: unknown) => string) | undefined;
  readonly idempotencyTtlMs: number;
  readonly queue: string;
  readonly priority: number;
  readonly timeoutMs: number;
  readonly resultTtlMs: number;
  readonly ignoreResult: boolean;
  readonly maxDeliveries: number;
  /** The circuit breaker, when the task has one. */
  readonly breaker: ResolvedBreaker | undefined;
  /** Rate and concurrency limits (empty when none). */
  readonly limits: ResolvedLimits;
  readonly expiresInMs: number | undefined;
  readonly deadLetterExpired: boolean;
  /** Debounce at enqueue (see `flow/debounce.ts`). */
  readonly debounce?: ResolvedDebounce;
  /** Throttle at enqueue (see `flow/throttle.ts`). */
  readonly throttle?: ResolvedThrottle;
}

/** Options of `task.enqueue()`. */
export interface EnqueueOptions {
  /** Deliver no sooner than this many ms from now. */
  delayMs?: number;
  /** Deliver no sooner than this time. */
  at?: Date | number;
  /** Overrides the task's priority. */
  priority?: number;
  /** Overrides the task's queue. */
  queue?: string;
  /** Overrides the task's idempotency key for this run. */
  idempotencyKey?: string;
  /**
   * The run expires at this time: an attempt not started by then is not run and the run ends
   * `expired`. Overrides the task's `expiresInMs`; not together with `expiresInMs`.
   */
  expiresAt?: Date | number;
  /** The run expires this many ms after the enqueue (see `expiresAt`). */
  expiresInMs?: number;
  /** Uses this run id instead of a random one. */
  id?: string;
}

/** A handle on one run. */
export interface Run<R> {
  /** The run id. */
  readonly id: string;
  /**
   * A debounced enqueue: `"scheduled"` when it began a burst (its run is new), `"replaced"` when
   * it replaced the input of its burst's waiting run. Either way `id` is the burst's run.
   */
  readonly debounced?: "scheduled" | "replaced";
  /**
   * A throttled enqueue over its limit: `"dropped"` (nothing was sent: `status()` is null and
   * `result()` rejects with `ThrottledError`) or `"delayed"` (sent to start at the next window
   * with room). Undefined when it was within the limit.
   */
  readonly throttled?: "dropped" | "delayed";
  /** The run's record: state, attempt, progress, error… (null once expired). */
  status(): Promise<RunRecord | null>;
  /**
   * Waits for the run to end; resolves to its result, or rejects with `TaskFailedError`,
   * `CancelledError`, `ExpiredError` (it expired before it started) or `TimeoutError` (after
   * `timeoutMs`, default 60 s).
   */
  result(options?: { timeoutMs?: number }): Promise<R>;
  /**
   * Cancels the run unless it has ended: a waiting one never runs; a running one has its
   * `ctx.signal` aborted with `CancelledError` (at its worker's next lease renewal at the latest)
   * and its outcome is not recorded; a workflow's steps that have not run are cancelled, and its
   * record's `result` says which had. False when it had already ended.
   */
  cancel(): Promise<boolean>;
}

/** A registered task. */
export interface Task<I, R> {
  readonly name: string;
  /** The definition with defaults filled in. */
  readonly options: ResolvedTask;
  /**
   * Validates `input` and sends a run.
   *
   * @example
   * ```ts
   * const run = await sendEmail.enqueue({ to: "a@b.co" }, { delayMs: 5000 });
   * console.log(await run.result());
   * ```
   */
  enqueue(input: I, options?: EnqueueOptions): Promise<Run<R>>;
  /**
   * A workflow step: this task with `input`, or, called with no argument, with the previous
   * step's result (see `chain`, `group`, `chord`).
   *
   * @example
   * ```ts
   * await chain(fetchPage.with({ url }), parse.with()).enqueue();
   * ```
   */
  with(...input: [] | [I]): Step;
  /** Enqueues many runs in one broker call. */
  enqueueMany(
    inputs: readonly I[],
    options?: Omit<EnqueueOptions, "id" | "idempotencyKey">,
  ): Promise<Run<R>[]>;
}

const TASK_KEYS = keysOf<InlineTaskDefinition<StandardSchemaV1, unknown>>({
  name: true,
  input: true,
  run: true,
  pool: true,
  module: true,
  retry: true,
  idempotencyKey: true,
  idempotencyTtlMs: true,
  queue: true,
  priority: true,
  timeoutMs: true,
  resultTtlMs: true,
  ignoreResult: true,
  maxDeliveries: true,
  breaker: true,
  rateLimit: true,
  concurrency: true,
  expiresInMs: true,
  deadLetterExpired: true,
  debounce: true,
  throttle: true,
});

/** The options `enqueue` and `enqueueMany` take. */
export const ENQUEUE_KEYS: ReadonlySet<string> = keysOf<EnqueueOptions>({
  delayMs: true,
  at: true,
  priority: true,
  queue: true,
  idempotencyKey: true,
  id: true,
  expiresAt: true,
  expiresInMs: true,
});

function flag(value: unknown, name: string): boolean {
  if (value !== undefined && typeof value !== "boolean") {
    throw new TypeError(`${name} must be a boolean, got ${JSON.stringify(value)}`);
  }
  return value === true;
}

/**
 * Validates a definition and fills in defaults; throws naming the option and the value. `route`
 * (the app's routing table) gives the queue and priority the definition leaves out.
 */
export function resolveTask<S extends StandardSchemaV1, R>(
  def: TaskDefinition<S, R>,
  route?: (task: string) => Route | undefined,
): ResolvedTask {
  if (typeof def !== "object" || def === null) throw new TypeError("task definition must be an object");
  const { name } = def;
  if (typeof name !== "string" || name.length === 0) {
    throw new TypeError(`task name must be a non-empty string, got ${JSON.stringify(name)}`);
  }
  const where = `task "${name}"`;
  checkKeys(def, TASK_KEYS, where);
  const module = checkWork(def, where);
  if (def.input !== undefined && !isStandardSchema(def.input)) {
    throw new TypeError(`${where}: input must be a Standard Schema (valibot, zod, …)`);
  }
  if (def.idempotencyKey !== undefined && typeof def.idempotencyKey !== "function") {
    throw new TypeError(`${where}: idempotencyKey must be a function of the input`);
  }
  const routed = route === undefined ? undefined : checkRoute(route(name), `the route of ${where}`);
  const queue = checkQueueName(def.queue ?? routed?.queue ?? "default", `${where}: `);
  const priority = def.priority ?? routed?.priority ?? 0;
  if (!Number.isInteger(priority) || priority < 0 || priority > 9) {
    throw new RangeError(`${where}: priority must be an integer from 0 to 9, got ${String(priority)}`);
  }
  const resultTtlMs = positiveInt(`${where}: resultTtlMs`, def.resultTtlMs ?? 86_400_000);
  return {
    name,
    schema: def.input,
    run: (def.run ?? poolOnly) as (input: unknown, ctx: TaskContext) => unknown,
    module,
    retry: retryPolicy(def.retry, `${where}: retry`),
    idempotencyKey: def.idempotencyKey as ((input: unknown) => string) | undefined,
    idempotencyTtlMs: positiveInt(`${where}: idempotencyTtlMs`, def.idempotencyTtlMs ?? resultTtlMs),
    queue,
    priority,
    timeoutMs: positiveInt(`${where}: timeoutMs`, def.timeoutMs ?? 300_000),
    resultTtlMs,
    ignoreResult: def.ignoreResult === true,
    maxDeliveries: positiveInt(`${where}: maxDeliveries`, def.maxDeliveries ?? 5),
    breaker: resolveBreaker(where, name, def.breaker),
    limits: resolveLimits(where, def.rateLimit, def.concurrency),
    expiresInMs: def.expiresInMs === undefined ? undefined : checkExpiresInMs(def.expiresInMs, `${where}: `),
    deadLetterExpired: flag(def.deadLetterExpired, `${where}: deadLetterExpired`),
    ...resolveFlow(def, where),
  };
}
