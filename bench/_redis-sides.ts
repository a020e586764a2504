/**
 * The two contenders of bench/redis.ts behind one interface: celeriac (`redis({ client })` over
 * ioredis or `@upstash/redis`, `app.worker()`) and BullMQ (`Queue` + `Worker`). Every run starts
 * on an empty Redis (FLUSHALL), opens its own clients, and closes them before it returns.
 *
 * @module
 */
import { type Job, type KeepJobs, Queue, Worker } from "bullmq";
import { type RedisClientLike, redis } from "../adapters/redis/mod.ts";
import { type App, createApp, type Task } from "../mod.ts";
import type { Delta, Probe } from "./_redis-probe.ts";

/** A no-op task, or one that fails its first attempt and succeeds on the second (0 backoff). */
export type Kind = "noop" | "retry";

/** How tasks are enqueued: awaited one by one, 100 single enqueues in flight, or bulk calls. */
export type EnqueueMode = "sequential" | "concurrent" | "bulk";

/** Single enqueues in flight in `concurrent` mode. */
export const IN_FLIGHT = 100;
/** Tasks per bulk call (`enqueueMany` / `addBulk`). */
export const CHUNK = 1_000;

/** One enqueue-then-drain run. */
export interface CycleOptions {
  n: number;
  concurrency: number;
  kind: Kind;
  enqueue: EnqueueMode;
}

/** The two phases of a run. */
export interface CycleResult {
  /** Enqueueing all `n` tasks (no worker running). */
  enqueue: Delta;
  /** From worker start until the last task completed. */
  drain: Delta;
}

/** A contender. */
export interface Side {
  readonly label: string;
  /** Enqueues `n` tasks, then times a worker draining them. */
  cycle(options: CycleOptions): Promise<CycleResult>;
  /** Enqueues `n` no-op tasks with no worker. */
  enqueueOnly(mode: EnqueueMode, n: number): Promise<Delta>;
  /**
   * Enqueue→completed latency (ms) with an idle worker (concurrency 1): one task at a time,
   * `gapMs` of quiet after each so the worker is back to waiting when the next one comes.
   */
  latency(samples: number, gapMs: number): Promise<{ ms: number[]; delta: Delta }>;
  /** Redis work of a started worker on an empty queue over `ms`. */
  idle(ms: number): Promise<Delta>;
}

export function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}

/** Resolves after `n` hits; rejects after `timeoutMs` with `what`. */
function countTo(n: number, timeoutMs: number, what: string): { hit: () => void; done: Promise<void> } {
  let hits = 0;
  let resolve!: () => void;
  let reject!: (error: Error) => void;
  const done = new Promise<void>((res, rej) => {
    resolve = res;
    reject = rej;
  });
  const timer = setTimeout(() => reject(new Error(`${what}: ${hits}/${n} after ${timeoutMs} ms`)), timeoutMs);
  const finish = done.finally(() => clearTimeout(timer));
  finish.catch(() => {});
  return {
    hit: () => {
      if (++hits === n) resolve();
    },
    done: finish,
  };
}

/** Generous bound on a drain: nothing here should take 10 ms a task. */
function drainTimeout(n: number): number {
  return 60_000 + n * 10;
}

async function enqueueAll(
  mode: EnqueueMode,
  n: number,
  one: (i: number) => Promise<unknown>,
  many: (is: number[]) => Promise<unknown>,
): Promise<void> {
  if (mode === "sequential") {
    for (let i = 0; i < n; i++) await one(i);
  } else if (mode === "concurrent") {
    let next = 0;
    const lane = async () => {
      while (next < n) await one(next++);
    };
    await Promise.all(Array.from({ length: Math.min(IN_FLIGHT, n) }, lane));
  } else {
    for (let start = 0; start < n; start += CHUNK) {
      const ids: number[] = [];
      for (let i = start; i < Math.min(n, start + CHUNK); i++) ids.push(i);
      await many(ids);
    }
  }
}

const input = (i: number) => ({ n: i });

// ---------------------------------------------------------------- celeriac

/** A client for one run and how to let go of it. */
export interface Connection {
  client: RedisClientLike;
  dispose(): void;
}

interface CeleriacRig {
  app: App;
  task: Task<unknown, null>;
  close(): Promise<void>;
}

