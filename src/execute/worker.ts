/**
 * The pull worker: N concurrent slots fed from a pull broker, leases renewed while tasks run,
 * graceful stop. Start it with `app.worker({ ... }).start()`.
 *
 * @module
 */
import type {
  Broker,
  Clock,
  ControlCommand,
  Delivery,
  LeaseState,
  OpsStore,
  WorkerInfo,
} from "../contracts.ts";
import { CancelledError } from "../errors.ts";
import type { Emitter } from "../events.ts";
import { processId, runtimeName } from "../ops/_runtime.ts";
import { Reporter, reporterId } from "../ops/heartbeat.ts";
import type { StatsCollector } from "../ops/stats.ts";
import { VERSION } from "../version.ts";
import type { Executor, ProcessOptions } from "./executor.ts";
import type { TaskPool } from "../pool.ts";
import { checkConcurrency, resolveWorkerOptions, type WorkerOptions } from "./worker-options.ts";

export type { WorkerOptions } from "./worker-options.ts";

/** What a worker needs from its app. */
export interface WorkerHost {
  readonly broker: Broker;
  readonly executor: Executor;
  readonly events: Emitter;
  readonly clock: Clock;
  /** Every queue the app's tasks use. */
  queues(): string[];
  /** Told when the worker starts and when it has stopped (the app stops running ones on close). */
  running?(worker: Worker, on: boolean): void;
  /** The worker registry (the store's), when the store keeps one. */
  readonly ops?: OpsStore | undefined;
  /** The app's task statistics, reported with each heartbeat. */
  readonly stats?: StatsCollector | undefined;
}

interface Slot {
  delivery: Delivery;
  done: Promise<void>;
  /** Holds one of the `concurrency` permits (its task is starting or running its code). */
  held: boolean;
  /** When its delivery's lease was last known held (`performance.now()`). */
  renewedAt: number;
  /** Aborts the running task's `ctx.signal` (the worker gave up on it, or its run was cancelled). */
  control: AbortController;
  /** When its current task got its permit (the host clock). */
  since: number;
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
  #concurrency: number;
  /** Slots: the concurrency plus the prefetch. */
  #slots: number;
  readonly #prefetch: number;
  readonly #heartbeatMs: number;
  readonly #hostname: string | null;
  /** Unique per worker and start: how the registry and `app.control` name it. */
  #id = "";
  #startedAt = 0;
  #reporter: Reporter | undefined;
  #counters = { processed: 0, succeeded: 0, failed: 0, retried: 0 };
  #ended: Promise<void> = Promise.resolve();
  #end: () => void = () => {};
  readonly #leaseMs: number;
  readonly #graceMs: number;
  readonly #pollMs: number;
  readonly #pool: TaskPool | undefined;
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
  /** Permits free: at most `concurrency` slots start or run a task's code at once. */
  #permits = 0;
  /** Slots waiting for a permit (prefetched tasks); called with false when the worker stops. */
  #waiting: ((granted: boolean) => void)[] = [];

  constructor(host: WorkerHost, options: WorkerOptions = {}) {
    if (!host.broker.receive) {
      throw new TypeError(
        "this broker pushes tasks over HTTP and has no pull worker; serve it with createHandler()",
      );
    }
    this.#host = host;
    const resolved = resolveWorkerOptions(options);
    this.#queues = resolved.queues;
    this.#concurrency = resolved.concurrency;
    this.#prefetch = resolved.prefetch;
    this.#heartbeatMs = resolved.heartbeatMs;
    this.#hostname = resolved.hostname;
    this.#slots = resolved.concurrency + resolved.prefetch;
    this.#permits = resolved.concurrency;
    this.#leaseMs = resolved.leaseMs;
    this.#graceMs = resolved.shutdownGraceMs;
    this.#pollMs = resolved.pollMs;
    this.#pool = resolved.pool;
  }

  /** True between `start()` and the end of `stop()`. */
  get running(): boolean {
    return this.#loop !== undefined;
  }

  /** Tasks running now (prefetched ones waiting for a free slot not counted). */
  get active(): number {
    return this.#concurrency - this.#permits;
  }

  /** Tasks leased and waiting for a free slot. */
  get prefetched(): number {
    return this.#waiting.length;
  }

  /** Deliveries processed since start. */
  get processed(): number {
    return this.#processed;
  }

  /** This worker's id in the registry (set by `start()`; a new one on each start). */
  get id(): string {
    return this.#id;
  }

  /** Tasks it runs at once (changed by {@link setConcurrency} or `app.control.concurrency`). */
  get concurrency(): number {
    return this.#concurrency;
  }

  /** Resolves when the worker has stopped (by `stop()` or a remote shutdown). */
  stopped(): Promise<void> {
    return this.#ended;
  }

