/**
 * The thread pool (`celeriac/threads`) on the runtime running this file (Node, Deno, Bun): hard
 * timeouts, crashes, recycling, autoscale, the context inside a thread, and the event loop kept
 * free while CPU-bound tasks run.
 */
import assert from "node:assert/strict";
import process from "node:process";
import { describe, it } from "node:test";
import * as v from "valibot";
import { memory } from "../adapters/memory/mod.ts";
import { createApp, NonRetryableError, TimeoutError } from "../mod.ts";
import { ThreadError, threadModule, threads } from "../threads/mod.ts";

const mod = (name: string) => new URL(`./support/pool/${name}.task.ts`, import.meta.url);
const g = globalThis as { Deno?: unknown; Bun?: unknown };
const onNode = g.Deno === undefined && g.Bun === undefined;

function appOf() {
  const backend = memory();
  return createApp({ broker: backend, store: backend });
}

/** Resolves when `ok` holds (polling the condition, a few ms apart), or fails after 20 s. */
async function until(ok: () => boolean, what: string): Promise<void> {
  const deadline = Date.now() + 20_000;
  while (!ok()) {
    if (Date.now() > deadline) assert.fail(`timed out waiting for ${what}`);
    await new Promise((resolve) => setTimeout(resolve, 5));
  }
}

