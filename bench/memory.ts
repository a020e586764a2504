/**
 * Benchmark (not a test): the in-memory backend end to end.
 *
 *   npx tsx --expose-gc bench/memory.ts        (Node; --expose-gc makes the heap figures exact)
 *   npx bun bench/memory.ts                    (Bun)
 *   … bench/memory.ts --quick                  (smoke run: one short run per row, no calibration)
 *
 * What it measures, each in a fresh app on `memory()`:
 * 1. No-op tasks/s from enqueue to `succeeded` through `app.worker({ concurrency })` at 1, 10 and
 *    100: "queued" enqueues N tasks with `enqueueMany` in chunks, then starts the worker; "live"
 *    starts the worker first and enqueues the chunks while it runs. Completion is counted with
 *    `app.on("succeeded")` (no polling). Each row is warmed up, N is sized so one run takes at
 *    least a second, and the median of 3 runs is reported.
 * 2. Eager mode (`memory({ eager: true })`): sequential `await task.enqueue()` calls.
 * 3. Per-task cost in µs (wall, and process CPU time), next to a bare `for (…) await fn()` loop in
 *    the same process.
 * 4. Memory held by 100k queued (not run) tasks: RSS and heap used, peak and after GC; then the
 *    heap still used once a worker has run them all.
 *
 * Only Web-standard APIs, plus `process.memoryUsage()`, `process.cpuUsage()`, `process.argv` and a
 * GC hook (`gc` under --expose-gc, `Bun.gc`), each used only where the runtime has it.
 *
 * @module
 */
import { memory } from "../adapters/memory/mod.ts";
import { type App, createApp, type Task } from "../mod.ts";

// ---------------------------------------------------------------- runtime and options

interface MemoryUsage {
  rss: number;
  heapUsed: number;
}

interface RuntimeHooks {
  process?: {
    argv?: string[];
    versions?: Record<string, string | undefined>;
    memoryUsage?: () => MemoryUsage;
    cpuUsage?: () => { user: number; system: number };
  };
  navigator?: { userAgent?: string; hardwareConcurrency?: number };
  gc?: () => void;
  Bun?: { gc?: (force: boolean) => void };
}

const host = globalThis as unknown as RuntimeHooks;
const argv = host.process?.argv ?? [];
const QUICK = argv.includes("--quick");
/** Runs per row; the median is reported. */
const RUNS = QUICK ? 1 : 3;
/** A run is sized to take about this long (and at least a second). */
const TARGET_RUN_MS = QUICK ? 300 : 1_500;
/** Inputs per `enqueueMany` call. */
const CHUNK = 1_000;
/** Queued tasks held for the memory figure. */
const HELD = 100_000;
/** The goal set in the issue: no-op tasks/s at concurrency 100 on Node (2 cores). */
const TARGET_RATE = 50_000;

function runtimeName(): string {
  const node = host.process?.versions?.node;
  const bun = host.process?.versions?.bun;
  if (bun !== undefined) return `Bun ${bun}`;
  const agent = host.navigator?.userAgent;
  if (agent !== undefined && !agent.startsWith("Node.js")) return agent;
  return node === undefined ? (agent ?? "unknown runtime") : `Node.js v${node}`;
}

/** Collects garbage when the runtime lets us; returns whether it could. */
function collect(): boolean {
  if (typeof host.gc === "function") {
    host.gc();
    host.gc();
    return true;
  }
  if (typeof host.Bun?.gc === "function") {
    host.Bun.gc(true);
    return true;
  }
  return false;
}

/** Process CPU time (user + system) in µs, where the runtime reports it. */
function cpuMicros(): number | undefined {
  const read = host.process?.cpuUsage;
  if (typeof read !== "function") return undefined;
  const { user, system } = read.call(host.process);
  return user + system;
}

function memoryUsage(): MemoryUsage | undefined {
  const read = host.process?.memoryUsage;
  if (typeof read !== "function") return undefined;
  const { rss, heapUsed } = read.call(host.process);
  return { rss, heapUsed };
}

// ---------------------------------------------------------------- helpers

function median(values: readonly number[]): number {
  const sorted = [...values].sort((a, b) => a - b);
  const mid = sorted.length >> 1;
  return sorted.length % 2 === 1 ? sorted[mid]! : (sorted[mid - 1]! + sorted[mid]!) / 2;
}

function int(n: number): string {
  return Math.round(n).toLocaleString("en-US");
}

function fixed(n: number, digits: number): string {
  return n.toLocaleString("en-US", { minimumFractionDigits: digits, maximumFractionDigits: digits });
}

