/**
 * The executor: the only code that runs a task. Worker, HTTP handler and eager mode all call
 * {@link Executor.process}; none of them re-implements any step.
 *
 * Steps: decode + validate the envelope → start the run (atomically, so finished or cancelled runs
 * are not run again) → idempotency claim → validate input → run with timeout → record the outcome
 * → retry, or fail and dead-letter → emit events → ack.
 *
 * @module
 */
import type {
  AttemptError,
  Broker,
  Clock,
  DeadLetter,
  Delivery,
  ErrorInfo,
  RunRecord,
  Store,
} from "./contracts.ts";
import { decodeEnvelope, type Envelope, toMessage } from "./envelope.ts";
import { errorInfo, withoutStack } from "./_error-info.ts";
import { CeleriacError, RetryRequest, SerializationError, TimeoutError, UnknownTaskError } from "./errors.ts";
import type { Emitter } from "./events.ts";
import { toJson } from "./json.ts";
import { AttemptContext } from "./_context.ts";
import { Deadlines } from "./_deadlines.ts";
import type { Ledger } from "./ledger.ts";
import type { Continuation } from "./workflow.ts";
import { decideRetry } from "./retry.ts";
import { validate } from "./schema.ts";
import type { ResolvedTask } from "./task.ts";

/** What happened to one delivery. The HTTP handler maps it to a status code. */
export type Outcome =
  | {
      kind: "succeeded";
      id: string;
      result: unknown;
      /** Deliveries leased in the same step (asked for with `takeNext`): the caller runs them. */
      next?: Delivery[];
    }
  /** An attempt failed; the next one was sent with a delay. */
  | {
      kind: "retrying";
      id: string;
      delayMs: number;
      error: ErrorInfo;
      /** Deliveries leased in the same step (asked for with `takeNext`): the caller runs them. */
      next?: Delivery[];
    }
  /** The run failed for good and was dead-lettered. */
  | { kind: "failed"; id: string; error: ErrorInfo }
  /** The delivery could not be run at all (undecodable, unknown task) and was dead-lettered. */
  | { kind: "rejected"; id: string; reason: string }
  /** The run had already ended (or was cancelled): nothing ran. */
  | { kind: "duplicate"; id: string; state: string }
  /** Another delivery of the same idempotency key is running: this one comes back later. */
  | { kind: "deferred"; id: string; delayMs: number };

/** What the executor needs from its app. */
export interface ExecutorDeps {
  tasks: ReadonlyMap<string, ResolvedTask>;
  broker: Broker;
  store: Store;
  /** Compound broker+store steps (fused by backends that can). */
  ledger: Ledger;
  clock: Clock;
  random: () => number;
  events: Emitter;
  /** Carries results and failures of workflow steps onward (absent: no workflows). */
  workflow?: {
    succeeded(cont: Continuation, result: unknown): Promise<void>;
    failed(cont: Continuation, error: ErrorInfo, where: string): Promise<void>;
  };
  /** Called when a run reaches a final state in this process (wakes `run.result()` waiters). */
  settled(id: string): void;
}

/** Per-call options of {@link Executor.process}. */
export interface ProcessOptions {
  /** Aborting it aborts the task's `ctx.signal` (a worker stopping for good). */
  signal?: AbortSignal;
  /**
   * Pull workers: on success, lease the next due delivery of the same queue in the same step
   * when the ledger can. The caller must process what comes back in `Outcome.next`.
   */
  takeNext?: { leaseMs: number };
  /**
   * Called once the task's own code has returned or thrown, before its outcome is recorded (a
   * worker lets a prefetched task start while this one's outcome travels to the backend).
   */
  onRan?: () => void;
}

const STARTABLE = ["queued", "scheduled", "retrying", "active", "missing"] as const;

/** Runs tasks. One per app. */
export class Executor {
  readonly #deps: ExecutorDeps;
  readonly #deadlines = new Deadlines();

  constructor(deps: ExecutorDeps) {
    this.#deps = deps;
  }

