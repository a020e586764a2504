/**
 * Internal: the pool — threads started on demand up to `max` (attempts wait in order for a free
 * one), stopped after `idleMs` idle above `min`, replaced after `maxTasksPerChild` tasks, over
 * `maxMemoryPerChildMb`, at a timeout (terminated), after an abort not heeded within
 * `abortGraceMs`, and when one ends on its own (its attempt fails with `ThreadError`).
 *
 * @module
 */
import { NonRetryableError, ThreadError, TimeoutError } from "../src/errors.ts";
import type { PoolCall, PoolIo, PoolRecycled, PoolStats, TaskPool } from "../src/pool.ts";
import { checkKeys, keysOf, positiveInt } from "../src/_options.ts";
import type { ThreadPoolOptions } from "./mod.ts";
import type { FromThread, ThreadErrorInfo } from "./_protocol.ts";
import { availableCores, spawnThread, type Thread, type ThreadEnd } from "./_spawn.ts";

/** The options with defaults (max 0: the available cores, read at the first attempt). */
export interface ResolvedPoolOptions {
  min: number;
  max: number;
  idleMs: number;
  maxTasksPerChild: number | undefined;
  maxMemoryPerChildMb: number | undefined;
  abortGraceMs: number;
}

const KEYS = keysOf<ThreadPoolOptions>({
  min: true,
  max: true,
  idleMs: true,
  maxTasksPerChild: true,
  maxMemoryPerChildMb: true,
  abortGraceMs: true,
});

function nonNegative(name: string, value: number): number {
  if (typeof value !== "number" || !Number.isFinite(value) || value < 0) {
    throw new RangeError(`threads: ${name} must be a non-negative number, got ${String(value)}`);
  }
  return value;
}

/** Validates `threads()` options (TypeError for an unknown one, RangeError for a bad value). */
export function checkPoolOptions(options: ThreadPoolOptions): ResolvedPoolOptions {
  checkKeys(options, KEYS, "threads");
  const min = options.min === undefined ? 0 : Math.floor(nonNegative("min", options.min));
  const max = options.max === undefined ? 0 : positiveInt("threads: max", options.max);
  if (max > 0 && min > max) throw new RangeError(`threads: min (${min}) is above max (${max})`);
  const opt = (name: string, v: number | undefined) =>
    v === undefined ? undefined : positiveInt(`threads: ${name}`, v);
  return {
    min,
    max,
    idleMs: nonNegative("idleMs", options.idleMs ?? 10_000),
    maxTasksPerChild: opt("maxTasksPerChild", options.maxTasksPerChild),
    maxMemoryPerChildMb: opt("maxMemoryPerChildMb", options.maxMemoryPerChildMb),
    abortGraceMs: nonNegative("abortGraceMs", options.abortGraceMs ?? 1_000),
  };
}

interface Job {
  readonly n: number;
  readonly call: PoolCall;
  readonly io: PoolIo;
  readonly resolve: (value: unknown) => void;
  readonly reject: (error: unknown) => void;
  onAbort?: () => void;
  graceTimer?: ReturnType<typeof setTimeout>;
  /** Its time limit: loading the module, then running it. */
  limitTimer?: ReturnType<typeof setTimeout>;
}

interface Slot {
  readonly id: number;
  thread: Thread | undefined;
  ready: boolean;
  job: Job | undefined;
  tasks: number;
  idleTimer?: ReturnType<typeof setTimeout>;
}

/** An error from a thread, as the executor records it (NonRetryableError keeps its meaning). */
function rebuild(info: ThreadErrorInfo): Error {
  let error: Error;
  if (info.name === "NonRetryableError") error = new NonRetryableError(info.message);
  else if (info.name === "TimeoutError") error = new TimeoutError(info.message);
  else {
    error = new Error(info.message);
    error.name = info.name;
  }
  if (info.stack !== undefined) error.stack = info.stack;
  return error;
}

/** A pool of threads (see `threads()`). */
export class ThreadPool implements TaskPool {
  readonly #o: ResolvedPoolOptions;
  #max: number;
  readonly #slots = new Set<Slot>();
  readonly #waiting: Job[] = [];
  #ids = 0;
  #jobs = 0;
  #completed = 0;
  #shrunk = 0;
  readonly #recycled: PoolRecycled = { tasks: 0, memory: 0, timeout: 0, aborted: 0, crashed: 0 };

