/**
 * Benchmark (not a test): the Redis run history at 1,000,000 stored runs — how long a listing
 * of the runs table takes (`store.history.list`, and the dashboard's runs page over its Hono
 * app), and what the indexes weigh in Redis.
 *
 *   npx tsx bench/history.ts            (1,000,000 runs: about two minutes)
 *   npx tsx bench/history.ts 100000     (fewer runs)
 *
 * One fresh `redis-server` (dev/redis-server.ts). An app on `redis({ history: { maxRuns } })`
 * (ioredis) sends the runs with `enqueueMany` (1,000 a call): a tenth go to queue "done" and are
 * run (one in ten fails for good), the rest wait in queue "waiting"; one run in a hundred is of
 * a rare task, one in a thousand has an idempotency key. Each query is timed 21 times after a
 * warm-up; the median and the 95th percentile are shown, with the index entries it read.
 *
 * @module
 */
import { availableParallelism, cpus, loadavg } from "node:os";
import { Redis as IoRedis } from "ioredis";
import { redis } from "../adapters/redis/mod.ts";
import { startRedis } from "../dev/mod.ts";
import type { HistoryQuery } from "../backend.ts";
import { createApp } from "../mod.ts";
import { dashboard } from "../src/dashboard/mod.ts";

const N = Number(process.argv[2] ?? 1_000_000);
if (!Number.isInteger(N) || N < 10_000) throw new RangeError("runs: an integer of at least 10,000");
const DONE = N / 10;
const REPEAT = 21;
const log = (...parts: unknown[]) =>
  console.error(`[history ${new Date().toISOString().slice(11, 19)}]`, ...parts);

const server = await startRedis();
const client = new IoRedis(server.url);
const admin = new IoRedis(server.url);
const backend = redis({ client, history: { maxRuns: N } });
const app = createApp({ broker: backend, store: backend });
const task = app.task({
  name: "bench.work",
  run: (n: number) => {
    if (n % 10 === 3) throw new Error(`bad input ${n}`);
    return { doubled: n * 2 };
  },
  retry: { maxAttempts: 1 },
});
const rare = app.task({ name: "bench.rare", run: (n: number) => n });
const memoryBefore = await usedMemory();

async function usedMemory(): Promise<number> {
  const info = String(await admin.info("memory"));
  return Number(/^used_memory:(\d+)/m.exec(info)?.[1] ?? 0);
}

let sent = 0;
let enqueuedMid = 0;
const fillStart = performance.now();
async function fill(queue: string, count: number): Promise<void> {
  for (let i = 0; i < count; i += 1_000) {
    const n = Math.min(1_000, count - i);
    const common: number[] = [];
    const few: number[] = [];
    const keyed: number[] = [];
    for (let j = 0; j < n; j++) {
      const k = sent + j;
      if (k % 1_000 === 7) keyed.push(k);
      else if (k % 100 === 42) few.push(k);
      else common.push(k);
    }
    await task.enqueueMany(common, { queue });
    if (few.length > 0) await rare.enqueueMany(few, { queue });
    for (const k of keyed) await task.enqueue(k, { queue, idempotencyKey: `order-${k}` });
    sent += n;
    if (queue === "waiting" && enqueuedMid === 0 && i >= count / 2) enqueuedMid = Date.now();
    if (sent % 100_000 === 0) log(`${sent.toLocaleString("en-US")} sent`);
  }
}
await fill("done", DONE);
log("running the done queue");
const worker = app.worker({ queues: ["done"], concurrency: 100 }).start();
let ended = 0;
await new Promise<void>((resolve) => {
  const count = () => {
    if (++ended === DONE) resolve();
  };
  app.on("succeeded", count);
  app.on("failed", count);
});
await worker.stop();
await fill("waiting", N - DONE);
const fillSeconds = (performance.now() - fillStart) / 1_000;
const memoryAfter = await usedMemory();
const tag = (q: string) => `{${backend.prefix}:${q}}`;
let indexBytes = 0;
for (const q of ["done", "waiting"]) {
  const keys = await admin.keys(`${tag(q)}:h*`);
  for (const key of keys) indexBytes += Number(await admin.memory("USAGE", key, "SAMPLES", "0"));
}
log(`filled in ${fillSeconds.toFixed(0)} s`);

