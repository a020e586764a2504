/**
 * A worker process for bench/limits.ts: serves the "limited" task (50 starts/s across every
 * worker) and records each start's time in a Redis list.
 *
 * Usage: `tsx bench/_limits-worker.ts <redis url> <prefix> <limit per s>`; prints `ready`.
 *
 * @module
 */
import process from "node:process";
import { Redis } from "ioredis";
import { redis } from "../adapters/redis/mod.ts";
import { createApp } from "../mod.ts";

const [url, prefix, limit = "50"] = process.argv.slice(2);
if (url === undefined || prefix === undefined) process.exit(2);
const client = new Redis(url);
const log = new Redis(url);
const backend = redis({ client, prefix });
const app = createApp({ broker: backend, store: backend });
app.task({
  name: "limited",
  rateLimit: { limit: Number(limit), periodMs: 1_000 },
  run: async () => {
    await log.rpush(`${prefix}:starts`, String(Date.now()));
  },
});
app.worker({ concurrency: 10, heartbeatMs: 60_000 }).start();
process.stdout.write("ready\n");
process.on("SIGTERM", async () => {
  await app.close();
  client.disconnect();
  log.disconnect();
  process.exit(0);
});