  constructor(options: ResolvedPoolOptions) {
    this.#o = options;
    this.#max = options.max;
  }

  async run(call: PoolCall, io: PoolIo): Promise<unknown> {
    if (io.signal.aborted) throw io.signal.reason;
    if (this.#max === 0) this.#max = Math.max(1, await availableCores(), this.#o.min);
    return new Promise((resolve, reject) => {
      const job: Job = { n: ++this.#jobs, call, io, resolve, reject };
      job.onAbort = () => this.#aborted(job);
      io.signal.addEventListener("abort", job.onAbort, { once: true });
      this.#waiting.push(job);
      this.#dispatch();
    });
  }

  stats(): PoolStats {
    let busy = 0;
    for (const s of this.#slots) if (s.job !== undefined) busy++;
    return {
      kind: "threads",
      min: this.#o.min,
      max: this.#max === 0 ? this.#o.max : this.#max,
      size: this.#slots.size,
      busy,
      waiting: this.#waiting.length,
      completed: this.#completed,
      shrunk: this.#shrunk,
      recycled: { ...this.#recycled },
    };
  }

  close(): Promise<void> {
    const closed = () => new ThreadError("closed", "the thread pool was closed");
    for (const job of this.#waiting.splice(0)) this.#settle(job, undefined, closed());
    for (const slot of [...this.#slots]) {
      if (slot.job !== undefined) this.#settle(slot.job, undefined, closed());
      this.#drop(slot);
    }
    return Promise.resolve();
  }

  /** Hands waiting attempts to idle threads, starting threads while under max. */
  #dispatch(): void {
    while (this.#waiting.length > 0) {
      const idle = [...this.#slots].find((s) => s.ready && s.thread !== undefined && s.job === undefined);
      if (idle !== undefined) {
        this.#assign(idle, this.#waiting.shift()!);
        continue;
      }
      const starting = [...this.#slots].filter((s) => !s.ready).length;
      if (this.#slots.size >= this.#max || starting >= this.#waiting.length) return;
      this.#start();
    }
    this.#keepMin();
  }

  #keepMin(): void {
    while (this.#slots.size < this.#o.min) this.#start();
  }

  #start(): void {
    const slot: Slot = { id: ++this.#ids, thread: undefined, ready: false, job: undefined, tasks: 0 };
    this.#slots.add(slot);
    spawnThread(
      { message: (m) => this.#message(slot, m), ended: (end) => this.#ended(slot, end) },
      this.#o.maxMemoryPerChildMb,
    ).then(
      (thread) => {
        if (!this.#slots.has(slot)) {
          thread.terminate();
          return;
        }
        slot.thread = thread;
        thread.post({ t: "init", threadId: slot.id, heap: this.#o.maxMemoryPerChildMb !== undefined });
        // Its first message may have come before this (it is only used from here on).
        if (slot.ready) this.#idle(slot);
      },
      (error: unknown) => {
        this.#slots.delete(slot);
        const job = this.#waiting.shift();
        if (job !== undefined) {
          this.#settle(
            job,
            undefined,
            new ThreadError("crash", `could not start a pool thread: ${String(error)}`),
          );
        }
        this.#dispatch();
      },
    );
  }

  #assign(slot: Slot, job: Job): void {
    clearTimeout(slot.idleTimer);
    slot.job = job;
    this.#limit(slot, job);
    slot.thread!.post({ t: "run", job: job.n, call: job.call });
  }

  /** (Re)starts the attempt's time limit: past it, its thread is terminated. */
  #limit(slot: Slot, job: Job): void {
    clearTimeout(job.limitTimer);
    job.limitTimer = setTimeout(() => {
      if (slot.job !== job) return;
      const { task, timeoutMs, attempt } = job.call;
      this.#kill(
        slot,
        "timeout",
        new TimeoutError(`task "${task}" timed out after ${timeoutMs} ms (attempt ${attempt})`),
      );
    }, job.call.timeoutMs);
  }

  #message(slot: Slot, m: FromThread): void {
    if (m.t === "ready") {
      slot.ready = true;
      if (slot.thread !== undefined) this.#idle(slot);
      return;
    }
    const job = slot.job;
    if (job === undefined || m.job !== job.n) return;
    if (m.t === "started") {
      this.#limit(slot, job);
      return;
    }
    if (m.t === "progress") {
      job.io.progress(m.value);
      return;
    }
    slot.job = undefined;
    slot.tasks++;
    this.#completed++;
    if (m.ok) this.#settle(job, m.value, undefined);
    else this.#settle(job, undefined, rebuild(m.error));
    const o = this.#o;
    if (o.maxTasksPerChild !== undefined && slot.tasks >= o.maxTasksPerChild) this.#recycle(slot, "tasks");
    else if (o.maxMemoryPerChildMb !== undefined && m.heapMb !== null && m.heapMb > o.maxMemoryPerChildMb) {
      this.#recycle(slot, "memory");
    } else this.#idle(slot);
  }

  /** A thread is free: the next waiting attempt, or (above min) a timer to stop it. */
  #idle(slot: Slot): void {
    if (this.#waiting.length > 0) {
      this.#assign(slot, this.#waiting.shift()!);
      return;
    }
    this.#dispatch();
    if (this.#slots.size > this.#o.min) {
      clearTimeout(slot.idleTimer);
      slot.idleTimer = setTimeout(() => {
        if (slot.job === undefined && this.#slots.size > this.#o.min && this.#slots.has(slot)) {
          this.#shrunk++;
          this.#drop(slot);
        }
      }, this.#o.idleMs);
      // An idle pool does not keep its process alive.
      (slot.idleTimer as { unref?: () => void }).unref?.();
    }
  }

  /** The thread ended on its own: its attempt fails with ThreadError; another is started on demand. */
  #ended(slot: Slot, end: ThreadEnd): void {
    if (!this.#slots.has(slot)) return;
    const job = slot.job;
    this.#slots.delete(slot);
    clearTimeout(slot.idleTimer);
    if (!slot.ready) {
      // It never started (a broken install, a thread the runtime refused): the attempt waiting
      // longest fails, rather than the pool starting threads for ever.
      const first = this.#waiting.shift();
      if (first !== undefined) {
        this.#settle(
          first,
          undefined,
          new ThreadError("crash", `could not start a pool thread: ${end.detail}`),
        );
      }
      // The others try a thread of their own (each fails the same way, or one starts).
      this.#dispatch();
      return;
    }
    if (job !== undefined) {
      if (end.reason === "memory") this.#recycled.memory++;
      else this.#recycled.crashed++;
      this.#completed++;
      this.#settle(job, undefined, new ThreadError(end.reason, `task "${job.call.task}": ${end.detail}`));
    }
    this.#dispatch();
  }

  /** An attempt's signal fired: a timeout terminates its thread now, other aborts after a grace. */
  #aborted(job: Job): void {
    const waiting = this.#waiting.indexOf(job);
    if (waiting >= 0) {
      this.#waiting.splice(waiting, 1);
      this.#settle(job, undefined, job.io.signal.reason);
      return;
    }
    const slot = [...this.#slots].find((s) => s.job === job);
    if (slot === undefined) return;
    const reason: unknown = job.io.signal.reason;
    if (reason instanceof TimeoutError) {
      this.#kill(slot, "timeout", reason);
      return;
    }
    slot.thread?.post({
      t: "abort",
      job: job.n,
      reason: reason instanceof Error ? reason.message : String(reason),
    });
    job.graceTimer = setTimeout(() => {
      if (slot.job === job) this.#kill(slot, "aborted", reason);
    }, this.#o.abortGraceMs);
  }

  #kill(slot: Slot, why: "timeout" | "aborted", error: unknown): void {
    const job = slot.job;
    this.#recycled[why]++;
    this.#drop(slot);
    if (job !== undefined) {
      this.#completed++;
      this.#settle(job, undefined, error);
    }
    this.#dispatch();
  }

  #recycle(slot: Slot, why: "tasks" | "memory"): void {
    this.#recycled[why]++;
    this.#drop(slot);
    this.#dispatch();
  }

  #drop(slot: Slot): void {
    this.#slots.delete(slot);
    clearTimeout(slot.idleTimer);
    slot.job = undefined;
    slot.thread?.terminate();
  }

  #settle(job: Job, value: unknown, error: unknown): void {
    clearTimeout(job.graceTimer);
    clearTimeout(job.limitTimer);
    if (job.onAbort !== undefined) job.io.signal.removeEventListener("abort", job.onAbort);
    if (error === undefined) job.resolve(value);
    else job.reject(error);
  }
}
