/**
 * A process for the leak test: runs async no-op tasks through a worker on the in-memory backend
 * in rounds, collects garbage after each, and prints the heap retained per task between the
 * second round and the last (the first warms up). Prints one JSON line:
 * `{ "bytesPerTask": n, "tasks": n }`.
 *
 * Usage: `<runtime with GC exposed> tests/support/leak-worker.ts <tasks per round> <rounds>`.
 *
 * @module
 */
import process from "node:process";
import { memory } from "../../adapters/memory/mod.ts";
import { createApp } from "../../mod.ts";

const perRound = Number(process.argv[2] ?? 50_000);
const rounds = Number(process.argv[3] ?? 5);

const g = globalThis as { gc?: () => void; Bun?: { gc(force: boolean): void } };
function collect(): void {
  if (g.Bun !== undefined) g.Bun.gc(true);
  else if (g.gc !== undefined) g.gc();
  else throw new Error("run with the garbage collector exposed (--expose-gc)");
}

async function heapAfterGc(): Promise<number> {
  for (let i = 0; i < 3; i++) {
    collect();
    await new Promise((resolve) => setTimeout(resolve, 10));
  }
  return process.memoryUsage().heapUsed;
}

const backend = memory();
const app = createApp({ broker: backend, store: backend });
// Records expire at once, so what a run leaves behind is only what the runtime keeps.
const noop = app.task({ name: "noop", resultTtlMs: 1, async run() {} });
let done = 0;
let wake: (() => void) | undefined;
app.on("succeeded", () => {
  done++;
  if (wake !== undefined && done % perRound === 0) wake();
});
const worker = app.worker({ concurrency: 10 }).start();
const inputs = Array.from({ length: 1_000 }, () => null);

async function round(): Promise<void> {
  const target = done + perRound;
  const finished = new Promise<void>((resolve) => {
    wake = resolve;
  });
  for (let sent = 0; sent < perRound; sent += inputs.length) await noop.enqueueMany(inputs);
  await finished;
  if (done !== target) throw new Error(`expected ${target} done, got ${done}`);
}

await round();
await round();
const start = await heapAfterGc();
for (let i = 2; i < rounds; i++) await round();
const end = await heapAfterGc();
await worker.stop();
const tasks = perRound * (rounds - 2);
process.stdout.write(`${JSON.stringify({ bytesPerTask: (end - start) / tasks, tasks })}\n`);
