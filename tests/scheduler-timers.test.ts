// The long-lived scheduler on real croner timers. The only real waiting here is for croner's
// per-second timers themselves: at most a few seconds, each awaited as an event.
import assert from "node:assert/strict";
import { spawn } from "node:child_process";
import process from "node:process";
import { describe, it } from "node:test";
import { fileURLToPath } from "node:url";
import { Cron } from "croner";
import { memory } from "../adapters/memory/mod.ts";
import { type App, createApp } from "../mod.ts";

const root = fileURLToPath(new URL("..", import.meta.url));
const modUrl = new URL("../mod.ts", import.meta.url).href;

/** Resolves after `n` real fires of a per-second croner job (which is then stopped). */
function nextSeconds(n: number): Promise<void> {
  return new Promise((resolve) => {
    let left = n;
    const job = new Cron("* * * * * *", () => {
      if (--left > 0) return;
      job.stop();
      resolve();
    });
  });
}

/** This runtime, started on a one-line module (TypeScript imports allowed). */
function evalCommand(code: string): [string, string[]] {
  const g = globalThis as { Deno?: { execPath(): string }; Bun?: unknown };
  if (g.Deno !== undefined) return [g.Deno.execPath(), ["eval", code]];
  if (g.Bun !== undefined) return [process.execPath, ["-e", code]];
  return [process.execPath, ["--import", "tsx", "--input-type=module", "-e", code]];
}

/** Counts an app's `enqueued` events; `until(n)` resolves once there were `n`. */
function enqueuedCounter(app: App) {
  let wake: (() => void) | undefined;
  const state = {
    count: 0,
    errors: [] as unknown[],
    async until(n: number): Promise<void> {
      while (state.count < n) {
        await new Promise<void>((resolve) => {
          wake = resolve;
        });
      }
    },
  };
  app.on("enqueued", () => {
    state.count++;
    wake?.();
  });
  app.on("error", (e) => state.errors.push(e.error));
  return state;
}

describe("scheduler timers", () => {
  it("enqueues on croner's timers after start() and nothing once stop() resolved", async () => {
    const app = createApp();
    const beat = app.task({ name: "beat", run: () => null });
    app.schedule("every-second", { cron: "* * * * * *", task: beat, catchUp: "none" });
    const enqueued: number[] = [];
    let wake: (() => void) | undefined;
    app.on("enqueued", () => {
      enqueued.push(Date.now());
      wake?.();
    });
    const errors: unknown[] = [];
    app.on("error", (e) => errors.push(e.error));
    // The scheduler's timers are unref'd: this test holds the event loop open itself.
    const keepAlive = setInterval(() => {}, 60_000);
    let count = 0;
    try {
      const scheduler = app.scheduler();
      assert.equal(scheduler.start(), scheduler);
      assert.equal(scheduler.running, true);
      assert.equal((await scheduler.list())[0]?.armed, true);
      // start() catches up at once with at most this second's tick: a second enqueue came from a timer.
      while (enqueued.length < 2) {
        await new Promise<void>((resolve) => {
          wake = resolve;
        });
      }
      await scheduler.stop();
      assert.equal(scheduler.running, false);
      assert.equal((await scheduler.list())[0]?.armed, false);
      count = enqueued.length;
      // Two more boundaries of the same pattern pass: a live timer would have fired at the first one.
      await nextSeconds(2);
    } finally {
      clearInterval(keepAlive);
    }
    assert.equal(enqueued.length, count);
    assert.deepEqual(errors, []);
    assert.equal(await app.drain(), count);
  });

  it("arms a schedule defined in code after start()", async () => {
    const app = createApp();
    const beat = app.task({ name: "beat", run: () => null });
    const counter = enqueuedCounter(app);
    const keepAlive = setInterval(() => {}, 60_000);
    const scheduler = app.scheduler().start();
    try {
      app.schedule("late", { cron: "* * * * * *", task: beat, catchUp: "none" });
      await counter.until(2); // the tick of this second at once, the next one on the timer
      assert.equal((await scheduler.list())[0]?.armed, true);
    } finally {
      await scheduler.stop();
      clearInterval(keepAlive);
    }
    assert.deepEqual(counter.errors, []);
  });

  it("arms a schedule another replica stores after start(), and stops firing it once removed", {
    timeout: 20_000,
  }, async () => {
    const backend = memory();
    const a = createApp({ broker: backend, store: backend });
    const b = createApp({ broker: backend, store: backend });
    a.task({ name: "beat", run: () => null });
    b.task({ name: "beat", run: () => null });
    const counter = enqueuedCounter(a);
    const keepAlive = setInterval(() => {}, 60_000);
    const scheduler = a.scheduler({ refreshMs: 100 }).start();
    try {
      // Stored by another app on the store: the running scheduler sees it on its next look.
      await b.schedules.add("x", { task: "beat", every: "1s", catchUp: "none" });
      await counter.until(2);
      assert.equal(await b.schedules.remove("x"), true);
      // A wake already past its look may still fire once; after that, nothing.
      await nextSeconds(2);
      const settled = counter.count;
      await nextSeconds(2);
      assert.equal(counter.count, settled);
    } finally {
      await scheduler.stop();
      clearInterval(keepAlive);
    }
    assert.deepEqual(counter.errors, []);
  });

  it("never keeps the process alive on its own", async () => {
    const code = [
      `import { createApp } from ${JSON.stringify(modUrl)};`,
      "const app = createApp();",
      'const beat = app.task({ name: "beat", run: () => null });',
      'app.schedule("every-second", { cron: "* * * * * *", task: beat });',
      "app.scheduler().start();",
      'console.log("started");',
    ].join("\n");
    const [cmd, args] = evalCommand(code);
    const child = spawn(cmd, args, { cwd: root, stdio: ["ignore", "pipe", "pipe"] });
    let output = "";
    child.stdout.on("data", (d) => {
      output += d;
    });
    child.stderr.on("data", (d) => {
      output += d;
    });
    // The child has nothing left to do once start() returned: it must exit by itself.
    const killer = setTimeout(() => child.kill("SIGKILL"), 10_000);
    const code_ = await new Promise<number | null>((resolve) => child.on("close", (c) => resolve(c)));
    clearTimeout(killer);
    assert.equal(code_, 0, `child output: ${output}`);
    assert.match(output, /started/);
  });
});
