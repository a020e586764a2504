/**
 * The runs of bench/pool.ts: one celeriac worker (memory or Redis backend, on the event loop or
 * with a thread pool) or one BullMQ worker (inline or sandboxed in worker threads) warmed up and
 * then timed over N tasks; the event-loop lag sampler; and the bare thread round trips the pool
 * overhead is compared with.
 *
 * @module
 */
import { spawn } from "node:child_process";
import { setPriority } from "node:os";
import { Worker as NodeWorker } from "node:worker_threads";
import { Queue, Worker as BullWorker } from "bullmq";
import { Redis as IoRedis } from "ioredis";
import { memory } from "../adapters/memory/mod.ts";
import { redis } from "../adapters/redis/mod.ts";
import { createApp, type PoolCall, type TaskPool } from "../mod.ts";
import { threadModule, threads } from "../threads/mod.ts";

/** What a task does: SHA-256 rounds (the CPU task), nothing through a module, nothing through `run`. */
export type Kind = "hash" | "noop" | "plain";

/** One timed run. */
export interface Measured {
  /** Wall time from the first enqueue of the timed batch to its last completion. */
  ms: number;
  /** CPU time of the whole process (every thread), µs. */
  cpuUs: number;
  n: number;
}

export const HASH_MODULE = new URL("./_pool-hash.task.ts", import.meta.url);
export const NOOP_MODULE = new URL("./_pool-noop.task.ts", import.meta.url);
const BULL_PROCESSOR = new URL("./_pool-bullmq.mjs", import.meta.url);
const CHUNK = 1_000;

export function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}

/** Counts completions; `batch(n)` resolves at the n-th since it was called, rejects on a failure. */
class Counter {
  #hits = 0;
  #want = Number.POSITIVE_INFINITY;
  #wake: () => void = () => {};
  #fail: (error: Error) => void = () => {};

