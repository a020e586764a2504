/**
 * A long-lived worker process. Runs unchanged on every runtime:
 *
 *   bun run examples/worker.ts
 *   deno run -A examples/worker.ts
 *   npx tsx examples/worker.ts
 *
 * It uses the in-memory backend, so it feeds itself a batch of demo jobs; with a shared backend
 * (Redis) producers live elsewhere and this file is just `app.worker(...).start()` plus the
 * signal handling. Ctrl-C stops it gracefully: no new work, in-flight tasks finish, the rest is
 * released back to the queue. `--once` exits when the batch is done.
 */
import * as v from "valibot";
import { createApp } from "celeriac";

const app = createApp();

const resize = app.task({
  name: "image.resize",
  queue: "media",
  input: v.object({ file: v.string(), width: v.pipe(v.number(), v.integer(), v.minValue(1)) }),
  retry: { maxAttempts: 3, baseMs: 50 },
  timeoutMs: 5_000,
  async run({ file, width }, ctx) {
    await new Promise((resolve) => setTimeout(resolve, 5 + Math.random() * 20)); // the work
    if (Math.random() < 0.1 && ctx.attempt === 1) throw new Error("transient storage error");
    return { file: file.replace(/\.png$/, `-${width}.png`) };
  },
});

const worker = app.worker({ queues: ["media"], concurrency: 8, shutdownGraceMs: 5_000 });
let done = 0;
let failed = 0;
app.on("succeeded", () => done++);
app.on("failed", () => failed++);

const total = 50;
await resize.enqueueMany(Array.from({ length: total }, (_, i) => ({ file: `photo-${i}.png`, width: 640 })));
worker.start();
console.log(`worker started: ${total} jobs queued on "media", concurrency 8`);

const stop = async (why: string) => {
  console.log(`stopping (${why}): waiting for in-flight tasks…`);
  await worker.stop();
  console.log(`stopped: ${done} succeeded, ${failed} failed`);
  await app.close();
};

const once = (globalThis as { process?: { argv?: string[] } }).process?.argv?.includes("--once") ?? false;
const signals = ["SIGINT", "SIGTERM"] as const;
const proc = (globalThis as { process?: { on?: (s: string, f: () => void) => void } }).process;
for (const signal of signals) proc?.on?.(signal, () => void stop(signal).then(() => proc && exit(0)));

await new Promise<void>((resolve) => {
  const check = app.on("succeeded", () => {
    if (done + failed >= total) {
      check();
      resolve();
    }
  });
  app.on("failed", () => {
    if (done + failed >= total) resolve();
  });
});
console.log(`all ${total} jobs finished`);
if (once) {
  await stop("--once");
  exit(0);
}

function exit(code: number): void {
  (globalThis as { process?: { exit?: (c: number) => void } }).process?.exit?.(code);
}