function mib(bytes: number): string {
  return `${fixed(bytes / 1_048_576, 1)} MiB`;
}

/** Rounds a task count up to whole chunks. */
function sized(rate: number, minimum: number): number {
  const n = Math.max(minimum, Math.ceil((rate * TARGET_RUN_MS) / 1_000));
  return Math.ceil(n / CHUNK) * CHUNK;
}

const NULLS: null[] = Array.from({ length: CHUNK }, () => null);

type Noop = Task<unknown, unknown>;

function noopApp(eager = false): { app: App; noop: Noop } {
  const app = createApp({ broker: memory({ eager }) });
  // Async, like real handlers: the executor arms the task's timeout for it.
  const noop = app.task({ name: "bench.noop", run: async () => {} });
  return { app, noop };
}

/**
 * Resolves with `performance.now()` at the moment the n-th `succeeded` event fires; rejects on
 * the first failure or error event (a benchmark that silently loses tasks would hang or lie).
 */
function succeeded(app: App, n: number): { at: Promise<number>; off: () => void } {
  let count = 0;
  let resolve!: (at: number) => void;
  let reject!: (error: Error) => void;
  const at = new Promise<number>((res, rej) => {
    resolve = res;
    reject = rej;
  });
  const offs = [
    app.on("succeeded", () => {
      if (++count === n) resolve(performance.now());
    }),
    app.on("failed", (e) => reject(new Error(`task ${e.id} failed: ${e.error.message}`))),
    app.on("deadLettered", (e) => reject(new Error(`task ${e.id} dead-lettered: ${e.reason}`))),
    app.on("error", (e) => reject(new Error(`${e.where}: ${String(e.error)}`))),
  ];
  return {
    at,
    off: () => {
      for (const off of offs) off();
    },
  };
}

async function enqueueAll(noop: Noop, n: number): Promise<void> {
  for (let sent = 0; sent < n; sent += CHUNK) await noop.enqueueMany(NULLS);
}

// ---------------------------------------------------------------- scenarios

type Mode = "queued" | "live";

interface Sample {
  /** First enqueue to last `succeeded`, ms. */
  totalMs: number;
  /** Worker start to last `succeeded`, ms ("queued" only: the worker alone). */
  drainMs: number;
  /** Process CPU time over `totalMs`, µs (NaN where the runtime does not report it). */
  cpuUs: number;
}

/** Times `body` (which resolves with its own end time) in wall and CPU time. */
async function timed(body: (t0: number) => Promise<{ end: number; drainStart: number }>): Promise<Sample> {
  const c0 = cpuMicros();
  const t0 = performance.now();
  const { end, drainStart } = await body(t0);
  const c1 = cpuMicros();
  return {
    totalMs: end - t0,
    drainMs: end - drainStart,
    cpuUs: c0 === undefined || c1 === undefined ? Number.NaN : c1 - c0,
  };
}

async function workerRun(mode: Mode, concurrency: number, n: number): Promise<Sample> {
  const { app, noop } = noopApp();
  const done = succeeded(app, n);
  const worker = app.worker({ concurrency });
  try {
    return await timed(async (t0) => {
      if (mode === "queued") {
        await enqueueAll(noop, n);
        const drainStart = performance.now();
        worker.start();
        return { end: await done.at, drainStart };
      }
      worker.start();
      await enqueueAll(noop, n);
      return { end: await done.at, drainStart: t0 };
    });
  } finally {
    done.off();
    await worker.stop();
    await app.close();
  }
}

async function eagerRun(n: number): Promise<Sample> {
  const { app, noop } = noopApp(true);
  const done = succeeded(app, n);
  try {
    return await timed(async (t0) => {
      for (let i = 0; i < n; i++) await noop.enqueue(null);
      return { end: await done.at, drainStart: t0 };
    });
  } finally {
    done.off();
    await app.close();
  }
}

let sink = 0;
async function fn(): Promise<void> {
  sink++;
}

function bareRun(n: number): Promise<Sample> {
  return timed(async (t0) => {
    for (let i = 0; i < n; i++) await fn();
    return { end: performance.now(), drainStart: t0 };
  });
}

interface Row {
  name: string;
  concurrency: string;
  n: number;
  /** Per-run rates, ops/s, first enqueue to last success. */
  rates: number[];
  /** Per-run rates of the worker alone ("queued" rows). */
  drainRates: number[];
  /** Shortest run, ms. */
  minMs: number;
  /** Per-run process CPU µs per operation. */
  cpu: number[];
}

