/**
 * Benchmark (not a test): celeriac's limits against BullMQ's open-source equivalents, on the same
 * redis-server, in the same run.
 *
 *   npx tsx bench/limits-bullmq.ts            (about 2 minutes; prints a markdown report)
 *   npx tsx bench/limits-bullmq.ts --quick    (smoke run: a fifth of the jobs)
 *
 * Every run: FLUSHALL, two worker processes (bench/_limits-bullmq-worker.ts) of one side, one of
 * them enqueues N jobs in bulk (1,000 a call: `enqueueMany` / `addBulk`) before any worker runs,
 * then both start their workers and drain the queue. The children report to this process over
 * IPC only, so the Redis commands counted (INFO commandstats deltas, inner commands of scripts
 * included and the script calls counted apart, as bench/redis.ts counts them) are the side's
 * own. "worker cmds/job" is the drain phase ÷ N; "enqueue" the bulk enqueue ÷ N. Both sides keep
 * finished jobs for 24 h (celeriac's default `resultTtlMs`; BullMQ `removeOnComplete: { age:
 * 86400 }`); every other option at its default.
 *
 * 1. Global rate limit, L starts/s across both processes (worker concurrency 10 each), no-op
 *    jobs: celeriac `rateLimit: { limit: L, periodMs: 1000 }` against BullMQ's Worker `limiter:
 *    { max: L, duration: 1000 }` (one counter per queue, shared by its workers; the same one
 *    `queue.setGlobalRateLimit` sets). Starts (handler entries) in a window from 2 s to 12 s after
 *    the first start, the most starts in any sliding 1 s inside it, and the first second's.
 * 2. Global concurrency C, handlers sleeping 20 ms, worker concurrency 10 in each process (20
 *    slots for C): celeriac `concurrency: { limit: C }` against BullMQ
 *    `queue.setGlobalConcurrency(C)`. Peak handlers running at once across both processes (from
 *    the handlers' start and end times), jobs/s (first start to last end) against C / 20 ms.
 * 3. Per-key concurrency 1 over 10 keys, handlers sleeping 20 ms: celeriac `concurrency: { limit:
 *    1, key: (i) => String(i.k) }` (one queue, worker concurrency 10 per process) against what a
 *    BullMQ OSS user writes, since per-group limits are BullMQ Pro's: one queue per key with
 *    `setGlobalConcurrency(1)` and, in each process, a Worker at concurrency 1 on every queue (20
 *    Workers). The manual route (`queue.rateLimit(ms)` + `Worker.RateLimitError()`) holds back
 *    the whole queue, every key at once, so it is no per-key limit. Peak per key, peak in all,
 *    jobs/s against 10 × 1 / 20 ms.
 *
 * @module
 */
import { type ChildProcess, execFileSync, spawn } from "node:child_process";
import { readFileSync } from "node:fs";
import { availableParallelism, cpus, loadavg } from "node:os";
import { fileURLToPath } from "node:url";
import { Redis as IoRedis } from "ioredis";
import { startRedis } from "../dev/mod.ts";
import type { Report, Span, Spec } from "./_limits-bullmq-worker.ts";
import { breakdown, type Delta, fixed, int, Probe, scriptCalls, table, totalCalls } from "./_redis-probe.ts";

const QUICK = process.argv.includes("--quick");
const scale = QUICK ? 0.2 : 1;
const RATE = 200;
const RATE_N = Math.round(RATE * 15 * scale);
const CONCURRENCY = 5;
const KEYS = 10;
const SLEEP_MS = 20;
const CONC_N = Math.round(3_000 * scale);
const KEYED_N = Math.round(5_000 * scale);
const WORKER_CONCURRENCY = 10;
const PROCESSES = 2;
const CHILD = fileURLToPath(new URL("./_limits-bullmq-worker.ts", import.meta.url));
const SIDES = ["celeriac", "bullmq"] as const;
const LABEL = { celeriac: "celeriac", bullmq: "BullMQ" } as const;

const log = (...parts: unknown[]) =>
  console.error(`[bench ${new Date().toISOString().slice(11, 19)}]`, ...parts);

