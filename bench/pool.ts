/**
 * Benchmark (not a test): celeriac's thread pool (`celeriac/threads`) against the same task
 * module run on the event loop, and against BullMQ's sandboxed processors in worker threads.
 *
 *   npx tsx bench/pool.ts            (about 3 minutes; prints a markdown report on stdout)
 *   npx tsx bench/pool.ts --quick    (smoke run: small N, one run per row)
 *   npx tsx bench/pool.ts --only=1   (one section, or a list: --only=1,3)
 *
 * One `redis-server` (`startRedis()` from celeriac/dev: loopback, no persistence) serves every
 * Redis run, FLUSHALL between runs; celeriac runs on `redis({ client: new IoRedis(url), prefix })`
 * there, or on `memory()`. Every run opens a fresh app (or BullMQ Queue + Worker), starts its
 * worker, runs a warm-up batch (threads started, the task module imported in each), then times
 * one batch of N tasks from its first enqueue (`enqueueMany` / `addBulk`, 1,000 a call) to its
 * N-th completion (`succeeded` events / BullMQ `completed`). CPU time is the whole process's
 * (`process.cpuUsage()`, every thread included). Rows run in turn, the order rotated every round,
 * and each figure is the median of 3 runs (per-run figures are shown beside it).
 *
 * 1. CPU-bound tasks on Redis, worker concurrency 2: each task is `rounds` SHA-256 updates over a
 *    fixed 16 KiB block (bench/_pool-hash.mjs, node:crypto), `rounds` calibrated once at start so
 *    one task takes ~20 ms on this thread; the same count everywhere, and every run checks the
 *    digest it got back. celeriac with the module on the event loop (no `pool`), celeriac with
 *    `threads({ max: 2 })`, and BullMQ 6.7 with the same code as a sandboxed processor file
 *    (bench/_pool-bullmq.mjs, `useWorkerThreads: true`, concurrency 2). tasks/s and the ratios
 *    threads / in-loop (2 cores: at most 2×) and celeriac threads / BullMQ sandboxed.
 * 2. Per-task overhead of the pool, no-op task (bench/_pool-noop.task.ts), on `memory()` so
 *    Redis is out of the picture: the module on the event loop (no `pool`), the module in
 *    `threads({ max: 1 })` at concurrency 1 and in `threads({ max: 2 })` at concurrency 2, and a
 *    task defined with `run` (no module). The pool's overhead (target: under 100 µs on Node) is
 *    the threads row's µs per task minus the `run` task's: the in-loop module row also pays an
 *    `import()` of its module on every attempt, which under tsx's loader costs more than the
 *    pool itself, so the difference against it is shown too but is not the pool's cost. Then where
 *    the time goes, sequential (one message in flight): round trips to a bare
 *    `node:worker_threads` thread (one reply; two replies as the pool's protocol sends, `started`
 *    and `done`; and reading `process.memoryUsage()` as the pool's thread does after every
 *    task), `pool.run()` called directly (the pool without worker or backend), a cached `import()`
 *    of the module, and one `process.memoryUsage()` call. On a virtual machine a thread hop
 *    costs more when the other core is idle (its virtual CPU is asleep and the hypervisor must
 *    wake it), so the `run` task, the c=1 pool row, the bare round trip and `pool.run()` are
 *    measured again with that core kept awake by a child process spinning at nice 19 (it yields
 *    to any normal-priority thread at once). Then, as context, the same no-op on
 *    Redis: celeriac in-loop and threads, BullMQ with an inline processor function and
 *    sandboxed, at concurrency 1 and 2. Each of these rows gets one untimed round first.
 * 3. Event-loop latency: a sampler awaiting `setTimeout(1)` in a loop records how late each
 *    timer fires while CPU tasks run two at a time (concurrency 2), on `memory()` and on Redis:
 *    the module on the event loop, in `threads({ max: 2 })`, in `threads({ max: 1 })`; and with
 *    nothing running. p50, p99 and max of the lag, one run each.
 *
 * @module
 */
import { execFileSync } from "node:child_process";
import { readFileSync } from "node:fs";
import { cpus, loadavg } from "node:os";
import { Redis as IoRedis } from "ioredis";
import { startRedis } from "../dev/mod.ts";
import { sha256Rounds } from "./_pool-hash.mjs";
import {
  bareRoundTrip,
  bullmq,
  celeriac,
  importCost,
  type Kind,
  lagSamples,
  type Measured,
  memoryUsageCost,
  poolDirect,
  sleep,
  spinner,
} from "./_pool-sides.ts";
import { fixed, int, median, percentile, ratio, table } from "./_redis-probe.ts";