/**
 * celeriac: `redis({ client })` as broker and store (the fused ledger), default options
 * (run records kept `resultTtlMs` = 24 h, lease 30 s, pollMs 5 s; the run history on unless
 * `history` is false: `redis({ history: false })`).
 */
export class CeleriacSide implements Side {
  readonly label: string;
  readonly #probe: Probe;
  readonly #connect: () => Connection;
  readonly #history: boolean;

  constructor(label: string, probe: Probe, connect: () => Connection, history = true) {
    this.label = label;
    this.#probe = probe;
    this.#connect = connect;
    this.#history = history;
  }

  #open(kind: Kind): CeleriacRig {
    const { client, dispose } = this.#connect();
    const backend = redis(this.#history ? { client } : { client, history: false });
    const app = createApp({ broker: backend, store: backend });
    app.on("error", (e) => console.error(`[${this.label}] error in ${e.where}:`, e.error));
    const task =
      kind === "noop"
        ? app.task({ name: "bench.noop", run: async () => null })
        : app.task({
            name: "bench.retry",
            retry: { maxAttempts: 2, baseMs: 0, jitter: "none" },
            run: async (_input, ctx) => {
              if (ctx.attempt === 1) throw new Error("first attempt fails");
              return null;
            },
          });
    return {
      app,
      task,
      close: async () => {
        await app.close();
        dispose();
      },
    };
  }

  async cycle(o: CycleOptions): Promise<CycleResult> {
    await this.#probe.flush();
    const rig = this.#open(o.kind);
    try {
      const enq = await this.#probe.measure(() =>
        enqueueAll(
          o.enqueue,
          o.n,
          (i) => rig.task.enqueue(input(i)),
          (is) => rig.task.enqueueMany(is.map(input)),
        ),
      );
      const done = countTo(o.n, drainTimeout(o.n), `${this.label} drain`);
      let retried = 0;
      let failed = 0;
      rig.app.on("succeeded", done.hit);
      rig.app.on("retrying", () => retried++);
      rig.app.on("failed", () => failed++);
      const worker = rig.app.worker({ concurrency: o.concurrency });
      const drain = await this.#probe.measure(async () => {
        worker.start();
        await done.done;
      });
      await worker.stop();
      const wantRetries = o.kind === "retry" ? o.n : 0;
      if (retried !== wantRetries || failed !== 0) {
        throw new Error(`${this.label}: ${retried} retries (want ${wantRetries}), ${failed} failed`);
      }
      return { enqueue: enq.delta, drain: drain.delta };
    } finally {
      await rig.close();
    }
  }

  async enqueueOnly(mode: EnqueueMode, n: number): Promise<Delta> {
    await this.#probe.flush();
    const rig = this.#open("noop");
    try {
      const { delta } = await this.#probe.measure(() =>
        enqueueAll(
          mode,
          n,
          (i) => rig.task.enqueue(input(i)),
          (is) => rig.task.enqueueMany(is.map(input)),
        ),
      );
      return delta;
    } finally {
      await rig.close();
    }
  }

  async latency(samples: number, gapMs: number): Promise<{ ms: number[]; delta: Delta }> {
    await this.#probe.flush();
    const rig = this.#open("noop");
    let wake: () => void = () => {};
    rig.app.on("succeeded", () => wake());
    const worker = rig.app.worker({ concurrency: 1 }).start();
    try {
      await sleep(200);
      const ms: number[] = [];
      const { delta } = await this.#probe.measure(async () => {
        for (let i = 0; i < samples; i++) {
          const done = new Promise<void>((resolve) => {
            wake = resolve;
          });
          const t0 = performance.now();
          await rig.task.enqueue(input(i));
          await done;
          ms.push(performance.now() - t0);
          await sleep(gapMs);
        }
      });
      return { ms, delta };
    } finally {
      await worker.stop();
      await rig.close();
    }
  }

  async idle(ms: number): Promise<Delta> {
    await this.#probe.flush();
    const rig = this.#open("noop");
    const worker = rig.app.worker({ concurrency: 10 }).start();
    try {
      await sleep(1_000);
      return (await this.#probe.measure(() => sleep(ms))).delta;
    } finally {
      await worker.stop();
      await rig.close();
    }
  }
}

// ---------------------------------------------------------------- BullMQ

const QUEUE = "bench";

/** BullMQ's connection options for a worker (its blocking connection needs `maxRetriesPerRequest: null`). */
export interface BullConnection {
  host: string;
  port: number;
  maxRetriesPerRequest: null;
}