/** One side's run of a section. */
interface Outcome {
  spec: Omit<Spec, "url" | "prefix">;
  enqueue: Delta;
  drain: Delta;
  spans: Span[];
}

/** A child process and what it reported. */
class Child {
  readonly process: ChildProcess;
  done = 0;
  readonly #waiting = new Map<string, (r: Report) => void>();
  readonly exited: Promise<number | null>;

  constructor(spec: Spec, onProgress: () => void) {
    this.process = spawn(process.execPath, ["--import", "tsx", CHILD, JSON.stringify(spec)], {
      stdio: ["ignore", "inherit", "inherit", "ipc"],
    });
    this.process.on("message", (r: Report) => {
      if (r.ev === "progress") {
        this.done = r.done;
        onProgress();
      }
      this.#waiting.get(r.ev)?.(r);
    });
    this.exited = new Promise((resolve) => this.process.on("exit", resolve));
  }

  /** The next report of kind `ev` (rejects if the child exits first). */
  next<E extends Report["ev"]>(ev: E): Promise<Extract<Report, { ev: E }>> {
    return new Promise((resolve, reject) => {
      this.#waiting.set(ev, (r) => resolve(r as Extract<Report, { ev: E }>));
      void this.exited.then((code) => reject(new Error(`child exited (${code}) before ${ev}`)));
    });
  }

  send(cmd: "enqueue" | "go" | "stop"): void {
    this.process.send({ cmd });
  }
}

async function run(probe: Probe, url: string, spec: Outcome["spec"]): Promise<Outcome> {
  await probe.flush();
  const full: Spec = { ...spec, url, prefix: `lb${Date.now().toString(36)}` };
  let wake = () => {};
  const children = Array.from({ length: PROCESSES }, () => new Child(full, () => wake()));
  try {
    await Promise.all(children.map((c) => c.next("ready")));
    const enqueue = await probe.measure(async () => {
      const enqueued = children[0]!.next("enqueued");
      children[0]!.send("enqueue");
      await enqueued;
    });
    const limitMs = 60_000 + spec.n * 30;
    const drain = await probe.measure(async () => {
      const all = new Promise<void>((resolve, reject) => {
        const timer = setTimeout(() => reject(new Error(`${spec.side} ${spec.section}: timed out`)), limitMs);
        wake = () => {
          if (children.reduce((s, c) => s + c.done, 0) >= spec.n) {
            clearTimeout(timer);
            resolve();
          }
        };
      });
      for (const c of children) c.send("go");
      await all;
    });
    const reports = children.map((c) => c.next("spans"));
    for (const c of children) c.send("stop");
    const spans = (await Promise.all(reports)).flatMap((r) => r.spans);
    await Promise.all(children.map((c) => c.exited));
    // Each job ran once: no more handler calls than jobs once both processes stopped.
    if (spans.length !== spec.n) {
      throw new Error(`${spec.side} ${spec.section}: ${spans.length} handler calls for ${spec.n} jobs`);
    }
    return { spec, enqueue: enqueue.delta, drain: drain.delta, spans };
  } finally {
    for (const c of children) if (c.process.exitCode === null) c.process.kill("SIGTERM");
  }
}

// ---------------------------------------------------------------- figures

/** Most spans running at once (an end before a start at the same instant). */
function peak(spans: readonly Span[]): number {
  const events = spans.flatMap(([s, e]) => [
    [s, 1],
    [e, -1],
  ]);
  events.sort((a, b) => a[0]! - b[0]! || a[1]! - b[1]!);
  let running = 0;
  let max = 0;
  for (const [, d] of events) {
    running += d!;
    max = Math.max(max, running);
  }
  return max;
}

function peakPerKey(spans: readonly Span[]): number {
  const byKey = new Map<number, Span[]>();
  for (const s of spans) {
    const list = byKey.get(s[2]);
    if (list === undefined) byKey.set(s[2], [s]);
    else list.push(s);
  }
  return Math.max(...[...byKey.values()].map(peak));
}