  /** Processes one delivery to its outcome. Never throws for anything a task or payload does. */
  async process(delivery: Delivery, options: ProcessOptions = {}): Promise<Outcome> {
    const { store, clock, tasks, ledger } = this.#deps;
    let envelope: Envelope;
    try {
      envelope = decodeEnvelope(delivery.body);
    } catch (error) {
      return await this.#reject(delivery, undefined, error);
    }
    const task = tasks.get(envelope.task);
    if (task === undefined)
      return await this.#reject(delivery, envelope, new UnknownTaskError(envelope.task));

    // Idempotency: one holder of the key at a time; a finished key returns its result.
    let claimKey: string | undefined;
    let claimValue = "";
    if (envelope.idempotencyKey !== undefined) {
      claimValue = `${envelope.id}:${envelope.attempt}:${delivery.receipt}`;
      const owner = await ledger.idempotencyOwner(envelope.idempotencyKey, envelope.queue);
      if (owner !== null && owner !== envelope.id) {
        const done = await store.getRun(owner, envelope.queue);
        if (done?.state === "succeeded") {
          const now = clock.now();
          const applied = await ledger.start(
            delivery,
            envelope.id,
            {
              ...runFields(envelope, task),
              state: "succeeded",
              result: done.result,
              finishedAt: now,
              updatedAt: now,
            },
            { ttlMs: task.resultTtlMs, onlyIf: STARTABLE },
          );
          await ledger.skip(delivery);
          if (applied.applied) this.#deps.settled(envelope.id);
          return { kind: "duplicate", id: envelope.id, state: "succeeded" };
        }
      }
      claimKey = `lock:${envelope.idempotencyKey}`;
      const holder = await store.setIfAbsent(claimKey, claimValue, task.timeoutMs + 5_000);
      if (holder !== null && holder !== claimValue) {
        const delayMs = Math.min(task.timeoutMs, 5_000);
        // Count deferrals so a push broker's dedup id (run:attempt) differs on each re-send.
        const prev = envelope.meta?.deferrals;
        const meta = { ...envelope.meta, deferrals: typeof prev === "number" ? prev + 1 : 1 };
        await ledger.defer(delivery, toMessage({ ...envelope, notBefore: clock.now() + delayMs, meta }));
        return { kind: "deferred", id: envelope.id, delayMs };
      }
    }

    const startedAt = clock.now();
    if (delivery.started !== undefined && claimKey === undefined) {
      // The broker started the run as it leased it, in the same round trip.
      if (delivery.started !== true) {
        await ledger.skip(delivery);
        return { kind: "duplicate", id: envelope.id, state: JSON.parse(delivery.started) as string };
      }
      if (this.#deps.events.has("active")) {
        this.#deps.events.emit("active", { id: envelope.id, task: task.name, attempt: envelope.attempt });
      }
      return await this.#attempt(delivery, envelope, task, null, startedAt, options);
    }
    const start = await ledger.start(
      delivery,
      envelope.id,
      { ...runFields(envelope, task), state: "active", startedAt, updatedAt: startedAt },
      { ttlMs: task.resultTtlMs, onlyIf: STARTABLE },
    );
    if (!start.applied) {
      // Finished or cancelled already: a duplicate or stale delivery. Nothing runs.
      if (claimKey !== undefined) await store.compareAndDelete(claimKey, claimValue);
      await ledger.skip(delivery);
      return { kind: "duplicate", id: envelope.id, state: start.record?.state ?? "missing" };
    }
    const record = start.record;

    if (this.#deps.events.has("active")) {
      this.#deps.events.emit("active", { id: envelope.id, task: task.name, attempt: envelope.attempt });
    }
    try {
      return await this.#attempt(delivery, envelope, task, record, startedAt, options);
    } finally {
      if (claimKey !== undefined) await store.compareAndDelete(claimKey, claimValue).catch(() => {});
    }
  }

