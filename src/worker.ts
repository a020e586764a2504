/**
 * The pull worker: N concurrent slots fed from a pull broker, leases renewed while tasks run,
 * graceful stop. Start it with `app.worker({ ... }).start()`.
 *
 * @module
 */
import type { Broker, Clock, Delivery } from "./contracts.ts";
import type { Emitter } from "./events.ts";
import type { Executor, ProcessOptions } from "./executor.ts";

/**
 * Options of `app.worker()`.
 *
 * @example
 * ```ts
 * app.worker({ queues: ["io"], concurrency: 50 }).start();
 * ```
 */
export interface WorkerOptions {
  /** Queues to serve, in order: earlier queues are served first. @default every queue the app's tasks use */
  queues?: readonly string[];
  /** Tasks run at once. @default 10 */
  concurrency?: number;
  /** How long a received task stays invisible to other workers; renewed every third of it. @default 30_000 */
  leaseMs?: number;
  /** On stop, how long in-flight tasks may finish before their leases are released. @default 10_000 */
  shutdownGraceMs?: number;
  /** Longest single wait for new work before the worker asks again. @default 5_000 */
  pollMs?: number;
}

/** What a worker needs from its app. */
export interface WorkerHost {
  readonly broker: Broker;
  readonly executor: Executor;
  readonly events: Emitter;
  readonly clock: Clock;
  /** Every queue the app's tasks use. */
  queues(): string[];
}

interface Slot {
  delivery: Delivery;
  done: Promise<void>;
}

function checkPositive(name: string, value: number, integer: boolean): number {
  if (
    typeof value !== "number" ||
    !(value > 0) ||
    (integer ? !Number.isSafeInteger(value) : !Number.isFinite(value))
  ) {
    throw new RangeError(
      `${name} must be a positive ${integer ? "integer" : "number"}, got ${String(value)}`,
    );
  }
  return value;
}

/**
 * Pulls tasks from the broker and runs them through the executor. `start()` returns at once;
 * `stop()` stops receiving, waits for in-flight tasks up to the grace period, then releases
 * the rest so another worker picks them up.
 *
 * @example
 * ```ts
 * const worker = app.worker({ concurrency: 10 }).start();
 * // …
 * await worker.stop();
 * ```
 */
export class Worker {
  readonly #host: WorkerHost;
  readonly #queues: readonly string[] | undefined;
  readonly #concurrency: number;
  readonly #leaseMs: number;
  readonly #graceMs: number;
  readonly #pollMs: number;
  readonly #inflight = new Set<Slot>();
  #abort = new AbortController();
  /** Aborted when stop() gives up on in-flight tasks: their ctx.signal fires. */
  #abandon = new AbortController();
  #loop: Promise<void> | undefined;
  #stopping: Promise<void> | undefined;
  #slotFreed: (() => void) | undefined;
  #renewTimer: ReturnType<typeof setInterval> | undefined;
  #processed = 0;
  #firstQueue: string | undefined;