  hit(): void {
    if (++this.#hits >= this.#want) this.#wake();
  }

  failed(why: string): void {
    this.#fail(new Error(why));
  }

  /** Runs `send` and waits for `n` completions (a generous time limit). */
  async batch(n: number, send: () => Promise<void>, limitMs = 120_000): Promise<void> {
    this.#hits = 0;
    this.#want = n;
    let timer: ReturnType<typeof setTimeout> | undefined;
    const done = new Promise<void>((resolve, reject) => {
      this.#wake = resolve;
      this.#fail = reject;
      timer = setTimeout(() => reject(new Error(`${this.#hits}/${n} after ${limitMs} ms`)), limitMs);
    });
    try {
      await send();
      await done;
    } finally {
      clearTimeout(timer);
    }
  }
}

/** Times `fn`: wall and process CPU. */
async function timed(n: number, fn: () => Promise<void>): Promise<Measured> {
  const c0 = process.cpuUsage();
  const t0 = performance.now();
  await fn();
  const ms = performance.now() - t0;
  const c = process.cpuUsage(c0);
  return { ms, cpuUs: c.user + c.system, n };
}

/** Inputs in chunks of 1,000 per bulk call. */
async function inChunks<T>(items: readonly T[], send: (chunk: T[]) => Promise<unknown>): Promise<void> {
  for (let i = 0; i < items.length; i += CHUNK) await send(items.slice(i, i + CHUNK));
}

// ---------------------------------------------------------------- celeriac

/** A celeriac run. */
export interface CeleriacSetup {
  /** `memory()`, or `redis({ client: new IoRedis(url), prefix })`. */
  redisUrl?: string;
  kind: Kind;
  concurrency: number;
  /** `threads({ max })`; none: the module runs on the event loop. */
  threads?: number;
  n: number;
  /** Tasks run before the clock starts (threads started, module loaded). */
  warm: number;
  /** The hash task's input. */
  rounds: number;
  /** The hash task's digest every run must return. */
  digest: string;
  /** Called while the timed batch runs (the lag sampler), awaited after it. */
  during?: (done: Promise<void>) => Promise<unknown>;
}

let prefixes = 0;

export async function celeriac(s: CeleriacSetup): Promise<Measured & { sampled?: unknown }> {
  const client = s.redisUrl === undefined ? undefined : new IoRedis(s.redisUrl);
  const backend =
    client === undefined ? memory() : redis({ client, prefix: `pb${Date.now().toString(36)}${++prefixes}` });
  const app = createApp({ broker: backend, store: backend });
  app.on("error", (e) => console.error(`[celeriac] error in ${e.where}:`, e.error));
  const retry = { maxAttempts: 1 };
  let send: (n: number) => Promise<void>;
  if (s.kind === "hash") {
    const t = app.task({
      name: "bench.hash",
      retry,
      module: threadModule<typeof import("./_pool-hash.task.ts")>(HASH_MODULE),
    });
    const input = { rounds: s.rounds };
    send = (n) =>
      inChunks(
        Array.from({ length: n }, () => input),
        (c) => t.enqueueMany(c),
      );
  } else if (s.kind === "noop") {
    const t = app.task({
      name: "bench.noop",
      retry,
      module: threadModule<typeof import("./_pool-noop.task.ts")>(NOOP_MODULE),
    });
    send = (n) =>
      inChunks(
        Array.from({ length: n }, () => null),
        (c) => t.enqueueMany(c),
      );
  } else {
    const t = app.task({ name: "bench.plain", retry, run: () => null });
    send = (n) =>
      inChunks(
        Array.from({ length: n }, () => null),
        (c) => t.enqueueMany(c),
      );
  }
  const count = new Counter();
  app.on("succeeded", (e) => {
    if (s.kind === "hash" && e.result !== s.digest) count.failed(`wrong digest ${String(e.result)}`);
    else count.hit();
  });
  app.on("failed", (e) => count.failed(`task failed: ${JSON.stringify(e)}`));
  const pool: TaskPool | undefined = s.threads === undefined ? undefined : threads({ max: s.threads });
  const worker = app.worker({ concurrency: s.concurrency, ...(pool === undefined ? {} : { pool }) }).start();
  try {
    await count.batch(s.warm, () => send(s.warm));
    if (pool !== undefined && pool.stats().size !== s.threads) {
      throw new Error(`warm-up left ${pool.stats().size} threads, want ${s.threads}`);
    }
    let sampled: unknown;
    const m = await timed(s.n, async () => {
      const batch = count.batch(s.n, () => send(s.n));
      if (s.during === undefined) await batch;
      else [, sampled] = await Promise.all([batch, s.during(batch.catch(() => {}))]);
    });
    if (pool !== undefined && pool.stats().completed !== s.warm + s.n) {
      throw new Error(`the pool ran ${pool.stats().completed} tasks, want ${s.warm + s.n}`);
    }
    return { ...m, sampled };
  } finally {
    await worker.stop();
    await app.close();
    client?.disconnect();
  }
}

// ---------------------------------------------------------------- BullMQ

/** A BullMQ run on Redis. */
export interface BullSetup {
  redisUrl: string;
  kind: "hash" | "noop";
  concurrency: number;
  /** The processor file in BullMQ's worker threads (`useWorkerThreads: true`), else a no-op function. */
  sandboxed: boolean;
  n: number;
  warm: number;
  rounds: number;
  digest: string;
}

export async function bullmq(s: BullSetup): Promise<Measured> {
  const url = new URL(s.redisUrl);
  const connection = { host: url.hostname, port: Number(url.port), maxRetriesPerRequest: null };
  const name = `pool${Date.now().toString(36)}${++prefixes}`;
  // Finished jobs kept 24 h, as celeriac keeps its run records by default (bench/redis.ts does the same).
  const keep = { age: 86_400 };
  const queue = new Queue(name, {
    connection,
    defaultJobOptions: { removeOnComplete: keep, removeOnFail: keep },
  });
  queue.on("error", (e) => console.error("[bullmq] queue error:", e));
  if (s.kind === "hash" && !s.sandboxed) throw new Error("the inline BullMQ processor is a no-op only");
  const worker = s.sandboxed
    ? new BullWorker(name, BULL_PROCESSOR, { connection, concurrency: s.concurrency, useWorkerThreads: true })
    : new BullWorker(name, async () => null, { connection, concurrency: s.concurrency });
  worker.on("error", (e) => console.error("[bullmq] worker error:", e));
  const count = new Counter();
  worker.on("completed", (_job, value) => {
    if (s.kind === "hash" && value !== s.digest) count.failed(`wrong digest ${String(value)}`);
    else count.hit();
  });
  worker.on("failed", (_job, error) => count.failed(`job failed: ${String(error)}`));
  const data = s.kind === "hash" ? { rounds: s.rounds } : {};
  const send = (n: number) =>
    inChunks(
      Array.from({ length: n }, () => ({ name: s.kind, data })),
      (c) => queue.addBulk(c),
    );
  try {
    await worker.waitUntilReady();
    await count.batch(s.warm, () => send(s.warm));
    return await timed(s.n, () => count.batch(s.n, () => send(s.n)));
  } finally {
    await worker.close();
    await queue.close();
  }
}

// ---------------------------------------------------------------- event-loop lag

/** `setTimeout(1)` lag samples (ms past the 1 ms asked for) until `done` settles. */
export async function lagSamples(done: Promise<void>): Promise<number[]> {
  let over = false;
  void done.finally(() => {
    over = true;
  });
  const lags: number[] = [];
  while (!over) {
    const t0 = performance.now();
    await sleep(1);
    lags.push(performance.now() - t0 - 1);
  }
  return lags;
}

// ---------------------------------------------------------------- bare round trips

/**
 * µs per sequential round trip to a bare `node:worker_threads` thread that answers each message
 * with `replies` messages (1: the least a thread hop costs; 2: what the pool's protocol sends
 * back, `started` then `done`), optionally reading `process.memoryUsage()` first (as the pool's
 * thread does after every task, for `maxMemoryPerChildMb`).
 */
export async function bareRoundTrip(n: number, replies: 1 | 2, readMemory: boolean): Promise<Measured> {
  const code = `
    const { parentPort } = require("node:worker_threads");
    parentPort.on("message", (m) => {
      if (${replies === 2}) parentPort.postMessage({ t: "started", job: m.job });
      const heapMb = ${readMemory} ? process.memoryUsage().heapUsed / 1048576 : null;
      parentPort.postMessage({ t: "done", job: m.job, ok: true, value: null, heapMb });
    });`;
  const thread = new NodeWorker(code, { eval: true });
  let wake: () => void = () => {};
  thread.on("message", (m: { t: string }) => {
    if (m.t === "done") wake();
  });
  const call = sampleCall();
  const once = (job: number) =>
    new Promise<void>((resolve) => {
      wake = resolve;
      thread.postMessage({ t: "run", job, call });
    });
  try {
    for (let i = 0; i < 200; i++) await once(i);
    return await timed(n, async () => {
      for (let i = 0; i < n; i++) await once(i);
    });
  } finally {
    await thread.terminate();
  }
}

/** µs per `pool.run` of the no-op module awaited one after another: the pool without the worker. */
export async function poolDirect(n: number): Promise<Measured> {
  const pool = threads({ max: 1 });
  const signal = new AbortController().signal;
  const io = { signal, progress: () => {} };
  const call = sampleCall();
  try {
    for (let i = 0; i < 200; i++) await pool.run(call, io);
    return await timed(n, async () => {
      for (let i = 0; i < n; i++) await pool.run(call, io);
    });
  } finally {
    await pool.close();
  }
}

/** µs per `process.memoryUsage()` call on this thread. */
export function memoryUsageCost(n: number): number {
  let sink = 0;
  const t0 = performance.now();
  for (let i = 0; i < n; i++) sink += process.memoryUsage().heapUsed;
  const us = ((performance.now() - t0) * 1_000) / n;
  return sink > 0 ? us : us;
}

function sampleCall(): PoolCall {
  return {
    module: NOOP_MODULE.href,
    task: "bench.noop",
    id: "r0000000000000000",
    attempt: 1,
    idempotencyKey: "r0000000000000000",
    input: null,
    timeoutMs: 300_000,
  };
}

/** µs per `await import(url)` of the no-op module once loaded (what a module task on the event loop does every attempt). */
export async function importCost(n: number): Promise<Measured> {
  const href = NOOP_MODULE.href;
  await import(href);
  return await timed(n, async () => {
    for (let i = 0; i < n; i++) await import(href);
  });
}

/**
 * A child process spinning at the lowest priority (nice 19) until stopped: it keeps the machine's
 * other core awake, so a thread woken there need not wait for an idle virtual CPU to be woken by
 * its hypervisor first, and yields to any normal-priority thread at once.
 */
export function spinner(): { stop(): Promise<void> } {
  const child = spawn(process.execPath, ["-e", "for (;;) {}"], { stdio: "ignore" });
  if (child.pid !== undefined) setPriority(child.pid, 19);
  const exited = new Promise<void>((resolve) => child.once("exit", () => resolve()));
  return {
    stop: async () => {
      child.kill();
      await exited;
    },
  };
}