/** Warms up, sizes N from the warm-up rate, then takes RUNS measured runs. */
async function measure(
  name: string,
  concurrency: string,
  warmN: number,
  run: (n: number) => Promise<Sample>,
  minimum = 10_000,
): Promise<Row> {
  const warm = await run(warmN);
  let n = QUICK ? warmN : sized(warmN / (warm.totalMs / 1_000), minimum);
  const samples: Sample[] = [];
  // A run that came in under a second (the warm-up ran cold) resizes N and starts over, twice at most.
  for (let resized = 0; samples.length < RUNS; ) {
    collect();
    const sample = await run(n);
    if (!QUICK && sample.totalMs < 1_000 && resized < 2) {
      resized++;
      n = sized(n / (sample.totalMs / 1_000), minimum);
      samples.length = 0;
      continue;
    }
    samples.push(sample);
  }
  const row: Row = {
    name,
    concurrency,
    n,
    rates: samples.map((s) => n / (s.totalMs / 1_000)),
    drainRates: samples.map((s) => n / (s.drainMs / 1_000)),
    minMs: Math.min(...samples.map((s) => s.totalMs)),
    cpu: samples.map((s) => s.cpuUs / n),
  };
  const spread = row.rates.map(int).join(" / ");
  console.error(`  ${name}, concurrency ${concurrency}: N=${int(n)} → ${spread} per s`);
  return row;
}

interface HeldMemory {
  gc: boolean;
  before: MemoryUsage;
  peakRss: number;
  peakHeap: number;
  retained: MemoryUsage;
  enqueueMs: number;
  /** After a worker ran them all (run records stay for `resultTtlMs`), after GC. */
  afterRun: MemoryUsage;
}

/** Memory held by HELD queued tasks (records + broker entries), sampled after every chunk. */
async function heldMemory(): Promise<HeldMemory | undefined> {
  if (memoryUsage() === undefined) return undefined;
  // Warm the enqueue path on a throwaway app so JIT code is not counted as task memory.
  {
    const { app, noop } = noopApp();
    await enqueueAll(noop, 5 * CHUNK);
    await app.close();
  }
  const gc = collect();
  const before = memoryUsage()!;
  let peakRss = before.rss;
  let peakHeap = before.heapUsed;
  const { app, noop } = noopApp();
  const t0 = performance.now();
  for (let sent = 0; sent < HELD; sent += CHUNK) {
    await noop.enqueueMany(NULLS);
    const now = memoryUsage()!;
    peakRss = Math.max(peakRss, now.rss);
    peakHeap = Math.max(peakHeap, now.heapUsed);
  }
  const enqueueMs = performance.now() - t0;
  collect();
  const retained = memoryUsage()!;
  const stats = (app.broker as ReturnType<typeof memory>).stats();
  if (stats.ready !== HELD) throw new Error(`expected ${HELD} ready tasks, found ${stats.ready}`);
  // Then run them all and see what the finished runs still hold.
  const done = succeeded(app, HELD);
  const worker = app.worker({ concurrency: 100 }).start();
  await done.at;
  done.off();
  await worker.stop();
  collect();
  const afterRun = memoryUsage()!;
  await app.close();
  return { gc, before, peakRss, peakHeap, retained, enqueueMs, afterRun };
}

// ---------------------------------------------------------------- main

function cpuCell(row: Row): string {
  const cpu = median(row.cpu);
  return Number.isNaN(cpu) ? "–" : fixed(cpu, 2);
}