  /**
   * Changes how many tasks run at once, taking effect at once: more start now if leased ones
   * wait; with fewer, running tasks finish and no new one starts until it is below the limit.
   *
   * @example
   * ```ts
   * worker.setConcurrency(50);
   * ```
   */
  setConcurrency(concurrency: number): void {
    checkConcurrency(concurrency);
    const delta = concurrency - this.#concurrency;
    this.#concurrency = concurrency;
    this.#slots = concurrency + this.#prefetch;
    if (this.#loop === undefined) return;
    this.#permits += delta;
    while (this.#permits > 0 && this.#waiting.length > 0) {
      this.#permits--;
      this.#waiting.shift()?.(true);
    }
    this.#slotFreed?.();
  }

  /** What the registry shows of this worker. */
  info(): WorkerInfo {
    const active: WorkerInfo["active"] = [];
    for (const slot of this.#inflight) {
      if (slot.held) active.push({ id: slot.delivery.id, queue: slot.delivery.queue, since: slot.since });
    }
    return {
      id: this.#id,
      kind: "worker",
      hostname: this.#hostname,
      runtime: runtimeName(),
      pid: processId(),
      queues: [...(this.#queues ?? this.#host.queues())],
      concurrency: this.#concurrency,
      prefetch: this.#prefetch,
      startedAt: this.#startedAt,
      version: VERSION,
      beatAt: this.#host.clock.now(),
      heartbeatMs: this.#heartbeatMs,
      state: this.#stopping === undefined ? "running" : "stopping",
      counters: { ...this.#counters },
      active,
      ...(this.#pool === undefined ? {} : { pool: this.#pool.stats() }),
    };
  }

  #command(command: ControlCommand): void {
    if (command.type === "concurrency") this.setConcurrency(command.concurrency);
    else if (command.type === "shutdown") void this.stop();
  }

  /** Starts the receive loop in the background and returns the worker. */
  start(): this {
    if (this.#loop !== undefined) return this;
    this.#abort = new AbortController();
    this.#abandon = new AbortController();
    this.#stopping = undefined;
    const queues = this.#queues ?? this.#host.queues();
    this.#firstQueue = queues[0];
    this.#permits = this.#concurrency;
    this.#id = reporterId(this.#hostname, processId());
    this.#startedAt = this.#host.clock.now();
    this.#counters = { processed: 0, succeeded: 0, failed: 0, retried: 0 };
    this.#ended = new Promise((resolve) => {
      this.#end = resolve;
    });
    this.#loop = this.#run(queues);
    this.#renewTimer = setInterval(() => this.#renew(), Math.max(10, this.#leaseMs / 3));
    const ops = this.#host.ops;
    if (ops !== undefined) {
      const host = { ops, clock: this.#host.clock, events: this.#host.events, stats: this.#host.stats };
      this.#reporter = new Reporter(
        host,
        this.#heartbeatMs,
        () => this.info(),
        (c) => this.#command(c),
      );
      this.#reporter.start();
    }
    this.#host.running?.(this, true);
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
    void this.#reporter?.beat(); // shows it stopping
    this.#slotFreed?.();
    // Prefetched tasks that have not started go back to their queue now.
    for (const grant of this.#waiting.splice(0)) grant(false);
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
      const reason = new Error("worker stopped before the task finished");
      this.#abandon.abort(reason);
      for (const slot of left) slot.control.abort(reason);
      try {
        await this.#host.broker.release?.(left.map((s) => s.delivery));
      } catch (error) {
        this.#host.events.emit("error", { error, where: "worker release on stop" });
      }
    }
    await this.#reporter?.stop(this.#id);
    this.#reporter = undefined;
    await this.#pool?.close().catch((error: unknown) => {
      this.#host.events.emit("error", { error, where: "worker pool close" });
    });
    this.#loop = undefined;
    this.#host.running?.(this, false);
    this.#end();
  }

  async #run(queues: readonly string[]): Promise<void> {
    const broker = this.#host.broker;
    const signal = this.#abort.signal;
    let backoff = 0;
    while (!signal.aborted) {
      const free = this.#slots - this.#inflight.size;
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
          start: true,
        });
        backoff = 0;
      } catch (error) {
        if (signal.aborted) break;
        this.#host.events.emit("error", { error, where: "worker receive" });
        backoff = Math.min(5_000, backoff === 0 ? 100 : backoff * 2);
        await pause(backoff, signal);
        continue;
      }
      // The time of the lease, taken before any of them runs (the first may block the loop).
      const leasedAt = performance.now();
      for (const delivery of deliveries) this.#launch(delivery, leasedAt);
    }
  }

  #launch(delivery: Delivery, leasedAt: number): void {
    const slot = {
      delivery,
      held: false,
      renewedAt: leasedAt,
      control: new AbortController(),
      since: 0,
    } as Slot;
    slot.done = this.#runSlot(slot).finally(() => {
      this.#inflight.delete(slot);
      this.#slotFreed?.();
    });
    this.#inflight.add(slot);
  }

  /** A permit: at once when one is free; else waits for one (false: the worker stopped). */
  #acquire(): boolean | Promise<boolean> {
    if (this.#abort.signal.aborted) return false;
    if (this.#permits > 0) {
      this.#permits--;
      return true;
    }
    return new Promise((resolve) => this.#waiting.push(resolve));
  }

  /** Gives a permit back: straight to the longest-waiting slot, if any. */
  #free(slot: Slot): void {
    if (!slot.held) return;
    slot.held = false;
    if (this.#permits < 0) {
      this.#permits++; // the concurrency was lowered: this permit goes away
      return;
    }
    const next = this.#waiting.shift();
    if (next !== undefined) next(true);
    else this.#permits++;
  }

  /**
   * Runs a delivery, then whatever the ledger handed back with its success (Redis leases the next
   * task of the same queue in the same round trip). Only the first queue chains, so a busy later
   * queue never starves an earlier one. A slot runs only while it holds a permit; it gives the
   * permit back as soon as the task's code is done, so a prefetched task starts while this one's
   * outcome is being recorded.
   */
  async #runSlot(slot: Slot): Promise<void> {
    const executor = this.#host.executor;
    const onRan = () => this.#free(slot);
    // Made once per slot, not per task (again only after a task's signal was aborted).
    let signal = slot.control.signal;
    const pool = this.#pool;
    let chained: ProcessOptions = { signal, onRan, pool, takeNext: { leaseMs: this.#leaseMs } };
    let single: ProcessOptions = { signal, onRan, pool };
    for (let current: Delivery | undefined = slot.delivery; current !== undefined; ) {
      if (slot.delivery !== current) slot.renewedAt = performance.now(); // a fresh lease
      slot.delivery = current;
      let permit = this.#acquire();
      if (typeof permit !== "boolean") permit = await permit;
      if (!permit) {
        await this.#giveBack(current);
        return;
      }
      slot.held = true;
      slot.since = this.#host.clock.now();
      // A prefetched delivery that waited past a renewal (the loop may have been blocked) is
      // renewed before it starts, and dropped when its lease is no longer this worker's.
      if (performance.now() - slot.renewedAt > this.#leaseMs / 3 && !(await this.#stillHeld(slot))) {
        this.#free(slot);
        return;
      }
      if (signal.aborted && !this.#abandon.signal.aborted) {
        slot.control = new AbortController();
        signal = slot.control.signal;
        chained = { signal, onRan, pool, takeNext: { leaseMs: this.#leaseMs } };
        single = { signal, onRan, pool };
      }
      const chain = !this.#abort.signal.aborted && current.queue === this.#firstQueue;
      let next: Delivery | undefined;
      try {
        const outcome = await executor.process(current, chain ? chained : single);
        this.#count(outcome.kind);
        if (outcome.kind === "succeeded" || outcome.kind === "retrying" || outcome.kind === "duplicate") {
          next = outcome.next?.[0];
        }
      } catch (error) {
        this.#host.events.emit("error", { error, where: `processing run ${current.id}` });
      } finally {
        this.#free(slot);
      }
      this.#processed++;
      current = next;
    }
  }

  #count(kind: string): void {
    const c = this.#counters;
    c.processed++;
    if (kind === "succeeded") c.succeeded++;
    else if (kind === "retrying") c.retried++;
    else if (kind === "failed" || kind === "rejected") c.failed++;
  }

  /** A leased delivery that will not run here (the worker is stopping): back to its queue. */
  async #giveBack(delivery: Delivery): Promise<void> {
    try {
      await this.#host.broker.release?.([delivery]);
    } catch (error) {
      this.#host.events.emit("error", { error, where: "worker release on stop" });
    }
  }

  /** Renews one slot's lease now; false when it is no longer held (lost or cancelled). */
  async #stillHeld(slot: Slot): Promise<boolean> {
    try {
      const [state] = (await this.#host.executor.renew([slot.delivery], this.#leaseMs)) ?? ["held"];
      this.#renewed(slot, state ?? "held");
      return state === undefined || state === "held";
    } catch (error) {
      this.#host.events.emit("error", { error, where: "worker lease renewal" });
      return true; // the backend did not answer: the lease may well be held; run it
    }
  }

  #renewed(slot: Slot, state: LeaseState): void {
    if (state === "held") slot.renewedAt = performance.now();
    else if (state === "cancelled" && !slot.control.signal.aborted) {
      slot.control.abort(new CancelledError(`run ${slot.delivery.id} was cancelled`));
    }
  }

  #renew(): void {
    if (this.#inflight.size === 0 || !this.#host.broker.renew) return;
    const slots = [...this.#inflight];
    this.#host.executor
      .renew(
        slots.map((s) => s.delivery),
        this.#leaseMs,
      )
      .then(
        (states) => {
          if (states === undefined) return;
          slots.forEach((slot, i) => {
            this.#renewed(slot, states[i] ?? "held");
          });
        },
        (error: unknown) => this.#host.events.emit("error", { error, where: "worker lease renewal" }),
      );
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