/**
 * BullMQ: `Queue` + `Worker` with default options but for `removeOnComplete`/`removeOnFail`
 * (`keep`), and `attempts: 2` (no backoff: an immediate retry) for the retry kind.
 */
export class BullSide implements Side {
  readonly label: string;
  readonly #probe: Probe;
  readonly #connection: BullConnection;
  readonly #keep: KeepJobs | true;

  constructor(label: string, probe: Probe, connection: BullConnection, keep: KeepJobs | true) {
    this.label = label;
    this.#probe = probe;
    this.#connection = connection;
    this.#keep = keep;
  }

  async #queue(kind: Kind): Promise<Queue> {
    const queue = new Queue(QUEUE, {
      connection: this.#connection,
      defaultJobOptions: {
        removeOnComplete: this.#keep,
        removeOnFail: this.#keep,
        ...(kind === "retry" ? { attempts: 2 } : {}),
      },
    });
    queue.on("error", (e) => console.error(`[${this.label}] queue error:`, e));
    await queue.waitUntilReady();
    return queue;
  }

  async #worker(kind: Kind, concurrency: number, autorun: boolean): Promise<Worker> {
    const processor =
      kind === "noop"
        ? async () => null
        : async (job: Job) => {
            if (job.attemptsMade === 0) throw new Error("first attempt fails");
            return null;
          };
    const worker = new Worker(QUEUE, processor, { connection: this.#connection, concurrency, autorun });
    worker.on("error", (e) => console.error(`[${this.label}] worker error:`, e));
    await worker.waitUntilReady();
    return worker;
  }

  #enqueue(queue: Queue, mode: EnqueueMode, n: number): Promise<void> {
    return enqueueAll(
      mode,
      n,
      (i) => queue.add("noop", input(i)),
      (is) => queue.addBulk(is.map((i) => ({ name: "noop", data: input(i) }))),
    );
  }

  async cycle(o: CycleOptions): Promise<CycleResult> {
    await this.#probe.flush();
    const queue = await this.#queue(o.kind);
    let worker: Worker | undefined;
    try {
      const enq = await this.#probe.measure(() => this.#enqueue(queue, o.enqueue, o.n));
      const w = await this.#worker(o.kind, o.concurrency, false);
      worker = w;
      const done = countTo(o.n, drainTimeout(o.n), `${this.label} drain`);
      let failed = 0;
      w.on("completed", done.hit);
      w.on("failed", () => failed++);
      const drain = await this.#probe.measure(async () => {
        w.run().catch((e: unknown) => console.error(`[${this.label}] run:`, e));
        await done.done;
      });
      const wantFailed = o.kind === "retry" ? o.n : 0;
      if (failed !== wantFailed)
        throw new Error(`${this.label}: ${failed} failed attempts (want ${wantFailed})`);
      return { enqueue: enq.delta, drain: drain.delta };
    } finally {
      await worker?.close();
      await queue.close();
    }
  }

  async enqueueOnly(mode: EnqueueMode, n: number): Promise<Delta> {
    await this.#probe.flush();
    const queue = await this.#queue("noop");
    try {
      return (await this.#probe.measure(() => this.#enqueue(queue, mode, n))).delta;
    } finally {
      await queue.close();
    }
  }

  async latency(samples: number, gapMs: number): Promise<{ ms: number[]; delta: Delta }> {
    await this.#probe.flush();
    const queue = await this.#queue("noop");
    const worker = await this.#worker("noop", 1, true);
    let wake: () => void = () => {};
    worker.on("completed", () => wake());
    try {
      await sleep(200);
      const ms: number[] = [];
      const { delta } = await this.#probe.measure(async () => {
        for (let i = 0; i < samples; i++) {
          const done = new Promise<void>((resolve) => {
            wake = resolve;
          });
          const t0 = performance.now();
          await queue.add("noop", input(i));
          await done;
          ms.push(performance.now() - t0);
          await sleep(gapMs);
        }
      });
      return { ms, delta };
    } finally {
      await worker.close();
      await queue.close();
    }
  }

  async idle(ms: number): Promise<Delta> {
    await this.#probe.flush();
    const queue = await this.#queue("noop");
    const worker = await this.#worker("noop", 10, true);
    try {
      await sleep(1_000);
      return (await this.#probe.measure(() => sleep(ms))).delta;
    } finally {
      await worker.close();
      await queue.close();
    }
  }
}
