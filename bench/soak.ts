/**
 * Benchmark (not a test): a long-lived worker under a steady load, sampled for memory growth.
 *
 *   npx tsx --expose-gc bench/soak.ts                          (3 minutes, 2,000 tasks/s, memory backend)
 *   npx tsx --expose-gc bench/soak.ts --minutes=10 --rate=5000 --backend=redis
 *
 * A producer enqueues async no-op tasks at `--rate` per second (in 100 ms ticks) while one worker
 * (concurrency 10) runs them; every 10 s the heap (after a forced GC, when `--expose-gc` is on)
 * and the RSS are sampled. At the end it prints the samples and the least-squares slope of each,
 * in bytes per minute: a worker that keeps nothing per task shows a slope near 0 once warm (the
 * first sample is left out). Run records expire after 1 s (`resultTtlMs`), so what they hold
 * does not hide what the runtime keeps.
 *
 * @module
 */
import process from "node:process";
import { Redis } from "ioredis";
import { memory } from "../adapters/memory/mod.ts";
import { redis } from "../adapters/redis/mod.ts";
import type { Broker, Store } from "../backend.ts";
import { startRedis } from "../dev/mod.ts";
import { createApp } from "../mod.ts";

const arg = (name: string, fallback: string): string =>
  process.argv.find((a) => a.startsWith(`--${name}=`))?.slice(name.length + 3) ?? fallback;
const minutes = Number(arg("minutes", "3"));
const rate = Number(arg("rate", "2000"));
const kind = arg("backend", "memory");
const SAMPLE_MS = 10_000;

const gc = (globalThis as { gc?: () => void }).gc;
if (gc === undefined) console.error("note: run with --expose-gc for heap figures after GC");

let backend: Broker & Store;
let cleanup = async () => {};
if (kind === "redis") {
  const server = await startRedis();
  const client = new Redis(server.url);
  backend = redis({ client });
  cleanup = async () => {
    await backend.close?.();
    client.disconnect();
    await server.stop();
  };
} else backend = memory();

const app = createApp({ broker: backend, store: backend });
const noop = app.task({ name: "noop", resultTtlMs: 1_000, async run() {} });
let done = 0;
app.on("succeeded", () => {
  done++;
});
const worker = app.worker({ concurrency: 10 }).start();

const perTick = Math.max(1, Math.round(rate / 10));
const inputs = Array.from({ length: perTick }, () => null);
let sent = 0;
const producer = setInterval(() => {
  sent += perTick;
  noop.enqueueMany(inputs).catch((error: unknown) => console.error("enqueue failed", error));
}, 100);

interface Sample {
  atMin: number;
  heapMiB: number;
  rssMiB: number;
  done: number;
}
const samples: Sample[] = [];
const started = performance.now();
const MiB = 1024 * 1024;
while (performance.now() - started < minutes * 60_000) {
  await new Promise((resolve) => setTimeout(resolve, SAMPLE_MS));
  gc?.();
  const { heapUsed, rss } = process.memoryUsage();
  const sample = {
    atMin: (performance.now() - started) / 60_000,
    heapMiB: heapUsed / MiB,
    rssMiB: rss / MiB,
    done,
  };
  samples.push(sample);
  console.error(
    `${sample.atMin.toFixed(2)} min  heap ${sample.heapMiB.toFixed(1)} MiB  rss ${sample.rssMiB.toFixed(1)} MiB  done ${done}`,
  );
}
clearInterval(producer);
await worker.stop();
await cleanup();

/** Least-squares slope of y over x. */
function slope(points: readonly [number, number][]): number {
  const n = points.length;
  const mx = points.reduce((s, [x]) => s + x, 0) / n;
  const my = points.reduce((s, [, y]) => s + y, 0) / n;
  let num = 0;
  let den = 0;
  for (const [x, y] of points) {
    num += (x - mx) * (y - my);
    den += (x - mx) ** 2;
  }
  return den === 0 ? 0 : num / den;
}

const warm = samples.slice(1);
const heapSlope = slope(warm.map((s) => [s.atMin, s.heapMiB * MiB]));
const rssSlope = slope(warm.map((s) => [s.atMin, s.rssMiB * MiB]));
const elapsedMin = (performance.now() - started) / 60_000;
console.log(`# soak: ${kind} backend, ${rate} tasks/s offered, ${minutes} min (node ${process.version})`);
console.log("");
console.log("| minute | heap MiB | RSS MiB | tasks done |");
console.log("| ---: | ---: | ---: | ---: |");
for (const s of samples) {
  console.log(`| ${s.atMin.toFixed(2)} | ${s.heapMiB.toFixed(1)} | ${s.rssMiB.toFixed(1)} | ${s.done} |`);
}
console.log("");
console.log(`- tasks: ${sent} sent, ${done} done (${Math.round(done / (elapsedMin * 60))}/s)`);
console.log(
  `- heap slope after the first sample: ${Math.round(heapSlope / 1024)} KiB/min (${(heapSlope / Math.max(1, done / elapsedMin)).toFixed(2)} B per task)`,
);
console.log(`- RSS slope after the first sample: ${Math.round(rssSlope / 1024)} KiB/min`);
