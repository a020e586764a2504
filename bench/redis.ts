/**
 * Benchmark (not a test): celeriac's Redis backend against BullMQ on the same redis-server, in
 * the same run, on the same machine.
 *
 *   npx tsx bench/redis.ts            (the full run: a few minutes; prints a markdown report)
 *   npx tsx bench/redis.ts --quick    (smoke run: small N, one run per row)
 *
 * One fresh `redis-server` (dev/redis-server.ts: loopback, no AOF, no RDB saves) serves
 * every run; each run starts with FLUSHALL and opens its own clients. celeriac and BullMQ
 * alternate (the order flips every round), everything is warmed up first, and each figure is the
 * median of 3 runs.
 *
 * 1. No-op tasks/s at concurrency 1, 10, 100: N tasks are enqueued in bulk first (timed too),
 *    then a worker is started and timed until the last one completed. celeriac: `redis({ client:
 *    ioredis })` as broker and store, `app.worker({ concurrency })`. BullMQ: `Queue` + `Worker`
 *    with the same concurrency.
 * 2. Enqueue throughput: single enqueues awaited one by one and 100 in flight, and bulk
 *    (`enqueueMany` vs `addBulk`, 1,000 a call).
 * 3. Retry-once throughput at concurrency 10: every task fails its first attempt and succeeds
 *    on the second, with no backoff.
 * 4. p50/p99 enqueue→completed latency with an idle worker, one task at a time.
 * 5. Redis commands per full task cycle (single enqueue → completed), from INFO commandstats
 *    deltas (commands run inside scripts included; script calls counted apart).
 * 6. Node and Redis CPU µs per task (`process.cpuUsage()`, INFO cpu deltas).
 * 7. celeriac over REST: the real `@upstash/redis` client through the loopback Upstash bridge
 *    (dev/upstash-bridge.ts, in this process) to the same redis-server.
 * 8. Idle workers: Redis commands/s over 5 s with an empty queue.
 *
 * History kept: celeriac keeps every run record for `resultTtlMs` (default 24 h, a PEXPIRE per
 * record); BullMQ runs with `removeOnComplete: { age: 86400 }, removeOnFail: { age: 86400 }`,
 * the same 24 h by age (it trims the completed set on each completion). Section 1 also shows
 * BullMQ with `removeOnComplete: true` (nothing kept), its cheapest setting.
 *
 * @module
 */
import { execFileSync } from "node:child_process";
import { readFileSync } from "node:fs";
import { availableParallelism, cpus, loadavg, release, totalmem } from "node:os";
import { Redis as UpstashRedis } from "@upstash/redis";
import { Redis as IoRedis } from "ioredis";
import { startRedis, startUpstashBridge } from "../dev/mod.ts";
import {
  breakdown,
  type Delta,
  fixed,
  int,
  joinDeltas,
  median,
  Probe,
  percentile,
  ratio,
  scriptCalls,
  table,
  totalCalls,
} from "./_redis-probe.ts";
import { remoteResult } from "./_remote.ts";
import {
  BullSide,
  CeleriacSide,
  type CycleOptions,
  type CycleResult,
  CHUNK,
  type EnqueueMode,
  IN_FLIGHT,
  type Side,
} from "./_redis-sides.ts";

// ---------------------------------------------------------------- settings

const argv = process.argv.slice(2);
const QUICK = argv.includes("--quick");
/** Runs per row; the median is reported. */
const RUNS = QUICK ? 1 : 3;
/** Tasks per drain run, by worker concurrency. */
const DRAIN_N: Record<number, number> = QUICK
  ? { 1: 1_000, 10: 3_000, 100: 3_000 }
  : { 1: 5_000, 10: 20_000, 100: 20_000 };
const CONCURRENCIES = [1, 10, 100];
const ENQUEUE_N: Record<EnqueueMode, number> = QUICK
  ? { sequential: 1_000, concurrent: 3_000, bulk: 5_000 }
  : { sequential: 3_000, concurrent: 10_000, bulk: 20_000 };
const RETRY_N = QUICK ? 2_000 : 10_000;
const CYCLE_N = QUICK ? 1_000 : 5_000;
const LATENCY_SAMPLES = QUICK ? 300 : 2_000;
const LATENCY_GAP_MS = 2;
const REMOTE_SAMPLES = QUICK ? 100 : 500;
const REST_N = QUICK ? 1_000 : 5_000;
const IDLE_MS = 5_000;
const TOKEN = "celeriac-bench-token";