// ---------------------------------------------------------------- settings

const QUICK = process.argv.includes("--quick");
/** `--only=1,3`: run those sections alone (all by default). */
const ONLY = process.argv
  .find((a) => a.startsWith("--only="))
  ?.slice("--only=".length)
  .split(",")
  .map(Number);
const want = (section: number) => ONLY === undefined || ONLY.includes(section);
const RUNS = QUICK ? 1 : 3;
/** One CPU task's target duration on this thread. */
const CPU_MS = 20;
const CPU_N = QUICK ? 40 : 200;
const CPU_WARM = 6;
const NOOP_N = QUICK ? 2_000 : 20_000;
const NOOP_WARM = 500;
const REDIS_NOOP_N = QUICK ? 500 : 3_000;
const REDIS_NOOP_WARM = 200;
const BARE_N = QUICK ? 2_000 : 20_000;
const LAG_N = QUICK ? 10 : 50;

const log = (...parts: unknown[]) =>
  console.error(`[bench ${new Date().toISOString().slice(11, 19)}]`, ...parts);
const load = () =>
  loadavg()
    .map((l) => l.toFixed(2))
    .join(", ");

function version(pkg: string): string {
  const url = new URL(`../node_modules/${pkg}/package.json`, import.meta.url);
  return String((JSON.parse(readFileSync(url, "utf8")) as { version?: unknown }).version);
}

function git(...args: string[]): string {
  try {
    return execFileSync("git", args, { encoding: "utf8" }).trim();
  } catch {
    return "?";
  }
}

// ---------------------------------------------------------------- helpers

/**
 * Runs every case `runs` times, rotating the order each round (each case goes first once in 3),
 * after one untimed round when `warmup` (the JIT warmed on every path before any figure counts).
 */
async function rotate<C>(cases: readonly C[], runs: number, fn: (c: C) => Promise<Measured>, warmup = true) {
  if (warmup) for (const c of cases) await fn(c);
  const out = new Map<C, Measured[]>(cases.map((c) => [c, []]));
  for (let r = 0; r < runs; r++) {
    for (let i = 0; i < cases.length; i++) {
      const c = cases[(i + r) % cases.length]!;
      out.get(c)!.push(await fn(c));
    }
  }
  return out;
}

const rate = (m: Measured) => (m.n * 1_000) / m.ms;
const usPer = (m: Measured) => (m.ms * 1_000) / m.n;
const cpuPer = (m: Measured) => m.cpuUs / m.n;
const med = (ms: readonly Measured[], f: (m: Measured) => number) => median(ms.map(f));
const each = (ms: readonly Measured[], f: (m: Measured) => number, digits = 0) =>
  ms.map((m) => (digits === 0 ? int(f(m)) : fixed(f(m), digits))).join(" / ");

/** Rounds for ~CPU_MS: the median of 7 timed calls of a trial count, scaled. */
function calibrate(): { rounds: number; ms: number } {
  const time = (rounds: number) => {
    const t0 = performance.now();
    sha256Rounds(rounds);
    return performance.now() - t0;
  };
  for (let i = 0; i < 5; i++) time(500);
  const trial = 1_000;
  const perRound = median(Array.from({ length: 7 }, () => time(trial))) / trial;
  const rounds = Math.max(1, Math.round(CPU_MS / perRound));
  return { rounds, ms: median(Array.from({ length: 7 }, () => time(rounds))) };
}

// ---------------------------------------------------------------- main