/** Jobs/s from the first start to the last end. */
function throughput(spans: readonly Span[]): number {
  const first = Math.min(...spans.map((s) => s[0]));
  const last = Math.max(...spans.map((s) => s[1]));
  return (spans.length * 1_000) / (last - first);
}

interface RateFigures {
  inWindow: number;
  rate: number;
  /** The most starts in any 1 s inside the window. */
  maxInWindow: number;
  /** The most starts in any 1 s of the whole run. */
  maxInRun: number;
  firstSecond: number;
}

/** The most of the sorted times `ts` in any 1 s interval that ends by `to`. */
function mostPerSecond(ts: readonly number[], to: number): number {
  let most = 0;
  for (let i = 0, j = 0; i < ts.length; i++) {
    while (j < ts.length && ts[j]! < ts[i]! + 1_000) j++;
    if (ts[i]! + 1_000 <= to) most = Math.max(most, j - i);
  }
  return most;
}

const WINDOW_FROM_MS = 2_000;
const WINDOW_MS = QUICK ? 1_000 : 10_000;

function rateFigures(spans: readonly Span[]): RateFigures {
  const starts = spans.map((s) => s[0]).sort((a, b) => a - b);
  const first = starts[0]!;
  const from = first + WINDOW_FROM_MS;
  const to = from + WINDOW_MS;
  const inside = starts.filter((t) => t >= from && t < to);
  return {
    inWindow: inside.length,
    rate: inside.length / (WINDOW_MS / 1_000),
    maxInWindow: mostPerSecond(inside, to),
    maxInRun: mostPerSecond(starts, Number.POSITIVE_INFINITY),
    firstSecond: starts.filter((t) => t < first + 1_000).length,
  };
}

/** The command cells every section shows. */
function costCells(o: Outcome): string[] {
  const n = o.spec.n;
  return [
    `**${fixed(totalCalls(o.drain) / n, 2)}**`,
    fixed(scriptCalls(o.drain) / n, 2),
    fixed(o.drain.redisUs / n, 1),
    fixed(totalCalls(o.enqueue) / n, 2),
  ];
}
const COST_HEAD = ["worker cmds/job", "script calls/job", "Redis CPU µs/job", "enqueue cmds/job"];

function byCommand(outcomes: readonly Outcome[]): string {
  return breakdown(
    outcomes.map((o) => ({ name: LABEL[o.spec.side], n: o.spec.n, delta: o.drain })),
    12,
  );
}

function version(pkg: string): string {
  const url = new URL(`../node_modules/${pkg}/package.json`, import.meta.url);
  return String((JSON.parse(readFileSync(url, "utf8")) as { version?: unknown }).version);
}

// ---------------------------------------------------------------- the run

const started = new Date();
const loads = [loadavg()[0]!];
const server = await startRedis();
const admin = new IoRedis(server.url);
const probe = new Probe(admin);
const base = { keys: 1, sleepMs: 0, concurrency: WORKER_CONCURRENCY };
const results: Record<Spec["section"], Outcome[]> = { rate: [], concurrency: [], keyed: [] };
try {
  for (const side of SIDES) {
    log(`1. rate ${side}`);
    results.rate.push(
      await run(probe, server.url, { ...base, side, section: "rate", n: RATE_N, limit: RATE }),
    );
  }
  for (const side of SIDES) {
    log(`2. concurrency ${side}`);
    results.concurrency.push(
      await run(probe, server.url, {
        ...base,
        side,
        section: "concurrency",
        n: CONC_N,
        limit: CONCURRENCY,
        sleepMs: SLEEP_MS,
      }),
    );
  }
  for (const side of SIDES) {
    log(`3. keyed ${side}`);
    results.keyed.push(
      await run(probe, server.url, {
        ...base,
        side,
        section: "keyed",
        n: KEYED_N,
        limit: 1,
        keys: KEYS,
        sleepMs: SLEEP_MS,
      }),
    );
  }
} finally {
  loads.push(loadavg()[0]!);
  admin.disconnect();
  await server.stop();
}

