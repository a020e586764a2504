/**
 * A worker process for bench/limits-bullmq.ts, for either side: celeriac (`redis({ client,
 * prefix })`, one task with the section's limit, `app.worker({ concurrency })`) or BullMQ
 * (`Queue` + `Worker` with the section's `limiter` or the queue's global concurrency; for the
 * keyed section one queue per key, each with global concurrency 1, and a `Worker` at
 * concurrency 1 on every one of them).
 *
 * It talks to its parent over the IPC channel only, never through Redis, so the parent's Redis
 * command counts are the side's own: `ready` once connected; on `enqueue` (sent to one child) it
 * enqueues the section's jobs in bulk and answers `enqueued`; on `go` it starts its workers;
 * every 100 ms it sends `progress` with the jobs it completed; on `stop` it sends `spans` (the
 * start and end of every handler call it ran, and the call's key), closes and exits.
 *
 * Usage: `node --import tsx bench/_limits-bullmq-worker.ts '<Spec as JSON>'` with an IPC channel.
 *
 * @module
 */
import process from "node:process";
import { Queue, Worker } from "bullmq";
import { Redis } from "ioredis";
import * as v from "valibot";
import { redis } from "../adapters/redis/mod.ts";
import { createApp } from "../mod.ts";

/** What a child runs. */
export interface Spec {
  side: "celeriac" | "bullmq";
  section: "rate" | "concurrency" | "keyed";
  /** redis://host:port */
  url: string;
  /** Key prefix (celeriac) or queue name (BullMQ); FLUSHALL runs between sections anyway. */
  prefix: string;
  /** Jobs to enqueue (in all). */
  n: number;
  /** Starts per second (rate), runs at once (concurrency) or runs at once per key (keyed). */
  limit: number;
  /** Keys the jobs are spread over (keyed; 1 otherwise). */
  keys: number;
  /** How long each handler call sleeps, ms (0: a no-op). */
  sleepMs: number;
  /** Concurrency of this process's worker (celeriac, BullMQ rate and concurrency sections). */
  concurrency: number;
}

/** A handler call: start and end (epoch ms, sub-ms precision) and the job's key. */
export type Span = [start: number, end: number, key: number];

/** Messages from the parent. */
export type Command = { cmd: "enqueue" } | { cmd: "go" } | { cmd: "stop" };
/** Messages to the parent. */
export type Report =
  | { ev: "ready" }
  | { ev: "enqueued" }
  | { ev: "progress"; done: number }
  | { ev: "spans"; spans: Span[] };

const CHUNK = 1_000;
const now = () => performance.timeOrigin + performance.now();
const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

/** One side in this process: enqueue, start, close. */
interface Contender {
  enqueue(): Promise<void>;
  start(): void;
  close(): Promise<void>;
}

function keysOf(spec: Spec): number[] {
  return Array.from({ length: spec.n }, (_, i) => i % spec.keys);
}

async function celeriac(
  spec: Spec,
  handle: (k: number) => Promise<void>,
  completed: () => void,
): Promise<Contender> {
  const client = new Redis(spec.url);
  await client.ping();
  const backend = redis({ client, prefix: spec.prefix });
  const app = createApp({ broker: backend, store: backend });
  const input = v.object({ k: v.number() });
  const run = async ({ k }: { k: number }) => {
    await handle(k);
    return null;
  };
  const task =
    spec.section === "rate"
      ? app.task({ name: "limited", input, rateLimit: { limit: spec.limit, periodMs: 1_000 }, run })
      : spec.section === "concurrency"
        ? app.task({ name: "limited", input, concurrency: { limit: spec.limit }, run })
        : app.task({
            name: "limited",
            input,
            concurrency: { limit: spec.limit, key: (i) => String(i.k) },
            run,
          });
  app.on("succeeded", completed);
  let worker: ReturnType<typeof app.worker> | undefined;
  return {
    async enqueue() {
      const ks = keysOf(spec);
      for (let i = 0; i < ks.length; i += CHUNK)
        await task.enqueueMany(ks.slice(i, i + CHUNK).map((k) => ({ k })));
    },
    start() {
      worker = app.worker({ concurrency: spec.concurrency }).start();
    },
    async close() {
      await worker?.stop();
      await app.close();
      client.disconnect();
    },
  };
}

async function bullmq(
  spec: Spec,
  handle: (k: number) => Promise<void>,
  completed: () => void,
): Promise<Contender> {
  const { hostname, port } = new URL(spec.url);
  const connection = { host: hostname, port: Number(port), maxRetriesPerRequest: null };
  const keep = { age: 86_400 };
  const names =
    spec.section === "keyed"
      ? Array.from({ length: spec.keys }, (_, k) => `${spec.prefix}-k${k}`)
      : [spec.prefix];
  const queues = names.map(
    (name) =>
      new Queue(name, { connection, defaultJobOptions: { removeOnComplete: keep, removeOnFail: keep } }),
  );
  const workers = names.map(
    (name, k) =>
      new Worker(
        name,
        async (job) => {
          await handle(spec.section === "keyed" ? k : (job.data as { k: number }).k);
          return null;
        },
        {
          connection,
          autorun: false,
          concurrency: spec.section === "keyed" ? spec.limit : spec.concurrency,
          ...(spec.section === "rate" ? { limiter: { max: spec.limit, duration: 1_000 } } : {}),
        },
      ),
  );
  for (const q of queues) q.on("error", (e) => console.error("[bullmq child] queue error:", e));
  for (const w of workers) {
    w.on("error", (e) => console.error("[bullmq child] worker error:", e));
    w.on("completed", completed);
  }
  await Promise.all([...queues, ...workers].map((x) => x.waitUntilReady()));
  return {
    async enqueue() {
      if (spec.section !== "rate") for (const q of queues) await q.setGlobalConcurrency(spec.limit);
      const ks = keysOf(spec);
      for (const [k, q] of queues.entries()) {
        const mine = spec.section === "keyed" ? ks.filter((x) => x === k) : ks;
        for (let i = 0; i < mine.length; i += CHUNK)
          await q.addBulk(mine.slice(i, i + CHUNK).map((x) => ({ name: "limited", data: { k: x } })));
      }
    },
    start() {
      for (const w of workers) w.run().catch((e: unknown) => console.error("[bullmq child] run:", e));
    },
    async close() {
      await Promise.all(workers.map((w) => w.close()));
      await Promise.all(queues.map((q) => q.close()));
    },
  };
}

const spec = JSON.parse(process.argv[2] ?? "null") as Spec | null;
if (spec === null || process.send === undefined) {
  console.error("usage: node --import tsx bench/_limits-bullmq-worker.ts '<spec json>' (with IPC)");
  process.exit(2);
}
const send = (r: Report) => process.send!(r);
const spans: Span[] = [];
let done = 0;
const handle = async (k: number) => {
  const start = now();
  if (spec.sleepMs > 0) await sleep(spec.sleepMs);
  spans.push([start, now(), k]);
};
const completed = () => {
  done++;
};
const side = await (spec.side === "celeriac" ? celeriac : bullmq)(spec, handle, completed);
let reported = 0;
const ticker = setInterval(() => {
  if (done === reported) return;
  reported = done;
  send({ ev: "progress", done });
}, 100);
process.on("message", async (m: Command) => {
  if (m.cmd === "enqueue") {
    await side.enqueue();
    send({ ev: "enqueued" });
  } else if (m.cmd === "go") {
    side.start();
  } else {
    clearInterval(ticker);
    await side.close();
    process.send!({ ev: "spans", spans } satisfies Report, () => process.exit(0));
  }
});
send({ ev: "ready" });
