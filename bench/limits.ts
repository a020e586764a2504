/**
 * Benchmark (not a test): rate limits on Redis.
 *
 * 1. Accuracy: 3 worker processes serve one task limited to 50 starts/s; 4,000 runs wait in the
 *    queue; the achieved rate over a 60 s window (after the first burst) against the limit.
 * 2. Unlimited tasks beside limited ones: 20,000 no-op tasks drained at concurrency 10 by one
 *    worker, alone; with 20,000 rate-limited runs (10 keys, 50/s each) queued ahead of them in the
 *    same queue; and with those in a queue of their own that the same worker serves.
 *
 *   npx tsx bench/limits.ts [seconds]
 *
 * @module
 */
import { spawn } from "node:child_process";
import { Redis as IoRedis } from "ioredis";
import { redis } from "../adapters/redis/mod.ts";
import { startRedis } from "../dev/mod.ts";
import { createApp } from "../mod.ts";

const seconds = Number(process.argv[2] ?? 60);
const server = await startRedis();
const admin = new IoRedis(server.url);

// ---- 1. accuracy across 3 processes
const prefix = `lim${Date.now().toString(36)}`;
const children = [0, 1, 2].map(() =>
  spawn(process.execPath, ["--import", "tsx", "bench/_limits-worker.ts", server.url, prefix, "50"], {
    stdio: ["ignore", "pipe", "inherit"],
  }),
);
await Promise.all(
  children.map(
    (c) =>
      new Promise<void>((resolve) =>
        c.stdout!.on("data", (d: Buffer) => d.toString().includes("ready") && resolve()),
      ),
  ),
);
{
  const client = new IoRedis(server.url);
  const backend = redis({ client, prefix });
  const app = createApp({ broker: backend, store: backend });
  const t = app.task({ name: "limited", rateLimit: { limit: 50, periodMs: 1_000 }, run: () => {} });
  const n = 50 * (seconds + 20);
  for (let i = 0; i < n; i += 1_000)
    await t.enqueueMany(Array.from({ length: Math.min(1_000, n - i) }, () => null));
  const start = Date.now();
  while (Date.now() - start < (seconds + 8) * 1_000) await new Promise((r) => setTimeout(r, 500));
  const starts = (await admin.lrange(`${prefix}:starts`, 0, -1)).map(Number).sort((a, b) => a - b);
  const from = starts[0]! + 5_000;
  const to = from + seconds * 1_000;
  const inWindow = starts.filter((s) => s >= from && s < to).length;
  const rate = inWindow / seconds;
  console.log(`| limit | processes | window | starts in window | achieved rate | error |`);
  console.log(`|---:|---:|---:|---:|---:|---:|`);
  console.log(
    `| 50/s | 3 | ${seconds} s | ${inWindow} | ${rate.toFixed(2)}/s | ${(((rate - 50) / 50) * 100).toFixed(2)} % |`,
  );
  for (const c of children) c.kill("SIGTERM");
  await app.close();
  client.disconnect();
}

// ---- 2. unlimited beside limited
async function drainRate(withLimited: "none" | "same queue" | "own queue"): Promise<number> {
  await admin.flushall();
  const client = new IoRedis(server.url);
  const backend = redis({ client, prefix: `b${Date.now().toString(36)}` });
  const app = createApp({ broker: backend, store: backend });
  const free = app.task({ name: "free", run: () => null });
  const limited = app.task({
    name: "keyed",
    rateLimit: { limit: 50, periodMs: 1_000, key: (i) => String(i) },
    ...(withLimited === "own queue" ? { queue: "limited" } : {}),
    run: () => null,
  });
  if (withLimited !== "none") {
    for (let b = 0; b < 20; b++) await limited.enqueueMany(Array.from({ length: 1_000 }, (_, i) => i % 10));
  }
  for (let b = 0; b < 20; b++) await free.enqueueMany(Array.from({ length: 1_000 }, () => null));
  let done = 0;
  const all = new Promise<void>((resolve) =>
    app.on("succeeded", (e) => {
      if (e.task === "free" && ++done === 20_000) resolve();
    }),
  );
  const t0 = performance.now();
  const worker = app.worker({ concurrency: 10, queues: ["default", "limited"] }).start();
  await all;
  const rate = 20_000 / ((performance.now() - t0) / 1_000);
  await worker.stop();
  await app.close();
  client.disconnect();
  return rate;
}
const rows: [string, number[]][] = [
  ["alone", []],
  ["20,000 limited runs queued ahead, same queue", []],
  ["20,000 limited runs in their own queue, same worker", []],
];
for (let round = 0; round < 3; round++) {
  rows[0]![1].push(await drainRate("none"));
  rows[1]![1].push(await drainRate("same queue"));
  rows[2]![1].push(await drainRate("own queue"));
}
const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[1]!;
console.log("");
console.log(`| unlimited no-op tasks, c=10 | tasks/s (median of 3) | runs |`);
console.log(`|---|---:|---|`);
for (const [label, xs] of rows)
  console.log(`| ${label} | ${Math.round(median(xs))} | ${xs.map(Math.round).join(", ")} |`);
for (const i of [1, 2])
  console.log(`\nratio (${rows[i]![0]}): ${(median(rows[i]![1]) / median(rows[0]![1])).toFixed(3)}`);
admin.disconnect();
await server.stop();