  constructor(host: WorkerHost, options: WorkerOptions = {}) {
    if (!host.broker.receive) {
      throw new TypeError(
        "this broker pushes tasks over HTTP and has no pull worker; serve it with createHandler()",
      );
    }
    this.#host = host;
    if (options.queues !== undefined) {
      if (
        !Array.isArray(options.queues) ||
        options.queues.length === 0 ||
        options.queues.some((q) => typeof q !== "string" || q === "")
      ) {
        throw new TypeError(
          `queues must be a non-empty array of queue names, got ${JSON.stringify(options.queues)}`,
        );
      }
      this.#queues = [...options.queues];
    }
    this.#concurrency = checkPositive("concurrency", options.concurrency ?? 10, true);
    this.#leaseMs = checkPositive("leaseMs", options.leaseMs ?? 30_000, false);
    this.#graceMs = options.shutdownGraceMs ?? 10_000;
    if (!(this.#graceMs >= 0))
      throw new RangeError(`shutdownGraceMs must be >= 0, got ${String(this.#graceMs)}`);
    this.#pollMs = checkPositive("pollMs", options.pollMs ?? 5_000, false);
  }

  /** True between `start()` and the end of `stop()`. */
  get running(): boolean {
    return this.#loop !== undefined;
  }

  /** Tasks running now. */
  get active(): number {
    return this.#inflight.size;
  }

  /** Deliveries processed since start. */
  get processed(): number {
    return this.#processed;
  }

  /** Starts the receive loop in the background and returns the worker. */
  start(): this {
    if (this.#loop !== undefined) return this;
    this.#abort = new AbortController();
    this.#abandon = new AbortController();
    this.#stopping = undefined;
    const queues = this.#queues ?? this.#host.queues();
    this.#firstQueue = queues[0];
    this.#loop = this.#run(queues);
    this.#renewTimer = setInterval(() => this.#renew(), Math.max(10, this.#leaseMs / 3));
    return this;
  }

  /** Stops receiving, lets in-flight tasks finish (up to the grace period), releases the rest. */
  stop(): Promise<void> {
    if (this.#loop === undefined) return Promise.resolve();
    this.#stopping ??= this.#stop();
    return this.#stopping;
  }

  async #stop(): Promise<void> {
    this.#abort.abort();
    this.#slotFreed?.();
    await this.#loop;
    if (this.#inflight.size > 0) {
      let timer: ReturnType<typeof setTimeout> | undefined;
      const grace = new Promise<void>((resolve) => {
        timer = setTimeout(resolve, this.#graceMs);
      });
      await Promise.race([Promise.all([...this.#inflight].map((s) => s.done)), grace]);
      clearTimeout(timer);
    }
    clearInterval(this.#renewTimer);
    const left = [...this.#inflight];
    if (left.length > 0) {
      this.#abandon.abort(new Error("worker stopped before the task finished"));
      try {
        await this.#host.broker.release?.(left.map((s) => s.delivery));
      } catch (error) {
        this.#host.events.emit("error", { error, where: "worker release on stop" });
      }
    }
    this.#loop = undefined;
  }

  async #run(queues: readonly string[]): Promise<void> {
    const broker = this.#host.broker;
    const signal = this.#abort.signal;
    let backoff = 0;
    while (!signal.aborted) {
      const free = this.#concurrency - this.#inflight.size;
      if (free <= 0) {
        await new Promise<void>((resolve) => {
          this.#slotFreed = resolve;
        });
        this.#slotFreed = undefined;
        continue;
      }
      let deliveries: Delivery[];
      try {
        deliveries = await broker.receive!({
          queues,
          max: free,
          leaseMs: this.#leaseMs,
          waitMs: this.#pollMs,
          signal,
          start: { at: this.#host.clock.now() },
        });
        backoff = 0;
      } catch (error) {
        if (signal.aborted) break;
        this.#host.events.emit("error", { error, where: "worker receive" });
        backoff = Math.min(5_000, backoff === 0 ? 100 : backoff * 2);
        await pause(backoff, signal);
        continue;
      }
      for (const delivery of deliveries) this.#launch(delivery);
    }
  }

  #launch(delivery: Delivery): void {
    const slot = { delivery } as Slot;
    slot.done = this.#runSlot(slot).finally(() => {
      this.#inflight.delete(slot);
      this.#slotFreed?.();
    });
    this.#inflight.add(slot);
  }

  /**
   * Runs a delivery, then whatever the ledger handed back with its success (Redis leases the next
   * task of the same queue in the same round trip). Only the first queue chains, so a busy later
   * queue never starves an earlier one.
   */
  async #runSlot(slot: Slot): Promise<void> {
    const executor = this.#host.executor;
    const signal = this.#abandon.signal;
    // Made once per slot, not per task.
    const chained: ProcessOptions = { signal, takeNext: { leaseMs: this.#leaseMs } };
    const single: ProcessOptions = { signal };
    for (let current: Delivery | undefined = slot.delivery; current !== undefined; ) {
      slot.delivery = current;
      const chain = !this.#abort.signal.aborted && current.queue === this.#firstQueue;
      let next: Delivery | undefined;
      try {
        const outcome = await executor.process(current, chain ? chained : single);
        if (outcome.kind === "succeeded" || outcome.kind === "retrying") next = outcome.next?.[0];
      } catch (error) {
        this.#host.events.emit("error", { error, where: `processing run ${current.id}` });
      }
      this.#processed++;
      current = next;
    }
  }

  #renew(): void {
    if (this.#inflight.size === 0 || !this.#host.broker.renew) return;
    const deliveries = [...this.#inflight].map((s) => s.delivery);
    this.#host.broker
      .renew(deliveries, this.#leaseMs)
      .catch((error) => this.#host.events.emit("error", { error, where: "worker lease renewal" }));
  }
}

function pause(ms: number, signal: AbortSignal): Promise<void> {
  return new Promise((resolve) => {
    const done = () => {
      clearTimeout(timer);
      signal.removeEventListener("abort", done);
      resolve();
    };
    const timer = setTimeout(done, ms);
    signal.addEventListener("abort", done, { once: true });
  });
}