describe("thread pool", () => {
  it("runs a task module in a thread: input validated first, progress, attempt, id and typed result", async () => {
    const app = appOf();
    const t = app.task({
      name: "pool.ctx",
      input: v.object({ steps: v.number() }),
      module: threadModule<typeof import("./support/pool/ctx.task.ts")>(mod("ctx")),
    });
    const pool = threads({ max: 1 });
    const worker = app.worker({ pool }).start();
    try {
      await assert.rejects(t.enqueue({ steps: "x" } as never), { name: "ValidationError" });
      const run = await t.enqueue({ steps: 3 }, { idempotencyKey: "k-1" });
      const result = await run.result({ timeoutMs: 20_000 });
      // The result's type follows the module's run: a compile-time check as much as a runtime one.
      const attempt: number = result.attempt;
      assert.deepEqual(
        { ...result, idempotencyKey: typeof result.idempotencyKey },
        { id: run.id, task: "pool.ctx", attempt, threadId: 1, aborted: false, idempotencyKey: "string" },
      );
      assert.equal(attempt, 1);
      assert.deepEqual((await run.status())?.progress, { step: 3, of: 3 });
      assert.equal(pool.stats().completed, 1);
    } finally {
      await worker.stop();
    }
  });

  it("terminates a CPU-bound attempt at its timeout, replaces the thread and retries", async () => {
    const app = appOf();
    const t = app.task({
      name: "pool.cpu",
      module: threadModule<typeof import("./support/pool/cpu.task.ts")>(mod("cpu")),
      timeoutMs: 200,
      retry: { maxAttempts: 2, baseMs: 0, jitter: "none" },
    });
    const pool = threads({ max: 1 });
    const worker = app.worker({ pool }).start();
    try {
      const began = performance.now();
      const run = await t.enqueue({ ms: 1, hangOn: [1] });
      const result = await run.result({ timeoutMs: 20_000 });
      assert.ok(
        performance.now() - began < 10_000,
        "the endless loop did not hold the attempt past its timeout",
      );
      assert.deepEqual({ attempt: result.attempt, threadId: result.threadId }, { attempt: 2, threadId: 2 });
      const record = await run.status();
      assert.equal(record?.errors?.[0]?.name, "TimeoutError");
      assert.equal(pool.stats().recycled.timeout, 1, "the looping thread was terminated");
      // Terminated, not abandoned: the process is idle again (a thread still looping would use a
      // whole core). Deno stops a terminated thread's isolate within its 2 s grace.
      const windows: number[] = [];
      for (let i = 0; i < 10 && !(windows.at(-1)! < 250); i++) {
        const before = process.cpuUsage();
        await new Promise((resolve) => setTimeout(resolve, 500));
        const used = process.cpuUsage(before);
        windows.push((used.user + used.system) / 1_000);
      }
      assert.ok(windows.at(-1)! < 250, `CPU ms per 500 ms once the retry finished: ${windows.join(", ")}`);
    } finally {
      await worker.stop();
    }
  });

  it("keeps the event loop free while 4 CPU-bound tasks run: an in-loop task's latency stays under 20 ms p99", async () => {
    const app = appOf();
    const cpu = app.task({
      name: "pool.busy",
      module: threadModule<typeof import("./support/pool/cpu.task.ts")>(mod("cpu")),
    });
    const latencies: number[] = [];
    const ping = app.task({
      name: "pool.ping",
      run: (sentAt: number) => void latencies.push(performance.now() - sentAt),
    });
    const pool = threads({ max: 2 });
    const worker = app.worker({ pool, concurrency: 8 }).start();
    try {
      const busy = await cpu.enqueueMany([1, 2, 3, 4].map(() => ({ ms: 1_500 })));
      await until(() => pool.stats().busy === 2, "both threads busy");
      for (let i = 0; i < 100; i++) {
        await ping.enqueue(performance.now());
        await new Promise((resolve) => setTimeout(resolve, 10));
      }
      await until(() => latencies.length === 100, "every ping");
      assert.ok(pool.stats().busy > 0 || pool.stats().completed < 4, "the pings ran while CPU tasks did");
      for (const r of busy) await r.result({ timeoutMs: 20_000 });
      const sorted = [...latencies].sort((a, b) => a - b);
      const p99 = sorted[Math.ceil(sorted.length * 0.99) - 1]!;
      assert.ok(p99 < 20, `in-loop task latency p99 ${p99.toFixed(1)} ms (p50 ${sorted[49]!.toFixed(1)} ms)`);
    } finally {
      await worker.stop();
    }
  });

  it("recycles a thread after maxTasksPerChild tasks", async () => {
    const app = appOf();
    const t = app.task({
      name: "pool.count",
      module: threadModule<typeof import("./support/pool/cpu.task.ts")>(mod("cpu")),
    });
    const pool = threads({ max: 1, maxTasksPerChild: 10 });
    const worker = app.worker({ pool, concurrency: 1 }).start();
    try {
      const ids: number[] = [];
      for (let i = 0; i < 25; i++)
        ids.push((await (await t.enqueue({ ms: 0 })).result({ timeoutMs: 20_000 })).threadId);
      assert.deepEqual(ids, [...Array(10).fill(1), ...Array(10).fill(2), ...Array(5).fill(3)]);
      assert.equal(pool.stats().recycled.tasks, 2);
    } finally {
      await worker.stop();
    }
  });

  it("replaces a thread over its memory limit", async () => {
    const app = appOf();
    const t = app.task({
      name: "pool.memory",
      module: threadModule<typeof import("./support/pool/memory.task.ts")>(mod("memory")),
      retry: { maxAttempts: 2, baseMs: 0, jitter: "none" },
      timeoutMs: 60_000,
    });
    const pool = threads({ max: 1, maxMemoryPerChildMb: 48 });
    const worker = app.worker({ pool, concurrency: 1 }).start();
    try {
      const run = await t.enqueue({ mb: 160, on: [1] });
      const result = await run.result({ timeoutMs: 60_000 });
      const after = await (await t.enqueue({ mb: 0, on: [] })).result({ timeoutMs: 20_000 });
      if (onNode) {
        // A hard limit: the first attempt runs out of memory, its thread dies, the retry runs on a new one.
        assert.deepEqual({ attempt: result.attempt, threadId: result.threadId }, { attempt: 2, threadId: 2 });
        const error = (await run.status())?.errors?.[0];
        assert.equal(error?.name, "ThreadError");
        assert.match(error?.message ?? "", /out of memory/);
        assert.equal(after.threadId, 2);
      } else {
        // Measured after each task: the task finishes, then its thread is replaced.
        assert.deepEqual({ attempt: result.attempt, threadId: result.threadId }, { attempt: 1, threadId: 1 });
        assert.equal(after.threadId, 2, "the next task runs on a fresh thread");
      }
      assert.equal(pool.stats().recycled.memory, 1);
    } finally {
      await worker.stop();
    }
  });

  for (const how of ["exit", "crash", "throw"] as const) {
    it(`a task that ${how === "throw" ? "throws" : how === "exit" ? "exits its thread" : "crashes its thread"} fails its attempt with a clear error and retries; the worker lives on`, async () => {
      const app = appOf();
      const t = app.task({
        name: `pool.${how}`,
        module: threadModule<typeof import("./support/pool/fail.task.ts")>(mod("fail")),
        retry: { maxAttempts: 2, baseMs: 0, jitter: "none" },
      });
      const pool = threads({ max: 1 });
      const worker = app.worker({ pool }).start();
      try {
        const run = await t.enqueue({ how, failing: 1 });
        const result = await run.result({ timeoutMs: 20_000 });
        assert.equal(result.attempt, 2);
        const error = (await run.status())?.errors?.[0];
        if (how === "throw") {
          assert.deepEqual(
            { name: error?.name, message: error?.message },
            { name: "Error", message: "failed on attempt 1" },
          );
          assert.equal(result.threadId, 1, "a thrown error leaves the thread in service");
        } else {
          assert.equal(error?.name, "ThreadError");
          assert.match(error?.message ?? "", how === "exit" ? /exited with code 7/ : /crashed|exited/);
          assert.equal(result.threadId, 2, "the thread was replaced");
          assert.equal(pool.stats().recycled.crashed, 1);
        }
        assert.ok(worker.running);
      } finally {
        await worker.stop();
      }
    });
  }

  it("a NonRetryableError thrown in a thread is not retried; a result that cannot cross fails the attempt", async () => {
    const app = appOf();
    const t = app.task({
      name: "pool.fatal",
      module: threadModule<typeof import("./support/pool/fail.task.ts")>(mod("fail")),
      retry: { maxAttempts: 3, baseMs: 0, jitter: "none" },
    });
    const worker = app.worker({ pool: threads({ max: 1 }) }).start();
    try {
      const fatal = await t.enqueue({ how: "fatal", failing: 5 });
      await assert.rejects(fatal.result({ timeoutMs: 20_000 }), /never again/);
      assert.equal((await fatal.status())?.attempt, 1);
      const odd = await t.enqueue({ how: "unclonable", failing: 1 });
      assert.equal((await odd.result({ timeoutMs: 20_000 })).attempt, 2);
      assert.equal((await odd.status())?.errors?.[0]?.name, "DataCloneError");
    } finally {
      await worker.stop();
    }
  });

  it("a cancelled run's thread gets the abort; one that ignores it is terminated after abortGraceMs", async () => {
    const app = appOf();
    const t = app.task({
      name: "pool.wait",
      module: threadModule<typeof import("./support/pool/wait.task.ts")>(mod("wait")),
    });
    const pool = threads({ max: 2, abortGraceMs: 200 });
    const worker = app.worker({ pool, leaseMs: 300 }).start();
    try {
      const heed = await t.enqueue({ mode: "heed" });
      const ignore = await t.enqueue({ mode: "ignore" });
      for (const r of [heed, ignore]) {
        const id = r.id;
        await until(() => worker.info().active.some((a) => a.id === id), `${id} to start`);
      }
      await until(() => pool.stats().busy === 2, "both running in threads");
      assert.equal(await heed.cancel(), true);
      assert.equal(await ignore.cancel(), true);
      await until(
        () => pool.stats().recycled.aborted === 1 && pool.stats().busy === 0,
        "the ignoring thread terminated",
      );
      assert.equal(pool.stats().size, 1, "the thread that heeded its abort stays in service");
      for (const r of [heed, ignore]) assert.equal((await r.status())?.state, "cancelled");
    } finally {
      await worker.stop();
    }
  });

  it("grows to max while attempts wait, and shrinks to min after idleMs", async () => {
    const app = appOf();
    const t = app.task({
      name: "pool.scale",
      module: threadModule<typeof import("./support/pool/cpu.task.ts")>(mod("cpu")),
    });
    const pool = threads({ min: 1, max: 3, idleMs: 100 });
    const worker = app.worker({ pool, concurrency: 6 }).start();
    try {
      const runs = await t.enqueueMany(Array.from({ length: 6 }, () => ({ ms: 300 })));
      await until(() => pool.stats().busy === 3, "three busy threads");
      assert.equal(pool.stats().size, 3, "never above max");
      assert.ok(pool.stats().waiting > 0, "the rest wait for a thread");
      for (const r of runs) await r.result({ timeoutMs: 20_000 });
      await until(() => pool.stats().size === 1, "back to min");
      assert.equal(pool.stats().shrunk, 2);
      const info = worker.info();
      assert.deepEqual({ size: info.pool?.size, completed: info.pool?.completed }, { size: 1, completed: 6 });
    } finally {
      await worker.stop();
    }
  });

  it("without a pool, a module task runs on the event loop (eager tests)", async () => {
    const backend = memory({ eager: true });
    const app = createApp({ broker: backend, store: backend });
    const t = app.task({
      name: "pool.inline",
      module: threadModule<typeof import("./support/pool/ctx.task.ts")>(mod("ctx")),
    });
    const run = await t.enqueue({ steps: 1 });
    assert.deepEqual(
      { ...(await run.result()), idempotencyKey: "" },
      {
        id: run.id,
        task: "pool.inline",
        attempt: 1,
        threadId: 0,
        aborted: false,
        idempotencyKey: "",
      },
    );
  });

  it("rejects bad definitions and options with typed errors", () => {
    const app = appOf();
    assert.throws(() => app.task({ name: "x1", module: "not a url" }), TypeError);
    assert.throws(() => app.task({ name: "x2", module: mod("ctx"), run: () => 1 } as never), /run or module/);
    assert.throws(
      () => app.task({ name: "x3", pool: "forks" as never, module: mod("ctx") }),
      /pool must be "threads"/,
    );
    assert.throws(() => threads({ max: 0 }), RangeError);
    assert.throws(() => threads({ min: 3, max: 2 }), RangeError);
    assert.throws(() => threads({ maxChildren: 2 } as never), TypeError);
    assert.throws(() => app.worker({ pool: {} as never }), TypeError);
    // The error classes a pool's attempts can end with are public.
    assert.equal(new ThreadError("exit", "x").reason, "exit");
    assert.ok(new TimeoutError("t") instanceof Error && new NonRetryableError("n") instanceof Error);
  });
});