/** What the issue asks for. */
const TARGET = { speedup: 1.5, commands: 10, retrySpeedup: 3, idlePerSec: 0.1, httpPerTask: 2 };

const gc = (globalThis as { gc?: () => void }).gc;
const log = (...parts: unknown[]) =>
  console.error(`[bench ${new Date().toISOString().slice(11, 19)}]`, ...parts);
const loads: string[] = [];
function noteLoad(where: string): void {
  loads.push(
    `${where}: ${loadavg()
      .map((l) => l.toFixed(2))
      .join(", ")}`,
  );
}

function version(pkg: string): string {
  try {
    const url = new URL(`../node_modules/${pkg}/package.json`, import.meta.url);
    return String((JSON.parse(readFileSync(url, "utf8")) as { version?: unknown }).version);
  } catch {
    return "?";
  }
}

function redisVersion(): string {
  try {
    return execFileSync("redis-server", ["--version"], { encoding: "utf8" }).trim();
  } catch {
    return "?";
  }
}

// ---------------------------------------------------------------- helpers

/** Runs `fn` for every side `runs` times, flipping the order every round. */
async function alternate<T>(sides: readonly Side[], runs: number, fn: (side: Side) => Promise<T>) {
  const out = new Map<Side, T[]>(sides.map((s) => [s, []]));
  for (let r = 0; r < runs; r++) {
    for (const side of r % 2 === 0 ? sides : [...sides].reverse()) {
      gc?.();
      out.get(side)!.push(await fn(side));
    }
  }
  return out;
}

const perSec = (n: number, d: Delta) => (n * 1_000) / d.ms;
const medOf = <T>(xs: readonly T[], f: (x: T) => number) => median(xs.map(f));
const span = <T>(xs: readonly T[], f: (x: T) => number) => {
  const v = xs.map(f);
  return v.length < 2 ? "" : ` (${int(Math.min(...v))}–${int(Math.max(...v))})`;
};

/** Per-task figures of a phase. */
interface PerTask {
  rate: number;
  nodeUs: number;
  redisUs: number;
  calls: number;
  scripts: number;
  requests: number;
}

function perTask(n: number, d: Delta): PerTask {
  return {
    rate: perSec(n, d),
    nodeUs: d.nodeUs / n,
    redisUs: d.redisUs / n,
    calls: totalCalls(d) / n,
    scripts: scriptCalls(d) / n,
    requests: d.requests / n,
  };
}

/** Medians, field by field, of per-task figures. */
function medPer(xs: readonly PerTask[]): PerTask {
  return {
    rate: medOf(xs, (x) => x.rate),
    nodeUs: medOf(xs, (x) => x.nodeUs),
    redisUs: medOf(xs, (x) => x.redisUs),
    calls: medOf(xs, (x) => x.calls),
    scripts: medOf(xs, (x) => x.scripts),
    requests: medOf(xs, (x) => x.requests),
  };
}

/** The run whose drain rate is the median one (for command breakdowns). */
function medianRun(n: number, runs: readonly CycleResult[]): CycleResult {
  const sorted = [...runs].sort((a, b) => perSec(n, a.drain) - perSec(n, b.drain));
  return sorted[sorted.length >> 1]!;
}

// ---------------------------------------------------------------- the run