const out: string[] = [
  "# celeriac limits vs BullMQ OSS on Redis",
  "",
  `- command: \`npx tsx bench/limits-bullmq.ts${QUICK ? " --quick" : ""}\`${QUICK ? " (**smoke run: not for citing**)" : ""}`,
  `- date: ${started.toISOString()} (took ${((Date.now() - started.getTime()) / 1_000).toFixed(0)} s); load average (1 min) ${loads.map((l) => l.toFixed(2)).join(" → ")}`,
  `- machine: nproc ${availableParallelism()}, ${cpus()[0]?.model ?? "?"}; node ${process.version}; ${execFileSync("redis-server", ["--version"], { encoding: "utf8" }).trim()}`,
  `- bullmq ${version("bullmq")}, ioredis ${version("ioredis")}; ${PROCESSES} worker processes per run, FLUSHALL before each`,
  "",
  `## 1. Global rate limit: ${RATE}/s, ${PROCESSES} processes × c=${WORKER_CONCURRENCY}, ${int(RATE_N)} no-op jobs`,
  "",
  table(
    [
      "side",
      "how",
      `starts ${WINDOW_FROM_MS / 1_000}–${(WINDOW_FROM_MS + WINDOW_MS) / 1_000} s`,
      "achieved rate",
      "error",
      "most in any 1 s of the window",
      "first 1 s",
      "most in any 1 s of the run",
      ...COST_HEAD,
    ],
    results.rate.map((o) => {
      const f = rateFigures(o.spans);
      return [
        LABEL[o.spec.side],
        o.spec.side === "celeriac"
          ? "`rateLimit: { limit, periodMs: 1000 }`"
          : "Worker `limiter: { max, duration: 1000 }`",
        int(f.inWindow),
        `${fixed(f.rate, 1)}/s`,
        `${fixed(((f.rate - RATE) / RATE) * 100, 2)} %`,
        int(f.maxInWindow),
        int(f.firstSecond),
        int(f.maxInRun),
        ...costCells(o),
      ];
    }),
  ),
  "",
  "Worker-phase commands by command:",
  "",
  byCommand(results.rate),
  "",
  `## 2. Global concurrency: ${CONCURRENCY} at once, ${PROCESSES} processes × c=${WORKER_CONCURRENCY}, ${int(CONC_N)} jobs of ${SLEEP_MS} ms`,
  "",
  table(
    ["side", "how", "peak running", "limit", "jobs/s", "ideal", ...COST_HEAD],
    results.concurrency.map((o) => [
      LABEL[o.spec.side],
      o.spec.side === "celeriac" ? "`concurrency: { limit }`" : "`queue.setGlobalConcurrency(limit)`",
      String(peak(o.spans)),
      String(CONCURRENCY),
      int(throughput(o.spans)),
      int((CONCURRENCY * 1_000) / SLEEP_MS),
      ...costCells(o),
    ]),
  ),
  "",
  "Worker-phase commands by command:",
  "",
  byCommand(results.concurrency),
  "",
  `## 3. Per-key concurrency: 1 per key, ${KEYS} keys, ${int(KEYED_N)} jobs of ${SLEEP_MS} ms`,
  "",
  table(
    ["side", "route", "peak per key", "peak in all", "jobs/s", "ideal", ...COST_HEAD],
    results.keyed.map((o) => [
      LABEL[o.spec.side],
      o.spec.side === "celeriac"
        ? `one queue, \`concurrency: { limit: 1, key }\`, ${PROCESSES} × worker c=${WORKER_CONCURRENCY}`
        : `${KEYS} queues (one per key), \`setGlobalConcurrency(1)\` each, ${PROCESSES} × ${KEYS} Workers c=1`,
      String(peakPerKey(o.spans)),
      String(peak(o.spans)),
      int(throughput(o.spans)),
      int((KEYS * 1_000) / SLEEP_MS),
      ...costCells(o),
    ]),
  ),
  "",
  "Worker-phase commands by command:",
  "",
  byCommand(results.keyed),
  "",
];
console.log(out.join("\n"));
