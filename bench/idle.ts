/**
 * Benchmark (not a test): what an idle worker costs. Starts `app.worker()` on an empty memory
 * broker and measures the process's CPU time over a fixed stretch of wall time (5 s), next to the
 * same stretch with no worker at all. An idle worker should cost about nothing: it waits on one
 * timer per `pollMs` (default 5 s), and its lease-renewal tick returns at once with no tasks.
 *
 * The cases run in 3 interleaved rounds and the median window is reported: the runtime's own
 * background work (V8's memory-reducing GC some seconds after start-up, tsx's loader thread)
 * lands in whichever window is open at the time, worker or not.
 *
 *   npx tsx bench/idle.ts
 *   npx bun bench/idle.ts
 *   … bench/idle.ts --seconds=30            (a longer window)
 *
 * Only Web-standard APIs, plus `process.cpuUsage()` where the runtime has it.
 *
 * @module
 */
import { memory } from "../adapters/memory/mod.ts";
import { createApp, type WorkerOptions } from "../mod.ts";

interface RuntimeHooks {
  process?: {
    argv?: string[];
    versions?: Record<string, string | undefined>;
    cpuUsage?: () => { user: number; system: number };
  };
}

const host = globalThis as unknown as RuntimeHooks;
const secondsArg = host.process?.argv?.find((a) => a.startsWith("--seconds="));
const SECONDS = secondsArg === undefined ? 5 : Number(secondsArg.slice("--seconds=".length));
const ROUNDS = 3;
if (!(SECONDS > 0)) throw new RangeError(`--seconds must be a positive number, got ${secondsArg}`);

function runtimeName(): string {
  const versions = host.process?.versions;
  if (versions?.bun !== undefined) return `Bun ${versions.bun}`;
  if (versions?.deno !== undefined) return `Deno ${versions.deno}`;
  if (versions?.node !== undefined) return `Node.js v${versions.node}`;
  return "unknown runtime";
}

/** Process CPU time (user + system) in µs, or undefined where the runtime does not report it. */
function cpuMicros(): number | undefined {
  const read = host.process?.cpuUsage;
  if (typeof read !== "function") return undefined;
  const { user, system } = read.call(host.process);
  return user + system;
}

function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}

interface Measured {
  wallMs: number;
  cpuUs: number;
  receives: number | undefined;
}

/** CPU time over `SECONDS` of wall time while the worker (if any) sits idle. */
async function measure(options: WorkerOptions | undefined): Promise<Measured> {
  const backend = memory();
  let receives = 0;
  const receive = backend.receive.bind(backend);
  backend.receive = (o) => {
    receives++;
    return receive(o);
  };
  const app = createApp({ broker: backend });
  app.task({ name: "bench.idle", run: async () => {} });
  const worker = options === undefined ? undefined : app.worker(options).start();
  await sleep(100); // let start-up settle; it is not what this measures
  receives = 0;
  const c0 = cpuMicros()!;
  const t0 = performance.now();
  await sleep(SECONDS * 1_000);
  const wallMs = performance.now() - t0;
  const cpuUs = cpuMicros()! - c0;
  const counted = receives;
  await worker?.stop();
  await app.close();
  return { wallMs, cpuUs, receives: options === undefined ? undefined : counted };
}

async function main(): Promise<void> {
  const runtime = runtimeName();
  if (cpuMicros() === undefined) {
    console.log(`${runtime} has no process.cpuUsage(); nothing to measure.`);
    return;
  }
  console.error(`celeriac bench/idle on ${runtime}: ${SECONDS} s per case…`);
  // Settle start-up work (module compilation, first GCs) with an untimed idle worker first.
  {
    const app = createApp();
    const worker = app.worker().start();
    await sleep(2_000);
    await worker.stop();
  }
  const cases: { name: string; options: WorkerOptions | undefined; runs: Measured[] }[] = [
    { name: "no worker (control: the process itself)", options: undefined, runs: [] },
    { name: "idle worker, default options", options: {}, runs: [] },
    { name: "idle worker, concurrency 100", options: { concurrency: 100 }, runs: [] },
  ];
  for (let round = 0; round < ROUNDS; round++) {
    for (const c of cases) c.runs.push(await measure(c.options));
  }
  const lines = [
    `### ${runtime} — ${new Date().toISOString().slice(0, 10)}`,
    "",
    `CPU time (user + system, whole process) per ${SECONDS} s window of wall time on an empty memory ` +
      `broker; ${ROUNDS} interleaved rounds, median window shown, all windows in the last column.`,
    "",
    "| Case | CPU time (median) | % of one core | `broker.receive` calls | all windows (ms) |",
    "|---|---:|---:|---:|---:|",
  ];
  for (const c of cases) {
    const sorted = [...c.runs].sort((a, b) => a.cpuUs - b.cpuUs);
    const mid = sorted[sorted.length >> 1]!;
    const pct = (100 * mid.cpuUs) / 1_000 / mid.wallMs;
    const all = c.runs.map((r) => (r.cpuUs / 1_000).toFixed(1)).join(" / ");
    lines.push(
      `| ${c.name} | ${(mid.cpuUs / 1_000).toFixed(1)} ms | ${pct.toFixed(3)} % | ${mid.receives ?? "–"} | ${all} |`,
    );
  }
  lines.push("");
  console.log(lines.join("\n"));
}

await main();