  async #attempt(
    delivery: Delivery,
    envelope: Envelope,
    task: ResolvedTask,
    record: RunRecord | null,
    startedAt: number,
    options: ProcessOptions,
  ): Promise<Outcome> {
    const { clock, events } = this.#deps;
    const ctx = new AttemptContext(this.#deps, envelope, task, options.signal);

    let resultJson: string | undefined;
    let result: unknown;
    let failure: unknown;
    let ok = false;
    try {
      const input =
        task.schema === undefined
          ? envelope.input
          : await validate(task.schema, envelope.input, `input of task "${task.name}"`);
      const value = task.run(input, ctx);
      result = isThenable(value) ? await this.#withTimeout(value, task, envelope.attempt, ctx) : value;
      if (!task.ignoreResult) {
        try {
          resultJson = toJson(result, "result");
        } catch (error) {
          throw new SerializationError(
            `task "${task.name}" returned a value that is not JSON: ${(error as Error).message}`,
            { cause: error },
          );
        }
      }
      ok = true;
    } catch (error) {
      failure = error;
    }
    options.onRan?.();
    const writes = ctx.settle();
    if (writes !== undefined) await writes;

    if (ok) {
      const stored = resultJson === undefined ? undefined : (JSON.parse(resultJson) as unknown);
      const cont = envelope.meta?.cont as Continuation | undefined;
      // Continue the workflow before acking: a crash in between redelivers, and the next step's
      // idempotency key absorbs the repeat.
      if (cont !== undefined && this.#deps.workflow !== undefined)
        await this.#deps.workflow.succeeded(cont, stored);
      const now = clock.now();
      const next = await this.#deps.ledger.succeed(
        delivery,
        envelope.id,
        stored === undefined
          ? { state: "succeeded", finishedAt: now, updatedAt: now }
          : { state: "succeeded", finishedAt: now, updatedAt: now, result: stored },
        task.resultTtlMs,
        envelope.idempotencyKey === undefined
          ? undefined
          : { key: envelope.idempotencyKey, ttlMs: task.idempotencyTtlMs },
        options.takeNext === undefined
          ? undefined
          : { max: 1, leaseMs: options.takeNext.leaseMs, startAt: clock.now() },
      );
      this.#deps.settled(envelope.id);
      events.emit("succeeded", {
        id: envelope.id,
        task: task.name,
        attempt: envelope.attempt,
        result: stored,
        durationMs: now - startedAt,
      });
      return next === undefined || next.length === 0
        ? { kind: "succeeded", id: envelope.id, result: stored }
        : { kind: "succeeded", id: envelope.id, result: stored, next };
    }
    if (
      failure instanceof SerializationError ||
      (failure instanceof CeleriacError && failure.name === "SerializationError")
    ) {
      return await this.#fail(delivery, envelope, task, record, failure, "result is not JSON");
    }
    return await this.#failed(delivery, envelope, task, record, failure, options);
  }

  async #continueFailed(envelope: Envelope, info: ErrorInfo): Promise<void> {
    const cont = envelope.meta?.cont as Continuation | undefined;
    if (cont === undefined || this.#deps.workflow === undefined) return;
    try {
      await this.#deps.workflow.failed(cont, withoutStack(info), envelope.task);
    } catch (error) {
      this.#deps.events.emit("error", { error, where: `workflow of run ${envelope.id}` });
    }
  }

  /** Settles with the task's promise, or rejects with TimeoutError at timeoutMs (aborting ctx.signal). */
  #withTimeout(
    running: PromiseLike<unknown>,
    task: ResolvedTask,
    attempt: number,
    ctx: AttemptContext,
  ): Promise<unknown> {
    return new Promise((resolve, reject) => {
      const deadline = this.#deadlines.add(task.timeoutMs, () => {
        const error = new TimeoutError(
          `task "${task.name}" timed out after ${task.timeoutMs} ms (attempt ${attempt})`,
        );
        ctx.abort(error);
        reject(error);
      });
      running.then(
        (value) => {
          this.#deadlines.cancel(deadline);
          resolve(value);
        },
        (error: unknown) => {
          this.#deadlines.cancel(deadline);
          reject(error);
        },
      );
    });
  }

  async #failed(
    delivery: Delivery,
    envelope: Envelope,
    task: ResolvedTask,
    record: RunRecord | null,
    failure: unknown,
    options: ProcessOptions,
  ): Promise<Outcome> {
    const { clock, events } = this.#deps;
    const decision = decideRetry(task.retry, failure, envelope.attempt, this.#deps.random);
    if (!decision.retry) {
      const reason =
        decision.reason === "exhausted"
          ? `failed after ${envelope.attempt} attempt${envelope.attempt === 1 ? "" : "s"}`
          : decision.reason === "non-retryable"
            ? "non-retryable error"
            : "error not retried by retryOn";
      return await this.#fail(delivery, envelope, task, record, failure, reason);
    }
    const info = errorInfo(
      failure instanceof RetryRequest && failure.cause !== undefined ? failure.cause : failure,
    );
    const now = clock.now();
    const history = [
      ...(envelope.errors ?? []),
      { ...withoutStack(info), attempt: envelope.attempt, at: now },
    ];
    const delayMs = Math.max(0, Math.round(decision.delayMs));
    const notBefore = now + delayMs;
    const next = await this.#deps.ledger.retry(
      delivery,
      envelope.id,
      { state: "retrying", notBefore, updatedAt: now, errors: history },
      task.resultTtlMs + delayMs,
      toMessage({ ...envelope, attempt: envelope.attempt + 1, notBefore, errors: history }),
      options.takeNext === undefined
        ? undefined
        : { max: 1, leaseMs: options.takeNext.leaseMs, startAt: clock.now() },
    );
    events.emit("retrying", {
      id: envelope.id,
      task: task.name,
      attempt: envelope.attempt,
      error: info,
      delayMs,
    });
    return next === undefined || next.length === 0
      ? { kind: "retrying", id: envelope.id, delayMs, error: info }
      : { kind: "retrying", id: envelope.id, delayMs, error: info, next };
  }

  async #fail(
    delivery: Delivery,
    envelope: Envelope,
    task: ResolvedTask,
    _record: RunRecord | null,
    failure: unknown,
    reason: string,
  ): Promise<Outcome> {
    const { clock, events } = this.#deps;
    const info = errorInfo(failure);
    const now = clock.now();
    const history: AttemptError[] = [
      ...(envelope.errors ?? []),
      { ...withoutStack(info), attempt: envelope.attempt, at: now },
    ];
    const entry: DeadLetter = {
      id: envelope.id,
      task: task.name,
      queue: envelope.queue,
      reason: `${reason}: ${info.name}: ${info.message}`,
      error: info,
      errors: history,
      body: delivery.body,
      at: now,
    };
    await this.#deps.ledger.fail(delivery, entry, {
      patch: { state: "failed", finishedAt: now, updatedAt: now, error: info, errors: history },
      options: { ttlMs: task.resultTtlMs },
    });
    this.#deps.settled(envelope.id);
    await this.#continueFailed(envelope, info);
    events.emit("failed", { id: envelope.id, task: task.name, attempt: envelope.attempt, error: info });
    events.emit("deadLettered", entry);
    return { kind: "failed", id: envelope.id, error: info };
  }

  /** Dead-letters a delivery that cannot run at all; records the run as failed when it has an id. */
  async #reject(delivery: Delivery, envelope: Envelope | undefined, error: unknown): Promise<Outcome> {
    const { clock, events } = this.#deps;
    const info = errorInfo(error);
    const now = clock.now();
    const id = envelope?.id ?? (delivery.id || crypto.randomUUID());
    const entry: DeadLetter = {
      id,
      queue: envelope?.queue ?? delivery.queue,
      reason: `${info.name}: ${info.message}`,
      error: withoutStack(info),
      errors: envelope?.errors ?? [],
      body: delivery.body,
      at: now,
    };
    if (envelope !== undefined) entry.task = envelope.task;
    await this.#deps.ledger.fail(
      delivery,
      entry,
      envelope === undefined
        ? undefined
        : {
            patch: {
              id: envelope.id,
              task: envelope.task,
              queue: envelope.queue,
              state: "failed",
              attempt: envelope.attempt,
              maxAttempts: envelope.attempt,
              enqueuedAt: envelope.enqueuedAt,
              finishedAt: now,
              updatedAt: now,
              error: withoutStack(info),
            },
            options: { ttlMs: 86_400_000, onlyIf: STARTABLE },
          },
    );
    if (envelope !== undefined) {
      this.#deps.settled(envelope.id);
      await this.#continueFailed(envelope, withoutStack(info));
    }
    events.emit("deadLettered", entry);
    return { kind: "rejected", id, reason: entry.reason };
  }
}

/** The record fields a delivery carries, enough to create the run's record when it is missing. */
function runFields(envelope: Envelope, task: ResolvedTask): Omit<RunRecord, "state" | "updatedAt"> {
  const fields: Omit<RunRecord, "state" | "updatedAt"> = {
    id: envelope.id,
    task: envelope.task,
    queue: envelope.queue,
    attempt: envelope.attempt,
    maxAttempts: task.retry.maxAttempts,
    enqueuedAt: envelope.enqueuedAt,
  };
  if (envelope.idempotencyKey !== undefined) fields.idempotencyKey = envelope.idempotencyKey;
  return fields;
}

function isThenable(value: unknown): value is PromiseLike<unknown> {
  return (
    value !== null &&
    (typeof value === "object" || typeof value === "function") &&
    typeof (value as { then?: unknown }).then === "function"
  );
}
