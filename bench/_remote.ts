/**
 * The cross-process row of bench/redis.ts: `run.result()` in this process for a task a worker in
 * another process runs (BullMQ: `job.waitUntilFinished(queueEvents)`), one task at a time with
 * the worker idle in between — what a web request waiting on a task feels.
 *
 * @module
 */
import { type ChildProcess, spawn } from "node:child_process";
import { fileURLToPath } from "node:url";
import { Queue, QueueEvents } from "bullmq";
import { Redis } from "ioredis";
import { redis } from "../adapters/redis/mod.ts";
import { createApp } from "../mod.ts";

const CHILD = fileURLToPath(new URL("./_remote-worker.ts", import.meta.url));

function startWorker(side: "celeriac" | "bullmq", port: number, queue: string): Promise<ChildProcess> {
  // Node itself with tsx's loader (not the tsx wrapper, whose own child a kill would orphan,
  // holding this process's pipe open).
  const child = spawn(process.execPath, ["--import", "tsx", CHILD, side, String(port), queue], {
    stdio: ["ignore", "pipe", "inherit"],
  });
  return new Promise((resolve, reject) => {
    let out = "";
    child.stdout!.on("data", (chunk: Buffer) => {
      out += chunk.toString("utf8");
      if (out.includes("ready")) resolve(child);
    });
    child.once("exit", (code) => reject(new Error(`${side} worker exited with ${code} before it was ready`)));
  });
}

async function stop(child: ChildProcess): Promise<void> {
  const exited = new Promise((resolve) => child.once("exit", resolve));
  child.kill("SIGKILL");
  await exited;
}

const pause = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

/** Milliseconds from enqueue to the result in hand, `samples` times, for one side. */
export async function remoteResult(
  side: "celeriac" | "bullmq",
  port: number,
  samples: number,
  gapMs: number,
): Promise<number[]> {
  const queue = `remote-${side}-${Date.now().toString(36)}`;
  const child = await startWorker(side, port, queue);
  const ms: number[] = [];
  try {
    if (side === "celeriac") {
      const client = new Redis({ host: "127.0.0.1", port, maxRetriesPerRequest: 3 });
      client.on("error", () => {}); // reconnects on its own; a failed call reports itself
      const backend = redis({ client });
      const app = createApp({ broker: backend, store: backend });
      const task = app.task({ name: "bench.remote", queue, run: async () => null });
      try {
        for (let i = 0; i < samples; i++) {
          const t0 = performance.now();
          await (await task.enqueue({ n: i })).result({ timeoutMs: 30_000 });
          ms.push(performance.now() - t0);
          await pause(gapMs);
        }
      } finally {
        await app.close();
        client.disconnect();
      }
    } else {
      const connection = { host: "127.0.0.1", port, maxRetriesPerRequest: null };
      const q = new Queue(queue, { connection, defaultJobOptions: { removeOnComplete: { age: 86_400 } } });
      const events = new QueueEvents(queue, { connection });
      await events.waitUntilReady();
      try {
        for (let i = 0; i < samples; i++) {
          const t0 = performance.now();
          const job = await q.add("remote", { n: i });
          await job.waitUntilFinished(events, 30_000);
          ms.push(performance.now() - t0);
          await pause(gapMs);
        }
      } finally {
        await events.close();
        await q.close();
      }
    }
  } finally {
    await stop(child);
  }
  return ms.slice(Math.min(10, Math.floor(samples / 10))); // the first few warm the JIT and connections up
}