async function main(): Promise<string> {
  const started = new Date();
  noteLoad("start");
  const server = await startRedis();
  const admin = new IoRedis(server.url, { maxRetriesPerRequest: 3 });
  admin.on("error", () => {});
  const bridge = await startUpstashBridge({ redisUrl: server.url, token: TOKEN });
  const out: string[] = [];
  try {
    const probe = new Probe(admin);
    const restProbe = new Probe(admin, () => bridge.requests);
    const tcpClient = () => {
      const client = new IoRedis(server.url);
      client.on("error", (e) => log("ioredis error:", e));
      return { client, dispose: () => client.disconnect() };
    };
    const restClient = () => ({
      client: new UpstashRedis({ url: bridge.url, token: TOKEN, enableTelemetry: false }),
      dispose: () => {},
    });
    const connection = { host: "127.0.0.1", port: server.port, maxRetriesPerRequest: null };
    const cel = new CeleriacSide("celeriac", probe, tcpClient);
    const celBare = new CeleriacSide("celeriac (history: false)", probe, tcpClient, false);
    const bull = new BullSide("BullMQ", probe, connection, { age: 86_400 });
    const bullNone = new BullSide("BullMQ (removeOnComplete: true)", probe, connection, true);
    const rest = new CeleriacSide("celeriac REST", restProbe, restClient);
    const pair: Side[] = [cel, bull];

    // ---- warm-up: JIT, script caches, connection code paths of both
    log("warm-up");
    for (const side of [cel, celBare, bull, bullNone, cel, bull]) {
      await side.cycle({ n: QUICK ? 500 : 3_000, concurrency: 10, kind: "noop", enqueue: "bulk" });
      await side.cycle({ n: QUICK ? 200 : 1_000, concurrency: 10, kind: "retry", enqueue: "concurrent" });
      await side.enqueueOnly("sequential", QUICK ? 100 : 500);
      await side.latency(QUICK ? 20 : 100, LATENCY_GAP_MS);
    }
    await rest.cycle({ n: QUICK ? 200 : 1_000, concurrency: 10, kind: "noop", enqueue: "bulk" });

    // ---- 1. throughput
    noteLoad("section 1");
    const drains = new Map<number, Map<Side, CycleResult[]>>();
    for (const c of CONCURRENCIES) {
      const n = DRAIN_N[c]!;
      log(`1. drain n=${n} c=${c}`);
      const opts: CycleOptions = { n, concurrency: c, kind: "noop", enqueue: "bulk" };
      drains.set(c, await alternate([cel, celBare, bull, bullNone], RUNS, (s) => s.cycle(opts)));
    }

    // ---- 2. enqueue
    noteLoad("section 2");
    const enqueues = new Map<EnqueueMode, Map<Side, Delta[]>>();
    for (const mode of ["sequential", "concurrent", "bulk"] as const) {
      log(`2. enqueue ${mode} n=${ENQUEUE_N[mode]}`);
      enqueues.set(mode, await alternate(pair, RUNS, (s) => s.enqueueOnly(mode, ENQUEUE_N[mode])));
    }

    // ---- 3. retry-once
    noteLoad("section 3");
    log(`3. retry-once n=${RETRY_N} c=10`);
    const retries = await alternate(pair, RUNS, (s) =>
      s.cycle({ n: RETRY_N, concurrency: 10, kind: "retry", enqueue: "bulk" }),
    );

    // ---- 4. latency
    noteLoad("section 4");
    log(`4. latency ${LATENCY_SAMPLES} samples`);
    const latencies = await alternate(pair, RUNS, (s) => s.latency(LATENCY_SAMPLES, LATENCY_GAP_MS));

    // ---- 4b. cross-process result()
    noteLoad("section 4b");
    log(`4b. cross-process result() ${REMOTE_SAMPLES} samples`);
    const remote: Record<"celeriac" | "bullmq", number[][]> = { celeriac: [], bullmq: [] };
    for (let r = 0; r < RUNS; r++) {
      for (const side of r % 2 === 0
        ? (["celeriac", "bullmq"] as const)
        : (["bullmq", "celeriac"] as const)) {
        await admin.flushall();
        remote[side].push(await remoteResult(side, server.port, REMOTE_SAMPLES, LATENCY_GAP_MS));
      }
    }

    // ---- 5 + 6. full cycles: single enqueues (100 in flight), then a worker at c=10
    noteLoad("section 5");
    log(`5. full cycles n=${CYCLE_N}`);
    const cycles = new Map<string, Map<Side, CycleResult[]>>();
    for (const kind of ["noop", "retry"] as const) {
      cycles.set(
        kind,
        await alternate(pair, RUNS, (s) =>
          s.cycle({ n: CYCLE_N, concurrency: 10, kind, enqueue: "concurrent" }),
        ),
      );
    }

    // ---- 7. REST
    noteLoad("section 7");
    const rests = new Map<number, CycleResult[]>();
    for (const c of [10, 100]) {
      log(`7. REST n=${REST_N} c=${c}`);
      const runs: CycleResult[] = [];
      for (let r = 0; r < RUNS; r++) {
        gc?.();
        runs.push(await rest.cycle({ n: REST_N, concurrency: c, kind: "noop", enqueue: "bulk" }));
      }
      rests.set(c, runs);
    }

    // ---- 8. idle
    noteLoad("section 8");
    log("8. idle");
    const idles = new Map<Side, Delta>();
    for (const side of pair) idles.set(side, await side.idle(IDLE_MS));
    noteLoad("end");

    // ================================================================ report
    const took = (Date.now() - started.getTime()) / 1_000;
    const cpu = cpus()[0]?.model ?? "?";
    out.push(
      "# celeriac vs BullMQ on Redis",
      "",
      `- command: \`npx tsx bench/redis.ts${argv.length > 0 ? ` ${argv.join(" ")}` : ""}\`${QUICK ? " (**quick smoke run: small N, 1 run per row — not for citing**)" : ""}`,
      `- date: ${started.toISOString()} (took ${took.toFixed(0)} s)`,
      `- machine: nproc ${availableParallelism()}, ${cpu}, ${(totalmem() / 2 ** 30).toFixed(1)} GiB, Linux ${release()}`,
      `- node ${process.version}; ${redisVersion()}`,
      `- bullmq ${version("bullmq")}, ioredis ${version("ioredis")}, @upstash/redis ${version("@upstash/redis")}`,
      `- load average (1, 5, 15 min) — ${loads.join("; ")}`,
      `- one redis-server (no AOF, no RDB), FLUSHALL before every run; celeriac and BullMQ alternate, order flipped each round; warm-up first; figures are medians of ${RUNS} run${RUNS === 1 ? "" : "s"} (range in brackets)`,
      "- history: celeriac keeps each run record for `resultTtlMs` = 24 h (default); BullMQ `removeOnComplete: { age: 86400 }, removeOnFail: { age: 86400 }` (24 h by age). Also shown: BullMQ `removeOnComplete: true` (keeps nothing)",
      "- celeriac's run history (the dashboard's indexes, `RedisOptions.history`) on, its default, everywhere; section 1 also shows celeriac with `redis({ history: false })`",
      "- other options at their defaults (celeriac: lease 30 s, pollMs 5 s; BullMQ: lockDuration 30 s, stalledInterval 30 s, drainDelay 5 s); no-op handlers `async () => null`; input `{ n: i }`",
      "",
    );

    // 1
    out.push(
      "## 1. No-op tasks/s (TCP)",
      "",
      `N tasks enqueued in bulk (${int(CHUNK)} a call; timed as "enqueue"), then a worker drains them (timed from start to the last completion). N = ${CONCURRENCIES.map((c) => `${int(DRAIN_N[c]!)} at c=${c}`).join(", ")}.`,
      "",
    );
    {
      const rows: string[][] = [];
      const costRows: string[][] = [];
      for (const c of CONCURRENCIES) {
        const n = DRAIN_N[c]!;
        const m = drains.get(c)!;
        const rate = (s: Side) => medOf(m.get(s)!, (r) => perSec(n, r.drain));
        const enq = (s: Side) => medOf(m.get(s)!, (r) => perSec(n, r.enqueue));
        rows.push([
          `c=${c}`,
          `${int(rate(cel))}${span(m.get(cel)!, (r) => perSec(n, r.drain))}`,
          `${int(rate(bull))}${span(m.get(bull)!, (r) => perSec(n, r.drain))}`,
          `**${ratio(rate(cel), rate(bull))}**`,
          `${int(rate(bullNone))}${span(m.get(bullNone)!, (r) => perSec(n, r.drain))}`,
          ratio(rate(cel), rate(bullNone)),
          `${int(rate(celBare))}${span(m.get(celBare)!, (r) => perSec(n, r.drain))}`,
          ratio(rate(celBare), rate(bull)),
          int(enq(cel)),
          int(enq(bull)),
          ratio(enq(cel), enq(bull)),
        ]);
        for (const s of [cel, celBare, bull, bullNone]) {
          const p = medPer(m.get(s)!.map((r) => perTask(n, r.drain)));
          costRows.push([
            `c=${c}`,
            s.label,
            fixed(p.nodeUs),
            fixed(p.redisUs),
            fixed(p.nodeUs + p.redisUs),
            fixed(p.calls, 2),
            fixed(p.scripts, 2),
          ]);
        }
      }
      out.push(
        table(
          [
            "concurrency",
            "celeriac tasks/s",
            "BullMQ tasks/s",
            "celeriac/BullMQ",
            "BullMQ rm:true tasks/s",
            "celeriac/BullMQ rm:true",
            "celeriac history: false tasks/s",
            "history: false/BullMQ",
            "celeriac enqueue/s",
            "BullMQ enqueue/s",
            "enqueue ratio",
          ],
          rows,
        ),
        "",
        "Per task while draining (worker phase only):",
        "",
        table(
          ["concurrency", "side", "Node CPU µs", "Redis CPU µs", "sum µs", "Redis commands", "script calls"],
          costRows,
        ),
        "",
      );
    }

    // 2
    out.push("## 2. Enqueue throughput (TCP, no worker)", "");
    {
      const rows: string[][] = [];
      const names: Record<EnqueueMode, string> = {
        sequential: "single, awaited one by one",
        concurrent: `single, ${IN_FLIGHT} in flight`,
        bulk: `bulk (enqueueMany / addBulk, ${int(CHUNK)} a call)`,
      };
      for (const mode of ["sequential", "concurrent", "bulk"] as const) {
        const n = ENQUEUE_N[mode];
        const m = enqueues.get(mode)!;
        const pc = medPer(m.get(cel)!.map((d) => perTask(n, d)));
        const pb = medPer(m.get(bull)!.map((d) => perTask(n, d)));
        rows.push([
          `${names[mode]}, N=${int(n)}`,
          `${int(pc.rate)}${span(m.get(cel)!, (d) => perSec(n, d))}`,
          `${int(pb.rate)}${span(m.get(bull)!, (d) => perSec(n, d))}`,
          `**${ratio(pc.rate, pb.rate)}**`,
          `${fixed(pc.calls, 2)} / ${fixed(pb.calls, 2)}`,
          `${fixed(pc.nodeUs)} / ${fixed(pb.nodeUs)}`,
          `${fixed(pc.redisUs)} / ${fixed(pb.redisUs)}`,
        ]);
      }
      out.push(
        table(
          [
            "mode",
            "celeriac enqueues/s",
            "BullMQ enqueues/s",
            "ratio",
            "Redis cmds/enqueue (c / B)",
            "Node µs (c / B)",
            "Redis µs (c / B)",
          ],
          rows,
        ),
        "",
      );
    }

    // 3
    out.push(
      "## 3. Retry-once throughput (TCP, concurrency 10)",
      "",
      `N=${int(RETRY_N)} tasks enqueued in bulk; every task fails its first attempt and succeeds on the second, no backoff (celeriac \`retry: { maxAttempts: 2, baseMs: 0, jitter: "none" }\`; BullMQ \`attempts: 2\`, no backoff). Tasks/s = tasks completed (2 attempts each) per second of draining.`,
      "",
    );
    {
      const pc = medPer(retries.get(cel)!.map((r) => perTask(RETRY_N, r.drain)));
      const pb = medPer(retries.get(bull)!.map((r) => perTask(RETRY_N, r.drain)));
      out.push(
        table(
          [
            "side",
            "tasks/s",
            "Node CPU µs/task",
            "Redis CPU µs/task",
            "Redis commands/task",
            "script calls/task",
          ],
          [
            [
              "celeriac",
              `${int(pc.rate)}${span(retries.get(cel)!, (r) => perSec(RETRY_N, r.drain))}`,
              fixed(pc.nodeUs),
              fixed(pc.redisUs),
              fixed(pc.calls, 2),
              fixed(pc.scripts, 2),
            ],
            [
              "BullMQ",
              `${int(pb.rate)}${span(retries.get(bull)!, (r) => perSec(RETRY_N, r.drain))}`,
              fixed(pb.nodeUs),
              fixed(pb.redisUs),
              fixed(pb.calls, 2),
              fixed(pb.scripts, 2),
            ],
            ["celeriac/BullMQ", `**${ratio(pc.rate, pb.rate)}**`, "", "", "", ""],
          ],
        ),
        "",
      );
    }

    // 4
    out.push(
      "## 4. Enqueue→completed latency, idle worker (TCP)",
      "",
      `Worker at concurrency 1, waiting on an empty queue; the producer (same process) enqueues one task, waits for the completion event (celeriac \`app.on("succeeded")\`, BullMQ \`worker.on("completed")\`), pauses ${LATENCY_GAP_MS} ms, repeats: ${int(LATENCY_SAMPLES)} samples a run; medians over runs of each run's percentile.`,
      "",
    );
    {
      const row = (s: Side) => {
        const runs = latencies.get(s)!;
        const n = LATENCY_SAMPLES;
        return [
          s.label,
          fixed(
            medOf(runs, (r) => percentile(r.ms, 50)),
            3,
          ),
          fixed(
            medOf(runs, (r) => percentile(r.ms, 90)),
            3,
          ),
          fixed(
            medOf(runs, (r) => percentile(r.ms, 99)),
            3,
          ),
          fixed(
            medOf(runs, (r) => Math.max(...r.ms)),
            2,
          ),
          fixed(
            medOf(runs, (r) => totalCalls(r.delta) / n),
            2,
          ),
          fixed(
            medOf(runs, (r) => scriptCalls(r.delta) / n),
            2,
          ),
          fixed(
            medOf(runs, (r) => (r.delta.calls.get("bzpopmin") ?? 0) / n),
            2,
          ),
        ];
      };
      const p = (s: Side, q: number) => medOf(latencies.get(s)!, (r) => percentile(r.ms, q));
      out.push(
        table(
          [
            "side",
            "p50 ms",
            "p90 ms",
            "p99 ms",
            "max ms",
            "Redis cmds/task",
            "script calls/task",
            "BZPOPMIN/task",
          ],
          [
            row(cel),
            row(bull),
            [
              "celeriac/BullMQ",
              ratio(p(cel, 50), p(bull, 50)),
              ratio(p(cel, 90), p(bull, 90)),
              ratio(p(cel, 99), p(bull, 99)),
              "",
              "",
              "",
              "",
            ],
          ],
        ),
        "",
      );
    }

    // 5
    out.push(
      "## 4b. Cross-process `run.result()`, idle worker (TCP)",
      "",
      `The worker runs in a process of its own (bench/_remote-worker.ts, concurrency 1, idle between tasks); this process enqueues one no-op task and waits for its result — celeriac \`(await task.enqueue(x)).result()\`, BullMQ \`(await queue.add(…)).waitUntilFinished(queueEvents)\` — pauses ${LATENCY_GAP_MS} ms, repeats: ${int(REMOTE_SAMPLES)} samples a run (the first tenth left out as warm-up); medians over runs of each run's percentile.`,
      "",
      table(
        ["side", "p50 ms", "p90 ms", "p99 ms", "max ms"],
        (["celeriac", "bullmq"] as const).map((side) => [
          side === "celeriac" ? "celeriac" : "BullMQ",
          ...[50, 90, 99].map((p) =>
            fixed(
              medOf(remote[side], (r) => percentile(r, p)),
              3,
            ),
          ),
          fixed(
            medOf(remote[side], (r) => Math.max(...r)),
            2,
          ),
        ]),
      ),
      "",
      `celeriac/BullMQ (time, lower is better): p50 ${fixed(medOf(remote.celeriac, (r) => percentile(r, 50)) / medOf(remote.bullmq, (r) => percentile(r, 50)), 2)}×, p99 ${fixed(medOf(remote.celeriac, (r) => percentile(r, 99)) / medOf(remote.bullmq, (r) => percentile(r, 99)), 2)}×.`,
      "",
      "## 5. Redis commands per full task cycle (TCP)",
      "",
      `N=${int(CYCLE_N)} single enqueues (${IN_FLIGHT} in flight), then a worker at concurrency 10 drains them; INFO commandstats deltas over both phases ÷ N. "Commands" counts every command Redis ran, inside scripts included, plus the script calls themselves (EVALSHA/EVAL) and blocking waits (BZPOPMIN); "in scripts and direct" leaves the script calls out.`,
      "",
    );
    const full = (s: Side, kind: string) =>
      cycles
        .get(kind)!
        .get(s)!
        .map((r) => joinDeltas(r.enqueue, r.drain));
    {
      const rows: string[][] = [];
      for (const kind of ["noop", "retry"] as const) {
        for (const s of pair) {
          const ds = full(s, kind);
          const runs = cycles.get(kind)!.get(s)!;
          const total = medOf(ds, (d) => totalCalls(d) / CYCLE_N);
          const scripts = medOf(ds, (d) => scriptCalls(d) / CYCLE_N);
          rows.push([
            kind === "noop" ? "plain" : "retry-once",
            s.label,
            `**${fixed(total, 2)}**`,
            fixed(scripts, 2),
            fixed(total - scripts, 2),
            fixed(
              medOf(runs, (r) => totalCalls(r.enqueue) / CYCLE_N),
              2,
            ),
            fixed(
              medOf(runs, (r) => totalCalls(r.drain) / CYCLE_N),
              2,
            ),
            fixed(
              medOf(runs, (r) => scriptCalls(r.drain) / CYCLE_N),
              2,
            ),
          ]);
        }
      }
      out.push(
        table(
          [
            "task",
            "side",
            "commands/task",
            "script calls/task",
            "in scripts and direct",
            "enqueue phase cmds",
            "worker phase cmds",
            "worker script calls",
          ],
          rows,
        ),
        "",
        "By command (the median run's counts ÷ N; enqueue + worker phases):",
        "",
      );
      const cols = (kind: string) =>
        pair.map((s) => {
          const r = medianRun(CYCLE_N, cycles.get(kind)!.get(s)!);
          return {
            name: `${s.label} ${kind === "noop" ? "plain" : "retry-once"}`,
            n: CYCLE_N,
            delta: joinDeltas(r.enqueue, r.drain),
          };
        });
      out.push(breakdown([...cols("noop"), ...cols("retry")]), "");
    }

    // 6
    out.push(
      "## 6. CPU per task (TCP)",
      "",
      "Node = this process (producer and worker, `process.cpuUsage()`); Redis = redis-server (`used_cpu_sys + used_cpu_user`). µs per task, medians.",
      "",
    );
    {
      const rows: string[][] = [];
      const add = (name: string, per: (s: Side) => PerTask) => {
        const c = per(cel);
        const b = per(bull);
        rows.push([
          name,
          fixed(c.nodeUs),
          fixed(b.nodeUs),
          fixed(c.redisUs),
          fixed(b.redisUs),
          `${fixed(c.nodeUs + c.redisUs)} / ${fixed(b.nodeUs + b.redisUs)}`,
          ratio(c.nodeUs + c.redisUs, b.nodeUs + b.redisUs),
        ]);
      };
      for (const kind of ["noop", "retry"] as const) {
        add(`full cycle, ${kind === "noop" ? "plain" : "retry-once"} (single enqueue + c=10)`, (s) =>
          medPer(full(s, kind).map((d) => perTask(CYCLE_N, d))),
        );
      }
      for (const c of [10, 100]) {
        add(`worker only, c=${c} (section 1)`, (s) =>
          medPer(
            drains
              .get(c)!
              .get(s)!
              .map((r) => perTask(DRAIN_N[c]!, r.drain)),
          ),
        );
      }
      add("worker only, retry-once c=10 (section 3)", (s) =>
        medPer(retries.get(s)!.map((r) => perTask(RETRY_N, r.drain))),
      );
      add(`bulk enqueue (section 2)`, (s) =>
        medPer(
          enqueues
            .get("bulk")!
            .get(s)!
            .map((d) => perTask(ENQUEUE_N.bulk, d)),
        ),
      );
      add(`single enqueue, ${IN_FLIGHT} in flight (section 2)`, (s) =>
        medPer(
          enqueues
            .get("concurrent")!
            .get(s)!
            .map((d) => perTask(ENQUEUE_N.concurrent, d)),
        ),
      );
      out.push(
        table(
          [
            "scenario",
            "celeriac Node µs",
            "BullMQ Node µs",
            "celeriac Redis µs",
            "BullMQ Redis µs",
            "sum µs (c / B)",
            "sum ratio",
          ],
          rows,
        ),
        "",
      );
    }

    // 7
    out.push(
      "## 7. celeriac over REST (@upstash/redis → loopback Upstash bridge → same redis-server)",
      "",
      `N=${int(REST_N)} tasks enqueued over REST with enqueueMany (${int(CHUNK)} a call), then a worker over REST drains them. The client runs with its defaults (auto-pipelining on, so calls made in the same tick share one HTTP request). The bridge runs in this process, so "Node CPU" includes it. Redis cmds and HTTP requests are per task, worker phase.`,
      "",
    );
    {
      const rows: string[][] = [];
      for (const c of [10, 100]) {
        const runs = rests.get(c)!;
        const p = medPer(runs.map((r) => perTask(REST_N, r.drain)));
        const tcp = medOf(drains.get(c)!.get(cel)!, (r) => perSec(DRAIN_N[c]!, r.drain));
        rows.push([
          `c=${c}`,
          `${int(p.rate)}${span(runs, (r) => perSec(REST_N, r.drain))}`,
          `**${fixed(p.requests, 3)}**`,
          fixed(p.scripts, 2),
          fixed(
            medOf(runs, (r) => r.enqueue.requests / REST_N),
            4,
          ),
          fixed(p.nodeUs),
          fixed(p.redisUs),
          `${int(tcp)} (REST/TCP ${ratio(p.rate, tcp)})`,
        ]);
      }
      out.push(
        table(
          [
            "concurrency",
            "tasks/s",
            "HTTP requests/task",
            "script calls/task",
            "enqueue HTTP req/task",
            "Node CPU µs/task",
            "Redis CPU µs/task",
            "TCP tasks/s (section 1)",
          ],
          rows,
        ),
        "",
      );
    }

    // 8
    out.push(
      "## 8. Idle worker (TCP, empty queue)",
      "",
      `A started worker (concurrency 10) on an empty queue, 1 s to settle, then ${IDLE_MS / 1_000} s measured.`,
      "",
    );
    {
      const rows = pair.map((s) => {
        const d = idles.get(s)!;
        const calls = [...d.calls].map(([k, v]) => `${k.toUpperCase()} ${v}`).join(", ");
        const trips = scriptCalls(d) + (d.calls.get("bzpopmin") ?? 0);
        return [
          s.label,
          fixed((totalCalls(d) * 1_000) / d.ms, 2),
          fixed((trips * 1_000) / d.ms, 2),
          calls || "none",
          fixed(d.redisUs / (d.ms / 1_000), 0),
        ];
      });
      out.push(
        table(
          [
            "side",
            "Redis commands/s",
            "round trips/s (scripts + BZPOPMIN)",
            "commands in the window",
            "Redis CPU µs/s",
          ],
          rows,
        ),
        "",
      );
    }

    // targets
    {
      const rate = (c: number, s: Side) => medOf(drains.get(c)!.get(s)!, (r) => perSec(DRAIN_N[c]!, r.drain));
      const r10 = rate(10, cel) / rate(10, bull);
      const r100 = rate(100, cel) / rate(100, bull);
      const cmds = medOf(full(cel, "noop"), (d) => totalCalls(d) / CYCLE_N);
      const cmdsNoScripts = medOf(full(cel, "noop"), (d) => (totalCalls(d) - scriptCalls(d)) / CYCLE_N);
      const rr =
        medOf(retries.get(cel)!, (r) => perSec(RETRY_N, r.drain)) /
        medOf(retries.get(bull)!, (r) => perSec(RETRY_N, r.drain));
      const idleRate = (d: Delta) => (totalCalls(d) * 1_000) / d.ms;
      const idleC = idleRate(idles.get(cel)!);
      const idleB = idleRate(idles.get(bull)!);
      const http = Math.max(...[10, 100].map((c) => medOf(rests.get(c)!, (r) => r.drain.requests / REST_N)));
      const mark = (ok: boolean) => (ok ? "met" : "**missed**");
      out.push(
        "## Targets (issue 3)",
        "",
        table(
          ["target", "measured", ""],
          [
            [`≥ ${TARGET.speedup}× BullMQ at c=10`, `${r10.toFixed(2)}×`, mark(r10 >= TARGET.speedup)],
            [`≥ ${TARGET.speedup}× BullMQ at c=100`, `${r100.toFixed(2)}×`, mark(r100 >= TARGET.speedup)],
            [
              `≤ ${TARGET.commands} Redis commands per full task cycle (issue's count: script calls apart, as its "32 commands and 2 script calls" for BullMQ)`,
              `${cmdsNoScripts.toFixed(2)} + ${(cmds - cmdsNoScripts).toFixed(2)} script calls`,
              mark(cmdsNoScripts <= TARGET.commands),
            ],
            [
              `retry-once ≥ ${TARGET.retrySpeedup}× BullMQ`,
              `${rr.toFixed(2)}×`,
              mark(rr >= TARGET.retrySpeedup),
            ],
            [
              "idle TCP worker ~0 commands/s (blocking, as BullMQ does)",
              `${idleC.toFixed(2)}/s (BullMQ ${idleB.toFixed(2)}/s)`,
              mark(idleC <= Math.max(TARGET.idlePerSec, idleB)),
            ],
            [
              `≤ ${TARGET.httpPerTask} HTTP requests per task over REST under load`,
              `${http.toFixed(3)} (worst of c=10, c=100)`,
              mark(http <= TARGET.httpPerTask),
            ],
          ],
        ),
        "",
      );
    }
    return out.join("\n");
  } finally {
    await bridge.close();
    admin.disconnect();
    await server.stop();
  }
}

const report = await main();
console.log(report);
