/**
 * A worker process for the crash-recovery tests: it serves the "effect" task on the Redis
 * backend, counts that it started, prints `started <run id>`, then (mode `hang`, the default)
 * hangs until it is killed, or (mode `exit`) exits the process mid-task, as a crash would.
 * Mode `hang-long` hangs with the default task timeout (300 s), to show that recovery follows
 * the lease, not the timeout. Mode `limited` hangs like `hang`, with a concurrency limit of one
 * run per key.
 *
 * Usage: `<runtime> tests/support/redis-crash-worker.ts <redis url> <prefix> [mode] [leaseMs]
 * [heartbeatMs]`;
 * prints `ready` once the worker runs.
 *
 * @module
 */
import process from "node:process";
import { Redis } from "ioredis";
import { redis } from "../../adapters/redis/mod.ts";
import { createApp } from "../../mod.ts";

const [url, prefix, mode = "hang", lease = "300", beat = "5000"] = process.argv.slice(2);
if (url === undefined || prefix === undefined) {
  process.stderr.write("usage: redis-crash-worker.ts <redis url> <prefix>\n");
  process.exit(2);
}

const client = new Redis(url, { maxRetriesPerRequest: 3, connectTimeout: 2_000 });
client.on("error", () => {});
const backend = redis({ client, prefix });
const app = createApp({ broker: backend, store: backend });

app.task({
  name: "effect",
  idempotencyKey: (input) => (input as { key: string }).key,
  ...(mode === "hang-long" ? {} : { timeoutMs: 1_500 }),
  // Mode `limited`: one run at a time per key across every worker (and hangs like `hang`).
  ...(mode === "limited"
    ? { concurrency: { limit: 1, key: (input: unknown) => (input as { key: string }).key } }
    : {}),
  async run(_input, ctx) {
    await client.incr(`${prefix}:started`);
    process.stdout.write(`started ${ctx.id}\n`);
    if (mode === "exit") process.exit(1); // a crash mid-task: out of memory, a native fault
    await new Promise(() => {}); // mid-task, forever: the test kills this process now
  },
});

app.worker({ concurrency: 1, leaseMs: Number(lease), pollMs: 1_000, heartbeatMs: Number(beat) }).start();
process.stdout.write("ready\n");