async function main(): Promise<string> {
  const loadStart = load();
  log(`load average ${loadStart}; calibrating`);
  const { rounds, ms: taskMs } = calibrate();
  const digest = sha256Rounds(rounds);
  log(`${rounds} SHA-256 rounds of 16 KiB ≈ ${taskMs.toFixed(1)} ms`);

  const server = await startRedis();
  const admin = new IoRedis(server.url);
  const flush = async () => {
    await admin.call("FLUSHALL");
  };
  const out: string[] = [];
  try {
    out.push(
      `# celeriac thread pool (\`bench/pool.ts\`${QUICK ? " --quick" : ""})`,
      "",
      `Commit \`${git("rev-parse", "--short", "HEAD")}\`${git("status", "--porcelain", "--untracked-files=no") === "" ? "" : " (with uncommitted changes)"}, ${new Date().toISOString().slice(0, 10)}. Node.js ${process.version}, BullMQ ${version("bullmq")}, ioredis ${version("ioredis")}, ${cpus().length} × ${cpus()[0]?.model ?? "?"}. Median of ${RUNS} run(s).`,
      "",
      `CPU task: ${int(rounds)} SHA-256 updates of a 16 KiB block = ${fixed(taskMs)} ms on the main thread (calibrated at start for ${CPU_MS} ms).`,
      "",
    );

    if (want(1)) {
      const before = load();
      // 1
      type CpuCase = "inloop" | "threads" | "bullmq";
      const cpuLabel: Record<CpuCase, string> = {
        inloop: "celeriac, module on the event loop (no pool)",
        threads: "celeriac, `threads({ max: 2 })`",
        bullmq: "BullMQ sandboxed, `useWorkerThreads: true`",
      };
      log(`section 1: ${CPU_N} CPU tasks at concurrency 2`);
      const cpu = await rotate<CpuCase>(
        ["inloop", "threads", "bullmq"],
        RUNS,
        async (c) => {
          await flush();
          const m =
            c === "bullmq"
              ? await bullmq({
                  redisUrl: server.url,
                  kind: "hash",
                  concurrency: 2,
                  sandboxed: true,
                  n: CPU_N,
                  warm: CPU_WARM,
                  rounds,
                  digest,
                })
              : await celeriac({
                  redisUrl: server.url,
                  kind: "hash",
                  concurrency: 2,
                  ...(c === "threads" ? { threads: 2 } : {}),
                  n: CPU_N,
                  warm: CPU_WARM,
                  rounds,
                  digest,
                });
          log(`  ${c}: ${rate(m).toFixed(1)} tasks/s`);
          return m;
        },
        false,
      );
      const cpuRate = (c: CpuCase) => med(cpu.get(c)!, rate);
      out.push(
        `## 1. CPU-bound tasks on Redis (${int(CPU_N)} tasks of ~${CPU_MS} ms, worker concurrency 2)`,
        "",
        `Load average ${before} before the section, ${load()} after.`,
        "",
        table(
          ["side", "tasks/s", "runs (tasks/s)", "ms per task (wall)", "CPU ms per task", "× in-loop"],
          (["inloop", "threads", "bullmq"] as const).map((c) => [
            cpuLabel[c],
            fixed(cpuRate(c)),
            each(cpu.get(c)!, rate, 1),
            fixed(med(cpu.get(c)!, usPer) / 1_000, 2),
            fixed(med(cpu.get(c)!, cpuPer) / 1_000, 2),
            ratio(cpuRate(c), cpuRate("inloop")),
          ]),
        ),
        "",
        `threads / in-loop: **${ratio(cpuRate("threads"), cpuRate("inloop"))}**; celeriac threads / BullMQ sandboxed: **${ratio(cpuRate("threads"), cpuRate("bullmq"))}**.`,
        "",
      );
    }
    if (want(2)) {
      const before = load();
      // 2a
      interface NoopCase {
        label: string;
        kind: Kind;
        concurrency: number;
        threads?: number;
      }
      const memCases: NoopCase[][] = [1, 2].map((c) => [
        { label: "task with `run` (no module)", kind: "plain", concurrency: c },
        { label: "module on the event loop (no pool)", kind: "noop", concurrency: c },
        { label: `module in \`threads({ max: ${c} })\``, kind: "noop", concurrency: c, threads: c },
      ]);
      log(`section 2: ${NOOP_N} no-op tasks on memory()`);
      /** One no-op run on memory(): `threads` in the pool (none: on the event loop). */
      const noopRun = (kind: Kind, threads?: number, concurrency = threads ?? 1) =>
        celeriac({
          kind,
          concurrency,
          ...(threads === undefined ? {} : { threads }),
          n: NOOP_N,
          warm: NOOP_WARM,
          rounds,
          digest,
        });
      const memRows: string[][] = [];
      const overhead: { concurrency: number; us: number; cpuUs: number; vsInloop: number }[] = [];
      for (const group of memCases) {
        const runs = await rotate(group, RUNS, async (c) => {
          const m = await noopRun(c.kind, c.threads, c.concurrency);
          log(`  c=${c.concurrency} ${c.label}: ${usPer(m).toFixed(1)} µs/task`);
          return m;
        });
        const [plain, inloop, pooled] = group.map((c) => runs.get(c)!) as [
          Measured[],
          Measured[],
          Measured[],
        ];
        const vsPlain = (ms: Measured[]) => fixed(med(ms, usPer) - med(plain, usPer));
        for (const [c, ms] of group.map((c) => [c, runs.get(c)!] as const)) {
          memRows.push([
            c.label,
            String(c.concurrency),
            int(med(ms, rate)),
            fixed(med(ms, usPer)),
            each(ms, usPer, 1),
            fixed(med(ms, cpuPer)),
            ms === plain ? "–" : ms === pooled ? `**${vsPlain(ms)}**` : vsPlain(ms),
            ms === pooled ? fixed(med(ms, usPer) - med(inloop, usPer)) : "–",
          ]);
        }
        overhead.push({
          concurrency: group[0]!.concurrency,
          us: med(pooled, usPer) - med(plain, usPer),
          cpuUs: med(pooled, cpuPer) - med(plain, cpuPer),
          vsInloop: med(pooled, usPer) - med(inloop, usPer),
        });
      }
      out.push(
        `## 2. Per-task overhead of the pool (no-op task, \`memory()\`, ${int(NOOP_N)} tasks per run)`,
        "",
        `Load average ${before} before the section (see its end for after).`,
        "",
        table(
          [
            "case",
            "concurrency",
            "tasks/s",
            "µs per task",
            "runs (µs per task)",
            "CPU µs per task",
            "µs vs `run` task",
            "µs vs module in-loop",
          ],
          memRows,
        ),
        "",
        overhead
          .map(
            (o) =>
              `Pool overhead at concurrency ${o.concurrency} (threads − \`run\` task): **${fixed(o.us)} µs** per task of wall time, ${fixed(o.cpuUs)} µs of CPU (every thread); against the module on the event loop: ${fixed(o.vsInloop)} µs.`,
          )
          .join(" "),
        "",
      );

      // 2b
      log(`section 2, where the time goes: ${BARE_N} sequential round trips each`);
      const bare = [
        ["bare `worker_threads` round trip, 1 reply", () => bareRoundTrip(BARE_N, 1, false)],
        ["bare round trip, 2 replies (`started`, `done`)", () => bareRoundTrip(BARE_N, 2, false)],
        ["bare round trip, 2 replies + `process.memoryUsage()`", () => bareRoundTrip(BARE_N, 2, true)],
        ["`pool.run()` direct, `threads({ max: 1 })`, no-op module", () => poolDirect(BARE_N)],
        [
          "cached `import()` of the task module, main thread (the in-loop path, every attempt)",
          () => importCost(BARE_N),
        ],
      ] as const;
      const bareRuns = await rotate(
        bare.map((b) => b[0]),
        RUNS,
        (label) => bare.find((b) => b[0] === label)![1](),
      );
      const memUs = median(Array.from({ length: RUNS }, () => memoryUsageCost(BARE_N)));
      out.push(
        `Where the time goes (sequential: one message in flight; ${int(BARE_N)} round trips per run):`,
        "",
        table(
          ["path", "µs per task", "runs (µs)", "CPU µs per task"],
          [
            ...bare.map(([label]) => {
              const ms = bareRuns.get(label)!;
              return [label, fixed(med(ms, usPer)), each(ms, usPer, 1), fixed(med(ms, cpuPer))];
            }),
            ["one `process.memoryUsage()` call (main thread)", fixed(memUs, 1), "–", "–"],
          ],
        ),
        "",
      );

      // 2b, the other core kept awake
      log("section 2, the same with the other core kept awake by a nice 19 spinner");
      const awakeCases = [
        ["task with `run` (no module), concurrency 1", () => noopRun("plain")],
        ["module in `threads({ max: 1 })`, concurrency 1", () => noopRun("noop", 1)],
        ["bare `worker_threads` round trip, 1 reply", () => bareRoundTrip(BARE_N, 1, false)],
        ["`pool.run()` direct, `threads({ max: 1 })`, no-op module", () => poolDirect(BARE_N)],
      ] as const;
      const spin = spinner();
      let awake: Map<string, Measured[]>;
      try {
        await sleep(200);
        awake = await rotate(
          awakeCases.map((a) => a[0]),
          RUNS,
          (label) => awakeCases.find((a) => a[0] === label)![1](),
        );
      } finally {
        await spin.stop();
      }
      const awakeOverhead =
        med(awake.get(awakeCases[1][0])!, usPer) - med(awake.get(awakeCases[0][0])!, usPer);
      out.push(
        "The same with the machine's other core kept awake: a child process spinning at nice 19 (it yields to any normal thread at once), so that waking a thread on that core does not first wait for the hypervisor to wake an idle virtual CPU:",
        "",
        table(
          ["path", "µs per task", "runs (µs)", "CPU µs per task (this process)"],
          awakeCases.map(([label]) => {
            const ms = awake.get(label)!;
            return [label, fixed(med(ms, usPer)), each(ms, usPer, 1), fixed(med(ms, cpuPer))];
          }),
        ),
        "",
        `Pool overhead at concurrency 1 with the other core awake: **${fixed(awakeOverhead)} µs** per task.`,
        "",
      );

      // 2c
      type RedisCase = { label: string; side: "celeriac" | "bullmq"; mode: "function" | "inloop" | "pooled" };
      log(`section 2, on Redis: ${REDIS_NOOP_N} no-op tasks`);
      const redisRows: string[][] = [];
      for (const c of [1, 2]) {
        const cases: RedisCase[] = [
          { label: "celeriac, task with `run` (no module)", side: "celeriac", mode: "function" },
          { label: "celeriac, module on the event loop", side: "celeriac", mode: "inloop" },
          { label: `celeriac, module in \`threads({ max: ${c} })\``, side: "celeriac", mode: "pooled" },
          { label: "BullMQ, inline processor function", side: "bullmq", mode: "function" },
          { label: "BullMQ sandboxed, `useWorkerThreads: true`", side: "bullmq", mode: "pooled" },
        ];
        const runs = await rotate(cases, RUNS, async (k) => {
          await flush();
          const common = {
            redisUrl: server.url,
            concurrency: c,
            n: REDIS_NOOP_N,
            warm: REDIS_NOOP_WARM,
            rounds,
            digest,
          };
          const m =
            k.side === "bullmq"
              ? await bullmq({ ...common, kind: "noop", sandboxed: k.mode === "pooled" })
              : await celeriac({
                  ...common,
                  kind: k.mode === "function" ? "plain" : "noop",
                  ...(k.mode === "pooled" ? { threads: c } : {}),
                });
          log(`  c=${c} ${k.label}: ${usPer(m).toFixed(1)} µs/task`);
          return m;
        });
        const baseOf = (k: RedisCase) =>
          med(runs.get(cases.find((x) => x.side === k.side && x.mode === "function")!)!, usPer);
        for (const k of cases) {
          const ms = runs.get(k)!;
          redisRows.push([
            k.label,
            String(c),
            int(med(ms, rate)),
            each(ms, rate),
            fixed(med(ms, usPer)),
            fixed(med(ms, cpuPer)),
            k.mode === "function" ? "–" : fixed(med(ms, usPer) - baseOf(k)),
          ]);
        }
      }
      out.push(
        `No-op tasks on Redis, as context (${int(REDIS_NOOP_N)} per run):`,
        "",
        table(
          [
            "side",
            "concurrency",
            "tasks/s",
            "runs (tasks/s)",
            "µs per task",
            "CPU µs per task",
            "µs vs its side's in-process function",
          ],
          redisRows,
        ),
        "",
        `Load average at the end of section 2: ${load()}.`,
        "",
      );
    }
    if (want(3)) {
      const before = load();
      // 3
      log(`section 3: event-loop lag while ${LAG_N} CPU tasks run two at a time`);
      const lagRows: string[][] = [];
      const lagRow = (backend: string, label: string, lags: readonly number[], ms: number) =>
        lagRows.push([
          backend,
          label,
          int(lags.length),
          fixed(percentile(lags, 50), 2),
          fixed(percentile(lags, 99), 2),
          fixed(Math.max(...lags), 1),
          int(ms),
        ]);
      {
        const t0 = performance.now();
        const lags = await lagSamples(sleep(1_000));
        lagRow("–", "nothing running", lags, performance.now() - t0);
      }
      for (const backend of ["memory", "redis"] as const) {
        for (const [label, threads] of [
          ["module on the event loop (no pool)", undefined],
          ["`threads({ max: 2 })`", 2],
          ["`threads({ max: 1 })`", 1],
        ] as const) {
          if (backend === "redis") await flush();
          const m = await celeriac({
            ...(backend === "redis" ? { redisUrl: server.url } : {}),
            kind: "hash",
            concurrency: 2,
            ...(threads === undefined ? {} : { threads }),
            n: LAG_N,
            warm: CPU_WARM,
            rounds,
            digest,
            during: lagSamples,
          });
          lagRow(backend === "redis" ? "Redis" : "`memory()`", label, m.sampled as number[], m.ms);
        }
      }
      out.push(
        `## 3. Event-loop lag while CPU tasks run (${LAG_N} tasks of ~${CPU_MS} ms, worker concurrency 2)`,
        "",
        `Load average ${before} before the section, ${load()} after.`,
        "",
        "How late a `setTimeout(1)` fires on the worker's event loop, in ms, sampled back to back while the batch runs (one run each).",
        "",
        table(
          ["backend", "tasks run", "samples", "p50 lag ms", "p99 lag ms", "max lag ms", "window ms"],
          lagRows,
        ),
        "",
      );
    }
    out.push(`Load average at start ${loadStart}, at end ${load()}.`);
    return out.join("\n");
  } finally {
    admin.disconnect();
    await server.stop();
  }
}

console.log(await main());
