/**
 * Internal: the `ctx` a task receives. A class, so a task that touches neither `signal` nor
 * `progress` costs one small object and no closures or AbortController.
 *
 * @module
 */
import type { Clock, Delivery, Store } from "../contracts.ts";
import { RetryRequest } from "../errors.ts";
import type { AttemptLocks, LeasedLocks } from "../flow/_attempt-locks.ts";
import type { LockHandle, TaskLockOptions } from "../flow/lock.ts";
import { onceKey } from "../keys.ts";
import { ACTIVE_GUARD } from "../run-state.ts";
import type { Emitter } from "../events.ts";
import { toJson } from "../json.ts";
import type { TaskContext } from "../task.ts";

/** What a context needs to record progress. */
export interface ContextDeps {
  store: Store;
  clock: Clock;
  events: Emitter;
}

/** The context of one attempt. */
export class AttemptContext implements TaskContext {
  readonly id: string;
  readonly task: string;
  readonly attempt: number;
  readonly maxAttempts: number;
  readonly #queue: string;
  readonly #ttlMs: number;
  readonly #deps: ContextDeps;
  readonly #outer: AbortSignal | undefined;
  #controller: AbortController | undefined;
  #reason: unknown;
  #chain: Promise<unknown> | undefined;
  readonly #delivery: Delivery;
  readonly #leased: LeasedLocks;
  readonly #timeoutMs: number;
  /** Made on the first `lock()` (most tasks never take one). */
  #locks: AttemptLocks | undefined;

  constructor(
    deps: ContextDeps,
    run: { id: string; attempt: number; queue: string; idempotencyKey?: string | undefined },
    task: { name: string; retry: { maxAttempts: number }; resultTtlMs: number; timeoutMs: number },
    outer: AbortSignal | undefined,
    delivery: Delivery,
    leased: LeasedLocks,
  ) {
    this.#deps = deps;
    this.id = run.id;
    this.task = task.name;
    this.attempt = run.attempt;
    this.maxAttempts = task.retry.maxAttempts;
    this.#queue = run.queue;
    this.#ttlMs = task.resultTtlMs;
    this.#outer = outer;
    this.#key = run.idempotencyKey;
    this.#delivery = delivery;
    this.#leased = leased;
    this.#timeoutMs = task.timeoutMs;
  }

  readonly #key: string | undefined;

  /** `<task>:<idempotency key>`, or the run id: the same on every attempt and redelivery. */
  get idempotencyKey(): string {
    return this.#key === undefined ? this.id : `${this.task}:${this.#key}`;
  }

  async once<T>(name: string, fn: () => T | Promise<T>): Promise<T> {
    if (typeof name !== "string" || name.length === 0) {
      throw new TypeError(`ctx.once name must be a non-empty string, got ${JSON.stringify(name)}`);
    }
    const { store } = this.#deps;
    const key = onceKey(this.id, name);
    const recorded = await store.get(key);
    if (recorded !== null) return (JSON.parse(recorded) as { v: T }).v;
    // What a re-run gets back is the JSON round trip of the result: so does this run.
    const json = toJson(await fn(), `result of ctx.once("${name}")`);
    await store.set(key, `{"v":${json}}`, this.#ttlMs);
    return JSON.parse(json) as T;
  }

  /** Made on first use: aborted at the timeout or when the worker abandons the attempt. */
  get signal(): AbortSignal {
    if (this.#controller === undefined) {
      const controller = new AbortController();
      this.#controller = controller;
      const outer = this.#outer;
      if (this.#reason !== undefined) controller.abort(this.#reason);
      else if (outer?.aborted) controller.abort(outer.reason);
      else if (outer !== undefined) {
        this.#onOuterAbort = () => this.abort(outer.reason);
        outer.addEventListener("abort", this.#onOuterAbort, { once: true });
      }
    }
    return this.#controller.signal;
  }

  /** Made with the signal, only when a task asks for it (most never do). */
  #onOuterAbort: (() => void) | undefined;

  /** Aborts `signal` (once). */
  abort(reason: unknown): void {
    if (this.#reason !== undefined) return;
    this.#reason = reason;
    this.#controller?.abort(reason);
  }

  progress(value: unknown): Promise<void> {
    const progress = JSON.parse(toJson(value, "progress")) as unknown;
    const { store, clock, events } = this.#deps;
    const write = (this.#chain ?? Promise.resolve()).then(() =>
      store.updateRun(
        this.id,
        { progress, updatedAt: clock.now() },
        { ttlMs: this.#ttlMs, onlyIf: ACTIVE_GUARD, queue: this.#queue },
      ),
    );
    this.#chain = write.catch((error) =>
      events.emit("error", { error, where: `progress of run ${this.id}` }),
    );
    events.emit("progress", { id: this.id, task: this.task, attempt: this.attempt, progress });
    return write.then(() => {});
  }

  retry(options: { delayMs?: number; reason?: unknown } = {}): never {
    const { delayMs } = options;
    if (delayMs !== undefined && (!Number.isFinite(delayMs) || delayMs < 0)) {
      throw new RangeError(`ctx.retry delayMs must be a non-negative number, got ${delayMs}`);
    }
    throw new RetryRequest(delayMs, options.reason);
  }

  lock(key: string, options: TaskLockOptions = {}): Promise<LockHandle> {
    this.#locks ??= this.#leased.open(this.#delivery, this.id, this.#timeoutMs);
    return this.#locks.take(key, options, this.signal);
  }

  /**
   * Detaches from the worker's signal and releases the attempt's locks; returns what to wait for
   * (pending progress writes, lock releases), if anything.
   */
  settle(): Promise<unknown> | undefined {
    if (this.#onOuterAbort !== undefined) this.#outer?.removeEventListener("abort", this.#onOuterAbort);
    if (this.#locks === undefined) return this.#chain;
    const released = this.#locks.end();
    return this.#chain === undefined ? released : Promise.all([this.#chain, released]);
  }
}