async function main(): Promise<void> {
  const runtime = runtimeName();
  const cores = host.navigator?.hardwareConcurrency;
  console.error(`celeriac bench/memory on ${runtime}${QUICK ? " (quick)" : ""}`);

  // Memory first, on a fresh heap (RSS never shrinks back after the throughput runs).
  console.error("warming up, measuring held memory…");
  const held = await heldMemory();
  // Global warm-up: JIT the whole path and let the heap settle before anything is timed.
  for (const c of [1, 10, 100]) await workerRun("queued", c, (QUICK ? 5 : 30) * CHUNK);
  await workerRun("live", 100, (QUICK ? 5 : 30) * CHUNK);
  await eagerRun((QUICK ? 2 : 10) * CHUNK);
  await bareRun(1_000_000);

  console.error("measuring (per-run rates follow)…");
  const baseline = await measure("bare `await fn()` loop", "–", 1_000_000, bareRun, 1_000_000);
  const rows: Row[] = [];
  for (const mode of ["queued", "live"] as const) {
    for (const c of [1, 10, 100]) {
      const label =
        mode === "queued" ? "worker, enqueued first (`enqueueMany` ×1000)" : "worker, enqueued while running";
      rows.push(await measure(label, String(c), 20 * CHUNK, (n) => workerRun(mode, c, n)));
    }
  }
  rows.push(
    await measure("eager `memory({ eager: true })`, sequential `enqueue`", "–", 10 * CHUNK, eagerRun),
  );

  const baseRate = median(baseline.rates);
  const baseUs = 1e6 / baseRate;
  const lines: string[] = [];
  lines.push(
    `### ${runtime}${cores === undefined ? "" : `, ${cores} cores`} — ${new Date().toISOString().slice(0, 10)}`,
  );
  lines.push("");
  lines.push(
    QUICK
      ? "Quick mode: one short run per row, after a warm-up. Smoke test only; not for comparison."
      : `Median of ${RUNS} runs after a warm-up; N sized for ≥ 1 s per run.`,
  );
  lines.push(
    "No-op task: `async () => {}`. tasks/s counts from the first enqueue to the last `succeeded` event; " +
      "µs per task = 10⁶ ÷ tasks/s; CPU µs per task = process CPU time (all threads, GC included) ÷ N.",
  );
  lines.push("");
  lines.push(
    "| Benchmark | Concurrency | N per run | tasks/s | µs per task | × bare await | CPU µs per task | worker-only tasks/s |",
  );
  lines.push("|---|---:|---:|---:|---:|---:|---:|---:|");
  for (const row of rows) {
    const rate = median(row.rates);
    const us = 1e6 / rate;
    const drain = row.name.includes("enqueued first") ? int(median(row.drainRates)) : "–";
    const short = !QUICK && row.minMs < 1_000 ? " (a run < 1 s)" : "";
    lines.push(
      `| ${row.name} | ${row.concurrency} | ${int(row.n)} | ${int(rate)}${short} | ${fixed(us, 2)} | ` +
        `${int(us / baseUs)}× | ${cpuCell(row)} | ${drain} |`,
    );
  }
  lines.push(
    `| bare \`await fn()\` loop (baseline) | – | ${int(baseline.n)} | ${int(baseRate)} | ${fixed(baseUs, 4)} | ` +
      `1× | ${cpuCell(baseline)} | – |`,
  );
  lines.push("");

  const c100 = rows.find((r) => r.concurrency === "100" && r.name.includes("enqueued first"));
  if (c100 !== undefined) {
    const total = median(c100.rates);
    const drain = median(c100.drainRates);
    const verdict = (rate: number) => (rate >= TARGET_RATE ? "meets" : "misses");
    lines.push(
      `Target ≥ ${int(TARGET_RATE)} no-op tasks/s at concurrency 100: end to end ${int(total)}/s ` +
        `(${verdict(total)} it); worker alone ${int(drain)}/s (${verdict(drain)} it).`,
    );
    lines.push("");
  }

  if (held === undefined) {
    lines.push("Memory: this runtime has no `process.memoryUsage()`; skipped.");
  } else {
    const heapDelta = held.retained.heapUsed - held.before.heapUsed;
    lines.push(`Memory held by ${int(HELD)} queued (not run) no-op tasks in one app:`);
    lines.push("");
    lines.push("| Measure | Value |");
    lines.push("|---|---:|");
    lines.push(`| RSS before | ${mib(held.before.rss)} |`);
    lines.push(`| RSS peak delta (sampled after each chunk) | ${mib(held.peakRss - held.before.rss)} |`);
    lines.push(
      `| Heap used peak delta (sampled after each chunk) | ${mib(held.peakHeap - held.before.heapUsed)} |`,
    );
    lines.push(
      `| Heap used delta after GC (retained) | ${held.gc ? mib(heapDelta) : "– (no GC hook: run Node with --expose-gc)"} |`,
    );
    if (held.gc) lines.push(`| Retained heap per queued task | ${int(heapDelta / HELD)} B |`);
    lines.push(`| Time to enqueue them (first enqueues in the process) | ${int(held.enqueueMs)} ms |`);
    if (held.gc) {
      const ran = held.afterRun.heapUsed - held.before.heapUsed;
      lines.push(
        `| Heap still used after a worker ran all ${int(HELD)} (after GC) | ${mib(ran)} (${int(ran / HELD)} B per run) |`,
      );
    }
    lines.push("");
  }
  console.log(lines.join("\n"));
  if (sink < 0) console.log(sink); // keeps the baseline's work observable
}

await main();