const history = backend.history!;
const queues = ["done", "waiting"];
function quantile(sorted: number[], q: number): number {
  return sorted[Math.min(sorted.length - 1, Math.floor(q * sorted.length))]!;
}
async function time(fn: () => Promise<unknown>): Promise<{ p50: number; p95: number }> {
  await fn();
  const took: number[] = [];
  for (let i = 0; i < REPEAT; i++) {
    const t = performance.now();
    await fn();
    took.push(performance.now() - t);
  }
  took.sort((a, b) => a - b);
  return { p50: quantile(took, 0.5), p95: quantile(took, 0.95) };
}

// A cursor 200 pages (10,000 runs) deep.
let deep: string | null = null;
for (let i = 0; i < 200; i++) deep = (await history.list({ queues, limit: 50, cursor: deep })).cursor;
const key = `order-${Math.floor((N * 0.6) / 1_000) * 1_000 + 7}`;
const queries: [string, Omit<HistoryQuery, "queues" | "limit">][] = [
  ["newest 50", {}],
  ["page 201 (10,000 runs deep)", { cursor: deep }],
  ["time range (from the middle of the waiting runs)", { to: enqueuedMid }],
  ["task (1 run in 100)", { task: "bench.rare" }],
  ["state succeeded", { state: "succeeded" }],
  ["state failed", { state: "failed" }],
  ["state queued (read and checked one by one)", { state: "queued" }],
  ["state retrying (none: a page of index entries read for nothing)", { state: "retrying" }],
  ["idempotency key", { idempotencyKey: key }],
  ["text in the input (one run has it)", { text: `"input":${N - 17}` }],
  ["text nowhere (a page of entries read for nothing)", { text: "no such text" }],
];
const rows: string[] = [];
for (const [label, q] of queries) {
  const page = await history.list({ queues, limit: 50, ...q });
  const t = await time(() => history.list({ queues, limit: 50, ...q }));
  rows.push(
    `| ${label} | ${page.runs.length} | ${page.scanned.toLocaleString("en-US")} | ${t.p50.toFixed(2)} | ${t.p95.toFixed(2)} |`,
  );
  log(label, t.p50.toFixed(2), "ms");
}

const token = "bench-history-token";
const ops = dashboard(app, { token });
const headers = { authorization: `Bearer ${token}` };
const pageRows: string[] = [];
for (const [label, path] of [
  ["runs page, newest 50", "/runs"],
  ["runs page, task", "/runs?task=bench.rare"],
  ["runs page, idempotency key", `/runs?key=${key}`],
  ["overview", "/"],
] as const) {
  const res = await ops.request(path, { headers });
  if (res.status !== 200) throw new Error(`${path}: ${res.status}`);
  await res.text();
  const t = await time(async () => (await ops.request(path, { headers })).text());
  pageRows.push(`| ${label} | \`${path}\` | ${t.p50.toFixed(2)} | ${t.p95.toFixed(2)} |`);
}

const mib = (b: number) => (b / 2 ** 20).toFixed(0);
console.log(
  [
    `# The run history at ${N.toLocaleString("en-US")} runs (Redis)`,
    "",
    `- command: \`npx tsx bench/history.ts${process.argv[2] === undefined ? "" : ` ${process.argv[2]}`}\``,
    `- date: ${new Date().toISOString()}; machine: nproc ${availableParallelism()}, ${cpus()[0]?.model ?? "?"}; node ${process.version}; load ${loadavg()
      .map((l) => l.toFixed(2))
      .join(", ")}`,
    `- ${N.toLocaleString("en-US")} runs in 2 queues (${DONE.toLocaleString("en-US")} run, a tenth of them failed; the rest waiting), sent and run in ${fillSeconds.toFixed(0)} s`,
    `- Redis memory: ${mib(memoryAfter - memoryBefore)} MiB for the runs (${((memoryAfter - memoryBefore) / N).toFixed(0)} B a run), of which the history's indexes ${mib(indexBytes)} MiB (${(indexBytes / N).toFixed(0)} B a run)`,
    "",
    "`store.history.list({ queues: [both], limit: 50, … })`, ms:",
    "",
    "| query | runs | index entries read | p50 ms | p95 ms |",
    "| --- | ---: | ---: | ---: | ---: |",
    ...rows,
    "",
    "The dashboard's pages over its Hono app (no network), ms:",
    "",
    "| page | path | p50 ms | p95 ms |",
    "| --- | --- | ---: | ---: |",
    ...pageRows,
    "",
  ].join("\n"),
);
await app.close();
client.disconnect();
admin.disconnect();
await server.stop();
