/**
 * A worker in a process of its own, for the cross-process latency row of bench/redis.ts:
 * celeriac (`app.worker()`) or BullMQ (`Worker`) at concurrency 1 serving no-op tasks on the given
 * Redis. Prints `ready` once it waits for work; runs until killed.
 *
 *   tsx bench/_remote-worker.ts celeriac|bullmq <port> <queue>
 *
 * @module
 */
import process from "node:process";
import { Worker } from "bullmq";
import { Redis } from "ioredis";
import { redis } from "../adapters/redis/mod.ts";
import { createApp } from "../mod.ts";

const [side, port, queue] = process.argv.slice(2);
if (side === undefined || port === undefined || queue === undefined) {
  process.stderr.write("usage: _remote-worker.ts celeriac|bullmq <port> <queue>\n");
  process.exit(2);
}

if (side === "celeriac") {
  const client = new Redis({ host: "127.0.0.1", port: Number(port), maxRetriesPerRequest: 3 });
  client.on("error", () => {}); // killed with the server at the end of a run
  const backend = redis({ client });
  const app = createApp({ broker: backend, store: backend });
  app.task({ name: "bench.remote", queue, run: async () => null });
  app.worker({ queues: [queue], concurrency: 1 }).start();
} else {
  const worker = new Worker(queue, async () => null, {
    connection: { host: "127.0.0.1", port: Number(port), maxRetriesPerRequest: null },
    concurrency: 1,
  });
  await worker.waitUntilReady();
}
// Let the worker reach its blocking wait before the first task.
await new Promise((resolve) => setTimeout(resolve, 300));
process.stdout.write("ready\n");
